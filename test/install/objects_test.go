package install

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// decodeObjects parses a multi-document YAML stream into objects, skipping
// empty documents.
func decodeObjects(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, string(b))
}

// find returns the object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %q among %v", kind, name, names(objs))
	}
	return o
}

// ofKind returns the objects of a kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

// convert turns an object into its typed form.
func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
		t.Fatalf("converting %s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

func statefulSet(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.StatefulSet {
	t.Helper()
	return convert[appsv1.StatefulSet](t, mustFind(t, objs, "StatefulSet", name))
}

// managerContainer is the operator's container of a pod template.
func managerContainer(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == "manager" {
			return c
		}
	}
	t.Fatalf("no container manager among %d", len(spec.Containers))
	return corev1.Container{}
}

// hasArg reports whether args holds the flag exactly.
func hasArg(args []string, arg string) bool { return slices.Contains(args, arg) }

// flagValue is the value of --name=value in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func assertFlag(t *testing.T, args []string, name, want string) {
	t.Helper()
	got, ok := flagValue(args, name)
	if !ok {
		t.Errorf("no --%s in %q", name, args)
	} else if got != want {
		t.Errorf("--%s=%s, want %s", name, got, want)
	}
}

func assertNoFlag(t *testing.T, args []string, name string) {
	t.Helper()
	if v, ok := flagValue(args, name); ok {
		t.Errorf("unexpected --%s=%s in %q", name, v, args)
	}
}

// rules of a Role or ClusterRole.
func rules(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	switch o.GetKind() {
	case "ClusterRole":
		return convert[rbacv1.ClusterRole](t, o).Rules
	case "Role":
		return convert[rbacv1.Role](t, o).Rules
	}
	t.Fatalf("%s %s is not a role", o.GetKind(), o.GetName())
	return nil
}
