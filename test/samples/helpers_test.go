package samples

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// sampleCredentials makes the credentials of config/samples valid at the
// fake meetergo: one company, a personal token and a platform key.
func sampleCredentials() fake.Seed {
	const company, admin = "c0ffee00-0000-4000-8000-0000000e2e01", "00000000-0000-4000-8000-000000000001"
	return fake.Seed{
		Companies: []fake.Company{{ID: company, Name: "Samples GmbH (fake)"}},
		Users:     []fake.User{{ID: admin, CompanyID: company, Email: "admin@samples.example.test", IsAdmin: true}},
		Credentials: []fake.Credential{
			{Token: "rgo-replace-with-your-personal-access-token", UserID: admin},
			{Token: "ak_live:00000000-0000-4000-8000-000000000000:replace-with-your-key-secret", CompanyID: company},
		},
	}
}

// startFakeMeetergo serves a fake meetergo on 127.0.0.1 for the test.
func startFakeMeetergo(t *testing.T, seed fake.Seed) string {
	t.Helper()
	_, url := fake.Start(t, fake.Options{Seed: seed})
	return url
}

// tokenKeyFile writes a token key for the operator binary.
func tokenKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(p, []byte("e2e-token-key-0123456789abcdef0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// targetService makes a selectorless Service with port "http" and an
// EndpointSlice with one ready, never-routed address.
func targetService(t *testing.T, ns, name string, port int32) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: port}}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.20"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port)}},
	}
	for _, o := range []client.Object{svc, slice} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
