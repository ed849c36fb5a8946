package fake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

func TestFaultNextNMatching(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	if _, err := srv.InjectFault(fake.Fault{Method: "GET", Path: "/webhooks", Times: 2, Status: 503}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, base, "GET", "/v4/user/me", fake.SeedAdminToken, nil, ""), 200)      // other path
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201) // other method
	for range 2 {
		a := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "")
		mustStatus(t, a, 503)
		if a.field("statusCode") != float64(503) {
			t.Fatalf("NestJS-style body: %s", a.raw)
		}
	}
	mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 200)
	if len(srv.Faults()) != 0 {
		t.Fatalf("a used-up fault is removed: %+v", srv.Faults())
	}
	if recs := srv.Requests(); recs[2].Fault != "status 503" || recs[2].Status != 503 {
		t.Fatalf("record %+v", recs[2])
	}
}

func TestFaultRoutePatternAndLiteralPath(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201)
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201)
	id, _ := srv.InjectFault(fake.Fault{Path: "/webhooks/1002", Status: 500})
	mustStatus(t, call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"x"}`), 200)
	a := call(t, base, "PATCH", "/webhooks/1002", fake.SeedAdminToken, nil, `{"description":"x"}`)
	mustStatus(t, a, 500)
	if a.field("message") != fake.MsgInternal {
		t.Fatalf("500 body %s", a.raw)
	}
	srv.RemoveFault(id)
	_, _ = srv.InjectFault(fake.Fault{Method: "delete", Path: "/webhooks/{id}", Times: 1, Status: 502})
	mustStatus(t, call(t, base, "DELETE", "/webhooks/1002", fake.SeedAdminToken, nil, ""), 502)
	if len(srv.Webhooks(fake.SeedCompanyID)) != 2 {
		t.Fatal("a fault without apply changes nothing")
	}
}

func TestFaultApplied(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	_, _ = srv.InjectFault(fake.Fault{Method: "POST", Times: 1, Apply: true, Status: 500})
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 500)
	if ws := srv.Webhooks(""); len(ws) != 1 || ws[0].Source != "api" {
		t.Fatalf("applied but answered 500: %+v", ws)
	}
}

// rawDo sends a request with a client whose errors are expected.
func rawDo(ctx context.Context, method, url, token string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(hookBody))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
}

func TestFaultHangUntilTheClientGivesUp(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	_, _ = srv.InjectFault(fake.Fault{Method: "POST", Times: 1, Apply: true, Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := rawDo(ctx, "POST", base+"/webhooks", fake.SeedAdminToken)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client's timeout, got %v", err)
	}
	if len(srv.Webhooks("")) != 1 {
		t.Fatal("applied, then hung")
	}
}

func TestFaultHangEndsOnClose(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	_, _ = srv.InjectFault(fake.Fault{Hang: true})
	done := make(chan error, 1)
	go func() {
		_, err := rawDo(context.Background(), "GET", base+"/webhooks", fake.SeedAdminToken)
		done <- err
	}()
	waitFor(t, func() bool { return srv.Count("", "", "").Requests == 1 })
	srv.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a hung request ends without an answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

func TestFaultDrop(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	_, _ = srv.InjectFault(fake.Fault{Times: 1, Drop: true})
	if _, err := rawDo(context.Background(), "GET", base+"/webhooks", fake.SeedAdminToken); err == nil {
		t.Fatal("want a transport error from a dropped connection")
	}
	waitFor(t, func() bool { return len(srv.Requests()) == 1 })
	if recs := srv.Requests(); recs[0].Status != 0 || recs[0].Fault != "drop" {
		t.Fatalf("records %+v", recs)
	}
}

func TestLatency(t *testing.T) {
	srv, base := start(t, fake.Settings{Latency: fake.Duration{Duration: 50 * time.Millisecond}})
	_, _ = srv.InjectFault(fake.Fault{Path: "/webhooks", Latency: fake.Duration{Duration: 50 * time.Millisecond}})
	began := time.Now()
	mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 200)
	if took := time.Since(began); took < 100*time.Millisecond {
		t.Fatalf("setting and fault latency add up to at least 100ms, took %v", took)
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	failures := func() []bool {
		srv, base := fake.Start(t, fake.Options{Seed: fake.DefaultSeed(), FaultSeed: 42, Settings: fake.Settings{RequestsPerMinute: 100000, Burst: 1000}})
		_, _ = srv.InjectFault(fake.Fault{Probability: 0.3, Status: 503})
		var out []bool
		for range 100 {
			out = append(out, call(t, base, "GET", "/v4/user/me", fake.SeedAdminToken, nil, "").status == 503)
		}
		return out
	}
	a, b := failures(), failures()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("the same seed gives the same faults")
		}
		if a[i] {
			n++
		}
	}
	if n < 10 || n > 50 {
		t.Fatalf("%d of 100 failed at probability 0.3", n)
	}
}

func TestInvalidFaults(t *testing.T) {
	srv, _ := start(t, fake.Settings{})
	for _, f := range []fake.Fault{{}, {Status: 500, Drop: true}, {Status: 200}, {Apply: true, Latency: fake.Duration{Duration: time.Second}}, {Status: 500, Probability: 2}} {
		if _, err := srv.InjectFault(f); err == nil {
			t.Errorf("fault %+v accepted", f)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
