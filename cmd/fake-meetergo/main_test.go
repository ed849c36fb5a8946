package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// startBinary runs run() as the binary would and returns the base URL it
// printed; the server stops when the test ends.
func startBinary(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), stdoutW, io.Discard)
		_ = stdoutW.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdoutR).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdoutR)
	}()
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("first line %q", line)
		}
		return url
	case <-time.After(10 * time.Second):
		t.Fatal("no listening line within 10s")
	}
	return ""
}

func get(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

func TestBinaryWithDefaultSeedAndFlags(t *testing.T) {
	url := startBinary(t, "--retry-after", "--burst", "1", "--personal-token", "rgo-from-the-command-line")
	if resp := get(t, url+"/v4/user/me", fake.SeedAdminToken); resp.StatusCode != 200 {
		t.Fatalf("seed token: %d", resp.StatusCode)
	}
	resp := get(t, url+"/v4/user/me", fake.SeedAdminToken)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("--burst 1 --retry-after: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := get(t, url+"/v4/user/me", "rgo-from-the-command-line"); resp.StatusCode != 200 {
		t.Fatalf("--personal-token: %d", resp.StatusCode)
	}
}

func TestBinaryWithConfig(t *testing.T) {
	cfg := `{
  "webhookLimit": 1,
  "planWall": true,
  "seed": {
    "companies": [{"id": "co-1", "name": "Configured"}],
    "users": [{"id": "u-1", "companyId": "co-1", "email": "u1@example.com"}],
    "credentials": [{"token": "rgo-configured-token", "userId": "u-1"}],
    "webhooks": [{"companyId": "co-1", "endpoint": "https://pre.example.com/x", "eventTypes": ["booking_created"]}]
  },
  "faults": [{"method": "GET", "path": "/v4/user/me", "times": 1, "status": 503}]
}`
	path := filepath.Join(t.TempDir(), "fake.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startBinary(t, "--config", path, "--plan-wall=false")
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/v4/user/me", "rgo-configured-token", 503},
		{"/v4/user/me", "rgo-configured-token", 200},
		{"/v4/user/me", fake.SeedAdminToken, 401},
		{"/webhooks", "rgo-configured-token", 200}, // --plan-wall=false overrides the file
	} {
		if resp := get(t, url+tc.path, tc.token); resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
}

func TestBinaryRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--config", "/does/not/exist.json"},
		{"--personal-token", "ak_live:not-personal"},
		{"--platform-key", "rgo-not-a-platform-key"},
		{"--platform-key", "not-a-meetergo-key"},
		{"--any-company-platform-key", "ak_test:x:y"},
		{"--plan-wall-status", "200"},
		{"--description-max-length", "-1"},
		{"--payload-id-field", "bookingId"},
		{"--no-such-flag"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestBinaryUnknownsSwitches: every switch for meetergo's unknowns can be
// set by a flag, and the one-key-several-companies credential works.
func TestBinaryUnknownsSwitches(t *testing.T) {
	const anyKey = "ak_live:00000000-0000-4000-8000-0000000000aa:anycompanysecret"
	url := startBinary(t, "--plan-wall-status", "406", "--plan-wall-on-create", "--list-shape", "data",
		"--description-max-length", "12", "--payload-id-field", "appointmentId", "--any-company-platform-key", anyKey)
	resp, err := http.Get(url + "/admin/settings")
	if err != nil {
		t.Fatal(err)
	}
	var s fake.Settings
	err = json.NewDecoder(resp.Body).Decode(&s)
	_ = resp.Body.Close()
	if err != nil || s.PlanWallStatus != 406 || !s.PlanWallOnCreate || s.ListShape != "data" || s.DescriptionMaxLength != 12 || s.PayloadIDField != "appointmentId" {
		t.Fatalf("settings %+v, %v", s, err)
	}
	for _, user := range []string{fake.SeedAdminID, fake.SeedOtherUserID} {
		req, _ := http.NewRequest(http.MethodGet, url+"/v4/user/me", nil)
		req.Header.Set("Authorization", "Bearer "+anyKey)
		req.Header.Set("x-meetergo-api-user-id", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("--any-company-platform-key acting for %s: %d", user, resp.StatusCode)
		}
	}
}
