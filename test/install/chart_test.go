package install

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

const (
	chartDir = "charts/meetergo-operator"
	// everythingValues switches on every optional part of the chart.
	everythingValues = "test/install/testdata/values-everything.yaml"
	crdName          = "meetergowebhooks.webhooks.meetergo-operator.io"
)

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// render is `helm template` of the chart as release "t" in namespace ns.
func render(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return helm(t, append([]string{"template", "t", chartDir, "--namespace", ns}, args...)...)
}

func TestSyncChartIsCurrent(t *testing.T) {
	r := runTool(t, "", "bash", "hack/sync-chart.sh", "--check")
	if r.err != nil {
		t.Fatalf("the chart's generated files are stale; run hack/sync-chart.sh (or make manifests): %v\n%s", r.err, r.output())
	}
}

func TestChartLints(t *testing.T) {
	for name, args := range map[string][]string{
		"defaults":   nil,
		"everything": {"--values", everythingValues},
	} {
		t.Run(name, func(t *testing.T) {
			helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
		})
	}
}

// TestChartServerSideDryRun asks the API server to accept every rendered
// object. The Gateway API and prometheus-operator CRDs come from minimal
// fixtures (testdata/crds) that accept any spec: the API server checks the
// objects' metadata and kind, not their spec.
func TestChartServerSideDryRun(t *testing.T) {
	kubectl(t, "", "apply", "--server-side", "--filename", "test/install/testdata/crds")
	kubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/httproutes.gateway.networking.k8s.io", "crd/servicemonitors.monitoring.coreos.com")

	cases := []struct {
		name      string
		args      []string
		wantKinds []string
	}{
		{"defaults", nil, []string{"CustomResourceDefinition", "StatefulSet", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}},
		{"everything", []string{"--values", everythingValues}, []string{"Ingress", "HTTPRoute", "ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"}},
		{"minimal", []string{"--set", "crds.install=false,persistence.enabled=false,metrics.enabled=false,serviceAccount.create=false,serviceAccount.name=default"}, []string{"StatefulSet", "Service"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := "dry-run-" + tc.name
			createNamespace(t, ns)
			manifests := render(t, ns, tc.args...)
			objs := decodeObjects(t, manifests)
			for _, k := range tc.wantKinds {
				if len(ofKind(objs, k)) == 0 {
					t.Errorf("rendered no %s: %v", k, names(objs))
				}
			}
			out := kubectl(t, manifests, "apply", "--server-side", "--dry-run=server", "--field-manager=install-test", "--filename", "-")
			if got := strings.Count(out, "(server dry run)"); got != len(objs) {
				t.Errorf("the API server accepted %d of %d objects:\n%s", got, len(objs), out)
			}
		})
	}
}

// TestChartRendersValues checks what the values turn into.
func TestChartRendersValues(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		objs := decodeObjects(t, render(t, "ops"))
		sts := statefulSet(t, objs, "t-meetergo-operator")
		c := managerContainer(t, sts.Spec.Template.Spec)
		for _, a := range []string{"--leader-elect", "--metrics-secure=true"} {
			if !hasArg(c.Args, a) {
				t.Errorf("no %s in %q", a, c.Args)
			}
		}
		assertFlag(t, c.Args, "health-probe-bind-address", ":8081")
		assertFlag(t, c.Args, "metrics-bind-address", ":8443")
		assertFlag(t, c.Args, "receiver-bind-address", ":8082")
		assertFlag(t, c.Args, "data-dir", "/var/lib/meetergo-operator")
		assertFlag(t, c.Args, "token-grace-period", "24h")
		assertFlag(t, c.Args, "dedup-window", "24h")
		assertFlag(t, c.Args, "concurrency", "4")
		assertFlag(t, c.Args, "leader-elect-lease-duration", "15s")
		assertFlag(t, c.Args, "leader-elect-renew-deadline", "10s")
		assertFlag(t, c.Args, "leader-elect-retry-period", "2s")
		assertNoFlag(t, c.Args, "receiver-public-url")
		assertNoFlag(t, c.Args, "meetergo-api-url")
		assertNoFlag(t, c.Args, "namespace") // from POD_NAMESPACE

		if c.Image != "ghcr.io/meetergo-operator/meetergo-operator:"+chartAppVersion(t) {
			t.Errorf("image %s, want the chart's appVersion as tag", c.Image)
		}
		assertPodNamespaceEnv(t, c)
		assertHardened(t, sts.Spec.Template.Spec, c)
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
			c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("probes: liveness %+v, readiness %+v", c.LivenessProbe, c.ReadinessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources %+v", c.Resources)
		}
		if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
			t.Errorf("volumeClaimTemplates %+v, want one named data", sts.Spec.VolumeClaimTemplates)
		}
		if find(objs, "PodDisruptionBudget", "t-meetergo-operator") != nil {
			t.Error("a PodDisruptionBudget with one replica")
		}
		crd := mustFind(t, objs, "CustomResourceDefinition", crdName)
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD annotations %v, want helm.sh/resource-policy: keep", crd.GetAnnotations())
		}
		svc := convert[corev1.Service](t, mustFind(t, objs, "Service", "t-meetergo-operator"))
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "receiver" {
			t.Errorf("receiver Service ports %+v", svc.Spec.Ports)
		}
	})

	t.Run("values", func(t *testing.T) {
		objs := decodeObjects(t, render(t, "ops",
			"--set", "receiver.publicURL=https://hooks.example.com/meetergo",
			"--set", "meetergo.apiURL=https://api.meetergo.example",
			"--set", "image.tag=v9.9.9",
			"--set", "logging.level=debug",
			"--set", "persistence.enabled=false",
			"--set", "metrics.enabled=false",
			"--set", "leaderElection.enabled=false",
			"--set", "crds.install=false",
			"--set-json", `extraArgs=["--zap-stacktrace-level=panic"]`,
			"--set-json", `extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy.example.com:3128"}]`,
		))
		sts := statefulSet(t, objs, "t-meetergo-operator")
		c := managerContainer(t, sts.Spec.Template.Spec)
		assertFlag(t, c.Args, "receiver-public-url", "https://hooks.example.com/meetergo")
		assertFlag(t, c.Args, "meetergo-api-url", "https://api.meetergo.example")
		assertFlag(t, c.Args, "zap-log-level", "debug")
		assertFlag(t, c.Args, "metrics-bind-address", "0")
		assertFlag(t, c.Args, "zap-stacktrace-level", "panic")
		if hasArg(c.Args, "--leader-elect") {
			t.Errorf("--leader-elect with leaderElection.enabled=false: %q", c.Args)
		}
		assertNoFlag(t, c.Args, "leader-elect-lease-duration")
		if c.Image != "ghcr.io/meetergo-operator/meetergo-operator:v9.9.9" {
			t.Errorf("image %s", c.Image)
		}
		if !hasEnv(c, "HTTPS_PROXY", "http://proxy.example.com:3128") {
			t.Errorf("env %+v lacks HTTPS_PROXY", c.Env)
		}
		assertPodNamespaceEnv(t, c)
		if len(sts.Spec.VolumeClaimTemplates) != 0 {
			t.Errorf("volumeClaimTemplates without persistence: %+v", sts.Spec.VolumeClaimTemplates)
		}
		if !hasEmptyDir(sts.Spec.Template.Spec, "data") {
			t.Errorf("no emptyDir data volume without persistence: %+v", sts.Spec.Template.Spec.Volumes)
		}
		for _, kind := range []string{"CustomResourceDefinition"} {
			if len(ofKind(objs, kind)) != 0 {
				t.Errorf("rendered a %s with crds.install=false", kind)
			}
		}
		if find(objs, "Service", "t-meetergo-operator-metrics") != nil {
			t.Error("a metrics Service with metrics.enabled=false")
		}
	})

	t.Run("everything", func(t *testing.T) {
		objs := decodeObjects(t, render(t, "ops", "--values", everythingValues))
		sts := statefulSet(t, objs, "t-meetergo-operator")
		if *sts.Spec.Replicas != 2 {
			t.Errorf("replicas %d, want 2", *sts.Spec.Replicas)
		}
		pdb := convert[policyv1.PodDisruptionBudget](t, mustFind(t, objs, "PodDisruptionBudget", "t-meetergo-operator"))
		if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, sts.Spec.Selector.MatchLabels) {
			t.Errorf("PDB selects %v, the StatefulSet's pods are %v", pdb.Spec.Selector.MatchLabels, sts.Spec.Selector.MatchLabels)
		}
		np := mustFind(t, objs, "NetworkPolicy", "t-meetergo-operator")
		ports, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
		if len(ports) != 3 {
			t.Errorf("NetworkPolicy has %d ingress rules, want receiver, probes and metrics", len(ports))
		}
		crd := mustFind(t, objs, "CustomResourceDefinition", crdName)
		if crd.GetAnnotations()["argocd.argoproj.io/sync-options"] != "Prune=false" {
			t.Errorf("crds.annotations not on the CRD: %v", crd.GetAnnotations())
		}
	})
}

// TestValuesSchemaRefuses checks that typos and wrong types are refused by
// both `helm lint` and `helm template`, naming the key.
func TestValuesSchemaRefuses(t *testing.T) {
	cases := []struct {
		name, values, want string
		// templateOnly: a check in the templates, which `helm lint` reports
		// only as [INFO].
		templateOnly bool
	}{
		{"typo", "replicaCont: 2\n", "replicaCont", false},
		{"nested typo", "receiver:\n  publicUrl: https://hooks.example.com\n", "publicUrl", false},
		{"deep typo", "persistence:\n  retentionPolicy:\n    whenDeletd: Retain\n", "whenDeletd", false},
		{"wrong type", "replicaCount: two\n", "replicaCount", false},
		{"wrong nested type", "persistence:\n  enabled: \"yes\"\n", "/persistence/enabled", false},
		{"bad duration", "controller:\n  resyncPeriod: ten minutes\n", "resyncPeriod", false},
		{"bad enum", "logging:\n  encoder: text\n", "encoder", false},
		{"bad port", "receiver:\n  port: 70000\n", "/receiver/port", false},
		{"http public URL", "receiver:\n  publicURL: http://hooks.example.com\n", "allowInsecureHTTP", false},
		{"route without parents", "httpRoute:\n  enabled: true\n", "/httpRoute/parentRefs", false},
		{"servicemonitor without metrics", "metrics:\n  enabled: false\n  serviceMonitor:\n    enabled: true\n", "/metrics/enabled", false},
		{"same ports", "health:\n  port: 8082\n", "must differ", true},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("values-%d.yaml", i))
			if err := os.WriteFile(file, []byte(tc.values), 0o600); err != nil {
				t.Fatal(err)
			}
			cmds := [][]string{{"template", "t", chartDir, "--values", file}}
			if !tc.templateOnly {
				cmds = append(cmds, []string{"lint", chartDir, "--values", file})
			}
			for _, cmd := range cmds {
				r := runTool(t, "", helmBin(t), cmd...)
				if r.err == nil {
					t.Errorf("helm %s accepted %q", cmd[0], tc.values)
					continue
				}
				if !strings.Contains(r.output(), tc.want) {
					t.Errorf("helm %s refused %q without naming %q:\n%s", cmd[0], tc.values, tc.want, r.output())
				}
			}
		})
	}
}

// TestChartRBACMatchesConfig compares the chart's roles with config/rbac:
// the generated ones (from the markers) and the hand-written ones.
func TestChartRBACMatchesConfig(t *testing.T) {
	objs := decodeObjects(t, render(t, "ops"))
	generated := decodeFile(t, repoPath("config", "rbac", "role.yaml"))
	if len(generated) == 0 {
		t.Fatal("config/rbac/role.yaml holds no roles")
	}
	for _, want := range generated {
		got := mustFind(t, objs, want.GetKind(), "t-meetergo-operator-"+strings.TrimSuffix(want.GetName(), "-role"))
		if !reflect.DeepEqual(rules(t, got), rules(t, want)) {
			t.Errorf("chart %s %s rules differ from config/rbac/role.yaml %s:\nchart:  %+v\nconfig: %+v",
				got.GetKind(), got.GetName(), want.GetName(), rules(t, got), rules(t, want))
		}
		if want.GetKind() == "Role" && got.GetNamespace() != "ops" {
			t.Errorf("Role %s in namespace %q, want the release namespace", got.GetName(), got.GetNamespace())
		}
		assertBoundToServiceAccount(t, objs, got, "t-meetergo-operator", "ops")
	}
	// Only the generated manager roles, and the hand-written ones below.
	for _, kind := range []string{"ClusterRole", "Role"} {
		if n, m := len(ofKind(objs, kind)), len(ofKind(generated, kind)); kind == "Role" && n != m+1 || kind == "ClusterRole" && n != m+2 {
			t.Errorf("%d %ss in the chart: %v", n, kind, names(ofKind(objs, kind)))
		}
	}

	handWritten := map[string]string{
		"leader_election_role.yaml": "t-meetergo-operator-leader-election",
		"metrics_auth_role.yaml":    "t-meetergo-operator-metrics-auth",
		"metrics_reader_role.yaml":  "t-meetergo-operator-metrics-reader",
	}
	for file, chartName := range handWritten {
		want := decodeFile(t, repoPath("config", "rbac", file))[0]
		got := mustFind(t, objs, want.GetKind(), chartName)
		if !reflect.DeepEqual(rules(t, got), rules(t, want)) {
			t.Errorf("chart %s rules differ from config/rbac/%s:\nchart:  %+v\nconfig: %+v", chartName, file, rules(t, got), rules(t, want))
		}
	}
}

// TestHelmInstallUpgradeUninstall runs the chart's life for real against the
// API server: install, upgrade with changed values, uninstall keeping the CRD
// and with it the MeetergoWebhooks.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	const ns, release = "meetergo-helm", "mo"
	ctx := t.Context()
	k8s := env.Client

	// The CRD was installed by the test environment; the release must own it.
	// Afterwards the test environment's CRD comes back, for the other tests.
	kubectl(t, "", "delete", "crd", crdName, "--ignore-not-found", "--wait", "--timeout=60s")
	t.Cleanup(func() {
		kubectl(t, "", "delete", "crd", crdName, "--ignore-not-found", "--wait", "--timeout=60s")
		kubectl(t, "", "create", "--filename", "config/crd/bases")
		kubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crdName)
	})

	out := helm(t, "install", release, chartDir, "--namespace", ns, "--create-namespace",
		"--set", "receiver.publicURL=https://hooks.example.com",
		"--set", "meetergo.apiURL=https://api.meetergo.example")
	for _, want := range []string{"Receiver public URL: https://hooks.example.com", "kubectl get mgwh"} {
		if !strings.Contains(out, want) {
			t.Errorf("install notes lack %q:\n%s", want, out)
		}
	}

	name := release + "-meetergo-operator"
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sts); err != nil {
		t.Fatal(err)
	}
	c := managerContainer(t, sts.Spec.Template.Spec)
	assertFlag(t, c.Args, "receiver-public-url", "https://hooks.example.com")
	assertFlag(t, c.Args, "meetergo-api-url", "https://api.meetergo.example")
	assertPodNamespaceEnv(t, c)
	if *sts.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *sts.Spec.Replicas)
	}
	for _, obj := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-metrics"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name + "-manager"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-manager"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-leader-election"}},
	} {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &policyv1.PodDisruptionBudget{}); !apierrors.IsNotFound(err) {
		t.Errorf("PodDisruptionBudget with one replica: %v", err)
	}

	// A team's resource, which must outlive the release.
	createNamespace(t, "team-a")
	mgwh := &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "crm-sync"},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes:  []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated},
			Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
		},
	}
	// The CRD the release just created may take a moment to serve.
	eventually(t, 30*time.Second, "creating a MeetergoWebhook", func() error {
		return client.IgnoreAlreadyExists(k8s.Create(ctx, mgwh.DeepCopy()))
	})

	helm(t, "upgrade", release, chartDir, "--namespace", ns,
		"--set", "replicaCount=2",
		"--set", "receiver.publicURL=https://hooks2.example.com",
		"--set", "meetergo.apiURL=https://api.meetergo.example",
		"--set", "logging.level=debug",
		"--set-json", `extraArgs=["--zap-stacktrace-level=panic"]`)
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sts); err != nil {
		t.Fatal(err)
	}
	c = managerContainer(t, sts.Spec.Template.Spec)
	assertFlag(t, c.Args, "receiver-public-url", "https://hooks2.example.com")
	assertFlag(t, c.Args, "zap-log-level", "debug")
	assertFlag(t, c.Args, "zap-stacktrace-level", "panic")
	if *sts.Spec.Replicas != 2 {
		t.Errorf("replicas %d after upgrade, want 2", *sts.Spec.Replicas)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &policyv1.PodDisruptionBudget{}); err != nil {
		t.Errorf("no PodDisruptionBudget with two replicas: %v", err)
	}

	out = mustRun(t, "", helmBin(t), "uninstall", release, "--namespace", ns)
	if !strings.Contains(out, crdName) {
		t.Errorf("uninstall does not report the kept CRD:\n%s", out)
	}
	for _, obj := range []client.Object{
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name + "-manager"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
	} {
		eventually(t, 30*time.Second, fmt.Sprintf("%T %s gone", obj, obj.GetName()), func() error {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
	}
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	if err := k8s.Get(ctx, client.ObjectKey{Name: crdName}, crd); err != nil {
		t.Fatalf("the CRD did not survive helm uninstall: %v", err)
	}
	if crd.GetDeletionTimestamp() != nil {
		t.Fatal("the CRD is being deleted after helm uninstall")
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(mgwh), &webhooksv1alpha1.MeetergoWebhook{}); err != nil {
		t.Errorf("the MeetergoWebhook did not survive helm uninstall: %v", err)
	}

	// The kept CRD still names the release: another release cannot take it
	// over, the same release installed again adopts it (docs/install.md).
	if r := runTool(t, "", helmBin(t), "install", "other", chartDir, "--namespace", ns); r.err == nil || !strings.Contains(r.output(), crdName) {
		t.Errorf("a second release took over the kept CRD (err %v):\n%s", r.err, r.output())
	}
	helm(t, "install", release, chartDir, "--namespace", ns)
	helm(t, "uninstall", release, "--namespace", ns)
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := client.IgnoreAlreadyExists(env.Client.Create(t.Context(), ns)); err != nil {
		t.Fatal(err)
	}
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	out := helm(t, "show", "chart", chartDir)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion: "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("no appVersion in:\n%s", out)
	return ""
}

func hasEnv(c corev1.Container, name, value string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.Value == value {
			return true
		}
	}
	return false
}

func hasEmptyDir(spec corev1.PodSpec, name string) bool {
	for _, v := range spec.Volumes {
		if v.Name == name && v.EmptyDir != nil {
			return true
		}
	}
	return false
}

func assertPodNamespaceEnv(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
				t.Errorf("POD_NAMESPACE is %+v, want the downward API's metadata.namespace", e)
			}
			return
		}
	}
	t.Errorf("no POD_NAMESPACE in %+v", c.Env)
}

// assertHardened checks the pod and container security settings.
func assertHardened(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Errorf("pod securityContext %+v: not runAsNonRoot", psc)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("pod seccompProfile %+v, want RuntimeDefault", psc.SeccompProfile)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("container securityContext %+v: root filesystem not read-only", sc)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("container securityContext %+v: privilege escalation allowed", sc)
	case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Errorf("container capabilities %+v, want drop [ALL]", sc.Capabilities)
	}
}

// assertBoundToServiceAccount checks that a binding grants the role to the
// operator's ServiceAccount.
func assertBoundToServiceAccount(t *testing.T, objs []*unstructured.Unstructured, role *unstructured.Unstructured, sa, ns string) {
	t.Helper()
	for _, o := range ofKind(objs, role.GetKind()+"Binding") {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		if o.GetKind() == "ClusterRoleBinding" {
			b := convert[rbacv1.ClusterRoleBinding](t, o)
			ref, subjects = b.RoleRef, b.Subjects
		} else {
			b := convert[rbacv1.RoleBinding](t, o)
			ref, subjects = b.RoleRef, b.Subjects
		}
		if ref.Kind != role.GetKind() || ref.Name != role.GetName() {
			continue
		}
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
				return
			}
		}
	}
	t.Errorf("no %sBinding grants %s to ServiceAccount %s/%s", role.GetKind(), role.GetName(), ns, sa)
}
