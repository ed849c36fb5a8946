package install

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const healthKey = "resource.customizations.health.webhooks.meetergo-operator.io_MeetergoWebhook"

// healthTests is config/argocd/health_test.yaml, in Argo CD's format.
type healthTests struct {
	Tests []struct {
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
		InputPath string `json:"inputPath"`
	} `json:"tests"`
}

// TestArgoCDHealthCheck evaluates config/argocd/health.lua on each fixture
// the way Argo CD does.
func TestArgoCDHealthCheck(t *testing.T) {
	dir := repoPath("config", "argocd")
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests healthTests
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}

	used := map[string]bool{}
	seen := map[string]bool{}
	for _, tc := range tests.Tests {
		used[filepath.Clean(tc.InputPath)] = true
		seen[tc.HealthStatus.Status] = true
		t.Run(filepath.Base(tc.InputPath), func(t *testing.T) {
			obj := readObject(t, filepath.Join(dir, tc.InputPath))
			status, message, err := executeHealthLua(obj, string(script))
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.HealthStatus.Status || message != tc.HealthStatus.Message {
				t.Errorf("health %s %q\nwant   %s %q", status, message, tc.HealthStatus.Status, tc.HealthStatus.Message)
			}
		})
	}
	// Every fixture is checked, and every state has one.
	fixtures, err := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		if rel, _ := filepath.Rel(dir, f); !used[rel] {
			t.Errorf("fixture %s is not in health_test.yaml", rel)
		}
	}
	for _, s := range []string{"Healthy", "Progressing", "Degraded", "Suspended"} {
		if !seen[s] {
			t.Errorf("no fixture expects %s", s)
		}
	}
}

// TestArgoCDHealthCheckNeedsNoStringLibrary guards against using Lua's
// string library, which Argo CD does not load for argocd-cm health checks:
// the same evaluation with a script that uses it must fail.
func TestArgoCDHealthCheckNeedsNoStringLibrary(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x"}}}
	if _, _, err := executeHealthLua(obj, `return {status = string.upper("healthy")}`); err == nil {
		t.Fatal("the evaluation offers Lua's string library, which Argo CD does not")
	}
}

// TestArgoCDComponent builds an Argo CD kustomization that uses the
// config/argocd Component and checks that argocd-cm gets the health check.
func TestArgoCDComponent(t *testing.T) {
	dir := t.TempDir()
	component, err := filepath.Rel(dir, repoPath("config", "argocd"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"kustomization.yaml": "resources: [argocd-cm.yaml]\ncomponents: [" + component + "]\n",
		"argocd-cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm, namespace: argocd}
data: {url: https://argocd.example.com}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objs := decodeObjects(t, kubectl(t, "", "kustomize", dir))
	cm := mustFind(t, objs, "ConfigMap", "argocd-cm")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	script, err := os.ReadFile(repoPath("config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if data[healthKey] != string(script) {
		t.Errorf("argocd-cm %s is not health.lua; data keys: %v", healthKey, slices.Sorted(maps.Keys(data)))
	}
	if data["url"] != "https://argocd.example.com" {
		t.Errorf("the Component replaced argocd-cm's other keys: %v", data)
	}
}

// TestArgoCDConfigMapPatch runs the command docs/argocd.md gives for adding
// the health check to a live argocd-cm.
func TestArgoCDConfigMapPatch(t *testing.T) {
	createNamespace(t, "argocd")
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "argocd", Name: "argocd-cm"},
		Data:       map[string]string{"url": "https://argocd.example.com"},
	}
	if err := env.Client.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	// As in docs/argocd.md, with this repository's kubectl.
	script := `kubectl -n argocd patch configmap argocd-cm --type merge --patch "$(
  kubectl create configmap argocd-cm --dry-run=client -o json \
    --from-file=resource.customizations.health.webhooks.meetergo-operator.io_MeetergoWebhook=config/argocd/health.lua)"`
	mustRun(t, "", "bash", "-ec", `kubectl() { "$KUBECTL" "$@"; }`+"\n"+script)

	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(cm), cm); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(repoPath("config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data[healthKey] != string(want) || cm.Data["url"] != "https://argocd.example.com" {
		t.Errorf("argocd-cm after the patch: keys %v", slices.Sorted(maps.Keys(cm.Data)))
	}
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// As from the API server: integers decode as int64.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// executeHealthLua runs a health script as Argo CD's util/lua does for a
// resource.customizations.health entry: a state without the standard
// libraries but package, base and table; a one-second deadline; the object
// as the global table obj; the returned table's status and message. (Argo CD
// also loads a restricted os library, which this script does not use.)
func executeHealthLua(obj *unstructured.Unstructured, script string) (status, message string, err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	// Argo CD encodes the table as JSON into {status, message} strings.
	get := func(field string) (string, error) {
		switch v := ret.RawGetString(field).(type) {
		case lua.LString:
			return string(v), nil
		case *lua.LNilType:
			return "", nil
		default:
			return "", fmt.Errorf("hs.%s is a %s, not a string", field, v.Type())
		}
	}
	if status, err = get("status"); err != nil {
		return "", "", err
	}
	if message, err = get("message"); err != nil {
		return "", "", err
	}
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return status, message, nil
	}
	return "", "", fmt.Errorf("Lua returned an invalid health status %q", status)
}

// toLua converts a decoded object to Lua values as Argo CD's decodeValue does.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case json.Number:
		return lua.LString(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
