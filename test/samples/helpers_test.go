package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

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

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
