package install

import (
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKustomizeDefaultApplies applies config/default for real, as
// `make deploy` and the README do, and checks the objects it made.
func TestKustomizeDefaultApplies(t *testing.T) {
	const ns, prefix = "meetergo-operator-system", "meetergo-operator-"
	ctx := t.Context()
	k8s := env.Client

	out := kubectl(t, "", "apply", "--server-side", "--kustomize", "config/default")
	rendered := decodeObjects(t, kubectl(t, "", "kustomize", "config/default"))
	if got := strings.Count(out, "serverside-applied"); got != len(rendered) {
		t.Errorf("applied %d of %d objects:\n%s", got, len(rendered), out)
	}
	// A second apply changes nothing and conflicts with nothing.
	kubectl(t, "", "apply", "--server-side", "--kustomize", "config/default")

	nsObj := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels %v, want pod security restricted", nsObj.Labels)
	}

	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: prefix + "controller-manager"}, sts); err != nil {
		t.Fatal(err)
	}
	c := managerContainer(t, sts.Spec.Template.Spec)
	if !hasArg(c.Args, "--leader-elect") {
		t.Errorf("no --leader-elect in %q", c.Args)
	}
	assertFlag(t, c.Args, "receiver-bind-address", ":8082")
	assertFlag(t, c.Args, "data-dir", "/var/lib/meetergo-operator")
	assertFlag(t, c.Args, "health-probe-bind-address", ":8081")
	assertPodNamespaceEnv(t, c)
	assertHardened(t, sts.Spec.Template.Spec, c)
	if c.Image != "ghcr.io/meetergo-operator/meetergo-operator:latest" {
		t.Errorf("image %s", c.Image)
	}
	if sts.Spec.Template.Spec.ServiceAccountName != prefix+"controller-manager" {
		t.Errorf("serviceAccountName %q", sts.Spec.Template.Spec.ServiceAccountName)
	}
	if sts.Spec.ServiceName != prefix+"controller-manager-headless" {
		t.Errorf("serviceName %q", sts.Spec.ServiceName)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("volumeClaimTemplates %+v, want one named data", sts.Spec.VolumeClaimTemplates)
	}

	for _, name := range []string{"receiver", "controller-manager-headless", "controller-manager-metrics"} {
		svc := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: prefix + name}, svc); err != nil {
			t.Errorf("Service %s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(svc.Spec.Selector, sts.Spec.Selector.MatchLabels) {
			t.Errorf("Service %s selects %v, the pods are %v", name, svc.Spec.Selector, sts.Spec.Selector.MatchLabels)
		}
	}

	// The RBAC of config/rbac, renamed consistently.
	generated := decodeFile(t, repoPath("config", "rbac", "role.yaml"))
	for _, want := range generated {
		var got []rbacv1.PolicyRule
		switch want.GetKind() {
		case "ClusterRole":
			cr := &rbacv1.ClusterRole{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: prefix + want.GetName()}, cr); err != nil {
				t.Fatal(err)
			}
			got = cr.Rules
		case "Role":
			r := &rbacv1.Role{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: prefix + want.GetName()}, r); err != nil {
				t.Fatal(err)
			}
			got = r.Rules
		}
		if !reflect.DeepEqual(got, rules(t, want)) {
			t.Errorf("%s %s rules %+v, want %+v", want.GetKind(), want.GetName(), got, rules(t, want))
		}
	}
	for _, b := range []struct {
		obj  client.Object
		kind string
	}{
		{&rbacv1.ClusterRoleBinding{}, "ClusterRoleBinding"},
		{&rbacv1.RoleBinding{}, "RoleBinding"},
	} {
		key := client.ObjectKey{Name: prefix + "manager-rolebinding"}
		if b.kind == "RoleBinding" {
			key.Namespace = ns
		}
		if err := k8s.Get(ctx, key, b.obj); err != nil {
			t.Errorf("%s: %v", b.kind, err)
			continue
		}
		var subjects []rbacv1.Subject
		switch o := b.obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			subjects = o.Subjects
		case *rbacv1.RoleBinding:
			subjects = o.Subjects
		}
		want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: prefix + "controller-manager", Namespace: ns}}
		if !reflect.DeepEqual(subjects, want) {
			t.Errorf("%s subjects %+v, want %+v", b.kind, subjects, want)
		}
	}
}
