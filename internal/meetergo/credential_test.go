package meetergo

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestCredentialNeverPrintsTheToken(t *testing.T) {
	const secret = "s3cr3tp4rt0fth3k3y"
	for _, tc := range []struct {
		cred     Credential
		kind     CredentialKind
		contains string
	}{
		{Credential{Token: "rgo-" + secret}, PersonalToken, "rgo-…(redacted)"},
		{Credential{Token: "ak_live:0b3f0000-0000-4000-8000-000000000000:" + secret, UserID: "u-1"}, PlatformKey, "platform key (redacted) for user u-1"},
		{Credential{Token: "ak_live:0b3f0000-0000-4000-8000-000000000000:" + secret}, PlatformKey, "without user id"},
		{Credential{Token: "ak_test:0b3f0000-0000-4000-8000-000000000000:" + secret, UserID: "u-1"}, UnsupportedCredential, "unsupported credential (redacted)"},
		{Credential{Token: "eyJ0b3f0000." + secret}, UnsupportedCredential, "unsupported credential (redacted)"},
	} {
		if tc.cred.Kind() != tc.kind {
			t.Errorf("Kind() = %s, want %s", tc.cred.Kind(), tc.kind)
		}
		var logged strings.Builder
		funcr.New(func(p, a string) { logged.WriteString(p + a) }, funcr.Options{}).Info("x", "cred", tc.cred, "ptr", &tc.cred)
		js, _ := json.Marshal(map[string]any{"c": tc.cred})
		outputs := []string{tc.cred.String(), tc.cred.GoString(), logged.String(), string(js)}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10.3s"} {
			outputs = append(outputs, fmt.Sprintf(verb, tc.cred), fmt.Sprintf(verb, &tc.cred), fmt.Sprintf(verb, []Credential{tc.cred}))
		}
		for _, out := range outputs {
			if strings.Contains(out, secret) || strings.Contains(out, "0b3f0000") {
				t.Errorf("output reveals the token: %s", out)
			}
		}
		if !strings.Contains(fmt.Sprint(tc.cred), tc.contains) {
			t.Errorf("String() = %q, want it to contain %q", tc.cred.String(), tc.contains)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Credential{Token: "rgo-a"}, Credential{Token: "rgo-b"}
	if a.Fingerprint() == b.Fingerprint() || a.Fingerprint() != (Credential{Token: "rgo-a", UserID: "x"}).Fingerprint() {
		t.Fatal("the fingerprint depends on the token alone")
	}
	if len(a.Fingerprint()) != 16 || strings.Contains(a.Fingerprint(), "rgo") {
		t.Fatalf("fingerprint %q", a.Fingerprint())
	}
}

func TestCheckRefusesUnusableCredentials(t *testing.T) {
	for _, tc := range []struct {
		cred Credential
		want Reason
	}{
		{Credential{}, ReasonUnauthorized},
		{Credential{Token: "rgo-with space"}, ReasonUnauthorized},
		{Credential{Token: "rgo-x\r\nX-Evil: 1"}, ReasonUnauthorized},
		{Credential{Token: "ak_live:id:secret"}, ReasonMissingUserID},
		{Credential{Token: "ak_live:id:secret", UserID: "a\nb"}, ReasonInvalid},
		{Credential{Token: "rgo-fine"}, ""},
		{Credential{Token: "ak_live:id:secret", UserID: "u"}, ""},
		{Credential{Token: "session.jwt.secret", UserID: "u"}, ReasonUnsupportedCredential},
		{Credential{Token: "ak_test:id:secret", UserID: "u"}, ReasonUnsupportedCredential},
		{Credential{Token: "Rgo-secret"}, ReasonUnsupportedCredential},
		{Credential{Token: "not a token secret"}, ReasonUnauthorized},
	} {
		err := tc.cred.check(opList)
		if got := ReasonOf(err); got != tc.want {
			t.Errorf("check(%v) = %v, want reason %q", tc.cred, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error reveals the token: %v", err)
		}
	}
}
