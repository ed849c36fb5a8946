package token

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestTokensAreStableDistinctAndLongEnough(t *testing.T) {
	key := []byte(strings.Repeat("k", KeySize))
	d, err := NewDeriver(key)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := NewDeriver(key)
	other, _ := NewDeriver([]byte(strings.Repeat("o", KeySize)))

	a := d.Token("uid-a", 0)
	if a != d2.Token("uid-a", 0) {
		t.Error("the same key, UID and generation give different tokens: a restart would break the URL")
	}
	seen := map[string]string{}
	for name, tok := range map[string]string{
		"uid-a/0":                      a,
		"uid-a/1":                      d.Token("uid-a", 1),
		"uid-b/0":                      d.Token("uid-b", 0),
		"other key uid-a/0":            other.Token("uid-a", 0),
		"uid-a1/0 vs uid-a/10 framing": d.Token("uid-a1", 0),
	} {
		if prev, dup := seen[tok]; dup {
			t.Errorf("%s and %s share a token", name, prev)
		}
		seen[tok] = name
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw)*8 < 128 {
			t.Errorf("%s: token %q has %d bits, want >= 128 (err %v)", name, tok, len(raw)*8, err)
		}
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := NewDeriver([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestEndpointAndMask(t *testing.T) {
	cases := []struct{ base, want, masked string }{
		{"https://hooks.example.com", "https://hooks.example.com/hooks/T", "https://hooks.example.com/hooks/********"},
		{"https://hooks.example.com/meetergo/", "https://hooks.example.com/meetergo/hooks/T", "https://hooks.example.com/meetergo/hooks/********"},
	}
	for _, c := range cases {
		if got := Endpoint(c.base, "T"); got != c.want {
			t.Errorf("Endpoint(%q) = %q, want %q", c.base, got, c.want)
		}
		if got := Masked(c.base); got != c.masked || strings.Contains(got, "/T") {
			t.Errorf("Masked(%q) = %q, want %q", c.base, got, c.masked)
		}
	}
}
