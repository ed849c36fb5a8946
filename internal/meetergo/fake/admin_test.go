package fake_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// TestAdminAPI drives the whole admin HTTP API as a script would: no
// credential anywhere.
func TestAdminAPI(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	admin := func(method, path, body string) answer { return call(t, base, method, "/admin"+path, "", nil, body) }

	added := admin("POST", "/webhooks", `{"companyId":"`+fake.SeedCompanyID+`","endpoint":"https://dash.example.com/1","eventTypes":["booking_created"]}`)
	mustStatus(t, added, 201)
	if added.field("source") != "dashboard" {
		t.Fatalf("added %s", added.raw)
	}
	mustStatus(t, admin("POST", "/webhooks", `{"companyId":"`+fake.SeedCompanyID+`","endpoint":"nope","eventTypes":["booking_created"]}`), 400)
	mustStatus(t, admin("PATCH", "/webhooks/1001", `{"description":"edited in the dashboard"}`), 200)
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedOtherToken, nil, hookBody), 201)

	list := admin("GET", "/webhooks", "")
	perCompany, _ := list.json.(map[string]any)
	mine, _ := perCompany[fake.SeedCompanyID].([]any)
	if len(perCompany) != 2 || len(mine) != 1 || mine[0].(map[string]any)["description"] != "edited in the dashboard" {
		t.Fatalf("list %s", list.raw)
	}
	mustStatus(t, admin("DELETE", "/webhooks/1001", ""), 204)
	mustStatus(t, admin("DELETE", "/webhooks/1001", ""), 404)

	counts := admin("GET", "/counts", "")
	if !strings.Contains(counts.raw, `"requests":1`) || strings.Contains(counts.raw, fake.SeedOtherToken) || !strings.Contains(counts.raw, "rgo-…") {
		t.Fatalf("counts show masked credentials: %s", counts.raw)
	}
	if reqs := admin("GET", "/requests", ""); strings.Contains(reqs.raw, fake.SeedOtherToken) {
		t.Fatalf("requests leak a token: %s", reqs.raw)
	}
	mustStatus(t, admin("DELETE", "/counts", ""), 204)
	if srv.Count("", "", "").Requests != 0 {
		t.Fatal("counts not reset")
	}

	fault := admin("POST", "/faults", `{"method":"GET","times":1,"status":503,"latency":"1ms"}`)
	mustStatus(t, fault, 201)
	mustStatus(t, admin("POST", "/faults", `{"hang":true,"drop":true}`), 400)
	if faults := admin("GET", "/faults", ""); !strings.Contains(faults.raw, `"latency":"1ms"`) {
		t.Fatalf("faults %s", faults.raw)
	}
	mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 503)
	_, _ = srv.InjectFault(fake.Fault{Status: 500})
	mustStatus(t, admin("DELETE", fmt.Sprintf("/faults/%d", srv.Faults()[0].ID), ""), 204)
	mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 200)
	_, _ = srv.InjectFault(fake.Fault{Status: 500})
	mustStatus(t, admin("DELETE", "/faults", ""), 204)
	if len(srv.Faults()) != 0 {
		t.Fatal("faults not cleared")
	}

	settings := admin("PATCH", "/settings", `{"retryAfter":true,"webhookLimit":2,"latency":"0s"}`)
	mustStatus(t, settings, 200)
	if s := srv.Settings(); !s.RetryAfter || s.WebhookLimit != 2 || s.Burst != fake.DefaultBurst {
		t.Fatalf("PATCH changes the given settings only: %+v", s)
	}

	mustStatus(t, admin("POST", "/seed", `{"credentials":[{"token":"rgo-added-later-0123456789","userId":"`+fake.SeedMemberID+`"}]}`), 204)
	mustStatus(t, call(t, base, "GET", "/v4/user/me", "rgo-added-later-0123456789", nil, ""), 200)
	mustStatus(t, admin("POST", "/seed", `{"credentials":[{"token":"rgo-x","userId":"nobody"}]}`), 400)
	mustStatus(t, admin("GET", "/nothing", ""), 404)
}

func TestAdminDeliver(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	rc := newReceiver(t, 200)
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/hooks/very-secret-token", "booking_cancelled")
	a := call(t, base, "POST", "/admin/deliver", "", nil, `{"eventType":"booking_cancelled","twice":true,"padBytes":2048}`)
	mustStatus(t, a, 200)
	results, _ := a.field("results").([]any)
	if len(results) != 2 || len(rc.got()) != 2 || len(rc.got()[0]) < 2048 {
		t.Fatalf("deliver %s", a.raw)
	}
	first := results[0].(map[string]any)
	if first["statusCode"] != float64(200) || first["attempt"] != float64(1) || strings.Contains(a.raw, "very-secret-token") ||
		!strings.HasPrefix(first["endpoint"].(string), rc.url) {
		t.Fatalf("results mask the endpoint's path: %s", a.raw)
	}
	mustStatus(t, call(t, base, "POST", "/admin/deliver", "", nil, `{"eventType":"nope"}`), 400)
}
