package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// validSpec is the example of the README: every field a user writes.
const validSpec = `
eventTypes: [booking_created, booking_cancelled, booking_rescheduled]
credentials:
  secretRef: {name: meetergo-api}
description: CRM sync for the sales team
targets:
- service: {name: crm-bridge, port: http}
  path: /meetergo
  eventTypes: [booking_created]
- service: {name: notifier, port: 8080}
delivery: {timeout: 10s, maxAttempts: 12}
deletionPolicy: Delete
suspend: false
`

// object builds a MeetergoWebhook from a spec in YAML, as kubectl would send it.
func object(t *testing.T, name, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("test spec is not YAML: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
	u.SetGroupVersionKind(webhooksv1alpha1.GroupVersion.WithKind("MeetergoWebhook"))
	u.SetNamespace("default")
	u.SetName(name)
	return u
}

// create sends obj the way `kubectl apply` does: unknown fields are errors.
func create(ctx context.Context, obj client.Object) error {
	return env.Client.Create(ctx, obj, client.FieldValidation("Strict"))
}

func TestValidResourceIsAcceptedAndReadBack(t *testing.T) {
	ctx := t.Context()
	if err := create(ctx, object(t, "valid", validSpec)); err != nil {
		t.Fatalf("valid resource refused: %v", err)
	}
	got := &webhooksv1alpha1.MeetergoWebhook{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "valid"}, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.EventTypes) != 3 || got.Spec.Targets[0].Service.Port.StrVal != "http" ||
		got.Spec.Targets[1].Service.Port.IntValue() != 8080 || got.Spec.Targets[0].Path != "/meetergo" ||
		got.Spec.Delivery.Timeout.Duration.String() != "10s" {
		t.Fatalf("read back differs from what was written: %+v", got.Spec)
	}
}

func TestDefaultsAreTopLevel(t *testing.T) {
	ctx := t.Context()
	minimal := `
eventTypes: [new_employee]
credentials: {secretRef: {name: meetergo-api}}
targets:
- service: {name: onboarding, port: 80}
`
	if err := create(ctx, object(t, "minimal", minimal)); err != nil {
		t.Fatalf("minimal resource refused: %v", err)
	}
	got := &webhooksv1alpha1.MeetergoWebhook{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "minimal"}, got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.DeletionPolicy != webhooksv1alpha1.DeletionPolicyDelete {
		t.Errorf("deletionPolicy defaulted to %q, want Delete", got.Spec.DeletionPolicy)
	}
	if got.Spec.Delivery.Timeout == nil || got.Spec.Delivery.Timeout.Duration.String() != "10s" || got.Spec.Delivery.MaxAttempts != 12 {
		t.Errorf("delivery defaulted to %+v, want timeout 10s and maxAttempts 12", got.Spec.Delivery)
	}
	// Nothing is defaulted inside list items: Argo CD would see drift there.
	if tg := got.Spec.Targets[0]; tg.Path != "" || len(tg.EventTypes) != 0 {
		t.Errorf("a target was defaulted: %+v", tg)
	}
}

func TestInvalidResourcesAreRefused(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want string // what the API server's message must say
	}{
		{"unknown event type", `{eventTypes: [booking_canceled], credentials: {secretRef: {name: s}}}`,
			`spec.eventTypes[0]: Unsupported value: "booking_canceled"`},
		{"empty event types", `{eventTypes: [], credentials: {secretRef: {name: s}}}`,
			`spec.eventTypes: Invalid value: 0: spec.eventTypes in body should have at least 1 items`},
		{"missing event types", `{credentials: {secretRef: {name: s}}}`,
			`spec.eventTypes: Required value`},
		{"duplicate event types", `{eventTypes: [booking_created, booking_created], credentials: {secretRef: {name: s}}}`,
			`spec.eventTypes[1]: Duplicate value: "booking_created"`},
		{"target event type not subscribed", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a, port: 80}, eventTypes: [booking_cancelled]}]}`,
			`every targets[].eventTypes entry must also be listed in spec.eventTypes`},
		{"path without leading slash", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a, port: 80}, path: hooks}]}`,
			`spec.targets[0].path: Invalid value: "hooks": path must start with '/'`},
		{"port zero", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a, port: 0}}]}`,
			`port must be a number from 1 to 65535`},
		{"port above 65535", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a, port: 70000}}]}`,
			`port must be a number from 1 to 65535`},
		{"port name too long", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a, port: very-long-port-name}}]}`,
			`or a Service port name`},
		{"missing target port", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: a}}]}`,
			`spec.targets[0].service.port: Required value`},
		{"service name not a DNS label", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, targets: [{service: {name: CRM.bridge, port: 80}}]}`,
			`spec.targets[0].service.name: Invalid value: "CRM.bridge"`},
		{"negative timeout", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, delivery: {timeout: -5s}}`,
			`spec.delivery.timeout: Invalid value: "-5s"`},
		{"absurd timeout", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, delivery: {timeout: 10h}}`,
			`timeout must be between 1s and 5m`},
		{"zero max attempts", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, delivery: {maxAttempts: 0}}`,
			`spec.delivery.maxAttempts: Invalid value: 0: spec.delivery.maxAttempts in body should be greater than or equal to 1`},
		{"unknown deletion policy", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, deletionPolicy: Keep}`,
			`spec.deletionPolicy: Unsupported value: "Keep": supported values: "Delete", "Orphan"`},
		{"missing secret name", `{eventTypes: [booking_created], credentials: {secretRef: {}}}`,
			`spec.credentials.secretRef.name: Required value`},
		{"empty secret name", `{eventTypes: [booking_created], credentials: {secretRef: {name: ""}}}`,
			`spec.credentials.secretRef.name: Invalid value: "": spec.credentials.secretRef.name in body should be at least 1 chars long`},
		{"missing credentials", `{eventTypes: [booking_created]}`,
			`spec.credentials: Required value`},
		{"receiver URL not http(s)", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, receiverURL: "ftp://example.com"}`,
			`receiverURL must be an absolute http(s) URL`},
		{"description imitating the ownership marker", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, description: "CRM [k8s meetergo-operator uid=3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f]"}`,
			`description must not contain '[k8s meetergo-operator uid='`},
		{"unknown field", `{eventTypes: [booking_created], credentials: {secretRef: {name: s}}, evenTypes: [booking_created]}`,
			`unknown field "spec.evenTypes"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := create(t.Context(), object(t, fmt.Sprintf("invalid-%d", i), tc.spec))
			if err == nil {
				t.Fatalf("accepted; want refusal saying %q", tc.want)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("refused with %v, want an Invalid or BadRequest status", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused with:\n  %v\nwant the message to contain:\n  %s", err, tc.want)
			}
		})
	}
}
