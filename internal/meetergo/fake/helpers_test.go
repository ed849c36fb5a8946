package fake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	raw    string
	json   any
}

// field returns a top-level field of an object answer.
func (a answer) field(name string) any {
	m, _ := a.json.(map[string]any)
	return m[name]
}

// call sends one request; user, if not nil, is sent as the user header.
func call(t *testing.T, base, method, path, token string, user *string, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if user != nil {
		req.Header.Set("x-meetergo-api-user-id", *user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.json)
	return a
}

func ptr(s string) *string { return &s }

func start(t *testing.T, s fake.Settings) (*fake.Server, string) {
	return fake.Start(t, fake.Options{Settings: s, Seed: fake.DefaultSeed()})
}

const hookBody = `{"endpoint":"https://hooks.example.com/t1","eventTypes":["booking_created"],"description":"d"}`

func mustStatus(t *testing.T, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
}
