package install

import (
	"strings"
	"testing"
)

// Defect 9: several replicas without leader election each reconcile, and
// together they register duplicates and go past meetergo's six webhooks. The
// chart refuses replicaCount > 1 with leaderElection.enabled=false, in
// `helm template`, `helm lint` and `helm install --dry-run`, naming both
// values; with --skip-schema-validation the templates refuse it in words.
// Leader election on (the default) with two replicas, and one replica without
// it, are accepted.
func TestChartRefusesSeveralReplicasWithoutLeaderElection(t *testing.T) {
	noElection := []string{"--set", "replicaCount=2", "--set", "leaderElection.enabled=false"}
	for _, cmd := range [][]string{
		{"template", "t", chartDir},
		{"lint", chartDir},
		{"install", "t", chartDir, "--namespace", "replicas", "--dry-run"},
	} {
		t.Run("refused by helm "+cmd[0], func(t *testing.T) {
			r := runTool(t, "", helmBin(t), append(cmd, noElection...)...)
			if r.err == nil {
				t.Fatalf("helm %s accepted replicaCount=2 with leaderElection.enabled=false:\n%s", cmd[0], r.output())
			}
			for _, want := range []string{"/replicaCount", "/leaderElection/enabled", "value must be true"} {
				if !strings.Contains(r.output(), want) {
					t.Errorf("helm %s refused it without naming %q:\n%s", cmd[0], want, r.output())
				}
			}
		})
	}
	t.Run("refused in words without the schema", func(t *testing.T) {
		r := runTool(t, "", helmBin(t), append([]string{"template", "t", chartDir, "--skip-schema-validation"}, noElection...)...)
		if r.err == nil {
			t.Fatal("helm template --skip-schema-validation accepted replicaCount=2 with leaderElection.enabled=false")
		}
		if want := "replicaCount is 2 but leaderElection.enabled is false: several replicas need leader election"; !strings.Contains(r.output(), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.output())
		}
	})

	t.Run("two replicas with leader election", func(t *testing.T) {
		objs := decodeObjects(t, render(t, "ops", "--set", "replicaCount=2", "--set", "leaderElection.enabled=true"))
		sts := statefulSet(t, objs, "t-meetergo-operator")
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 2 {
			t.Errorf("replicas %v, want 2", sts.Spec.Replicas)
		}
		if c := managerContainer(t, sts.Spec.Template.Spec); !hasArg(c.Args, "--leader-elect") {
			t.Errorf("no --leader-elect in %q", c.Args)
		}
		// The control plane has the CRD already, not owned by a release.
		helm(t, "install", "t", chartDir, "--namespace", "replicas", "--dry-run", "--set", "replicaCount=2", "--set", "crds.install=false")
		helm(t, "lint", "--strict", chartDir, "--set", "replicaCount=2")
	})
	t.Run("defaults elect a leader", func(t *testing.T) {
		// The default is leader election on, so raising replicaCount alone
		// is accepted.
		objs := decodeObjects(t, render(t, "ops", "--set", "replicaCount=3"))
		if c := managerContainer(t, statefulSet(t, objs, "t-meetergo-operator").Spec.Template.Spec); !hasArg(c.Args, "--leader-elect") {
			t.Errorf("the chart's default does not elect a leader: %q", c.Args)
		}
	})
	t.Run("one replica without leader election", func(t *testing.T) {
		objs := decodeObjects(t, render(t, "ops", "--set", "leaderElection.enabled=false"))
		if c := managerContainer(t, statefulSet(t, objs, "t-meetergo-operator").Spec.Template.Spec); hasArg(c.Args, "--leader-elect") {
			t.Errorf("--leader-elect with leaderElection.enabled=false: %q", c.Args)
		}
	})
}
