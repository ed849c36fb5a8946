package fake_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

func TestAuthentication(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	expiring := "ak_live:aaaaaaaa-0000-4000-8000-000000000001:expiredsecret"
	if err := srv.AddSeed(fake.Seed{Credentials: []fake.Credential{{Token: expiring, CompanyID: fake.SeedCompanyID, ExpiresAt: time.Now().Add(-time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		token   string
		user    *string
		status  int
		message string
	}{
		{"no credential", "", nil, 401, "Unauthorized"},
		{"unknown token", "rgo-nope", nil, 401, fake.MsgInvalidKey},
		{"expired platform key", expiring, ptr(fake.SeedAdminID), 401, fake.MsgExpiredKey},
		{"platform key without user header", fake.SeedPlatformKey, nil, 400, fake.MsgMissingUserHeader},
		{"platform key with an empty user header", fake.SeedPlatformKey, ptr(""), 400, fake.MsgMissingUserHeader},
		{"platform key acting for another company's user", fake.SeedPlatformKey, ptr(fake.SeedOtherUserID), 403, fake.MsgForbidden},
		{"personal token naming another user", fake.SeedMemberToken, ptr(fake.SeedAdminID), 403, fake.MsgForbidden},
		{"personal token naming its owner", fake.SeedMemberToken, ptr(fake.SeedMemberID), 200, ""},
		{"personal token", fake.SeedAdminToken, nil, 200, ""},
		{"platform key", fake.SeedPlatformKey, ptr(fake.SeedMemberID), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, base, "GET", "/v4/user/me", tc.token, tc.user, "")
			mustStatus(t, a, tc.status)
			if tc.message != "" && (a.field("message") != tc.message || a.field("statusCode") != float64(tc.status)) {
				t.Fatalf("body %s, want message %q", a.raw, tc.message)
			}
		})
	}
}

func TestWhoAmIAnswer(t *testing.T) {
	_, base := start(t, fake.Settings{})
	admin := call(t, base, "GET", "/v4/user/me", fake.SeedAdminToken, nil, "")
	member := call(t, base, "GET", "/v4/user/me", fake.SeedMemberToken, nil, "")
	if admin.field("id") != fake.SeedAdminID || admin.field("companyId") != fake.SeedCompanyID || admin.field("isAdmin") != true ||
		!strings.Contains(admin.field("email").(string), "@example.org") {
		t.Fatalf("admin: %s", admin.raw)
	}
	if _, has := member.json.(map[string]any)["isAdmin"]; has {
		t.Fatalf("isAdmin is sent for admins only: %s", member.raw)
	}
}

func TestWebhookRoutes(t *testing.T) {
	_, base := start(t, fake.Settings{})
	created := call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody)
	mustStatus(t, created, 201)
	if !strings.Contains(created.raw, `"id":1001,`) || created.field("companyId") != fake.SeedCompanyID || created.field("createdAt") == nil {
		t.Fatalf("create: the id must be a JSON number: %s", created.raw)
	}
	noDesc := call(t, base, "POST", "/webhooks", fake.SeedPlatformKey, ptr(fake.SeedMemberID), `{"endpoint":"http://plain.example.com/x","eventTypes":["review_published"]}`)
	mustStatus(t, noDesc, 201)
	if !strings.Contains(noDesc.raw, `"description":null`) {
		t.Fatalf("an empty description is null: %s", noDesc.raw)
	}

	list := call(t, base, "GET", "/webhooks", fake.SeedMemberToken, nil, "")
	if items, ok := list.json.([]any); !ok || len(items) != 2 {
		t.Fatalf("list is a bare array of the company's webhooks: %s", list.raw)
	}
	if other := call(t, base, "GET", "/webhooks", fake.SeedOtherToken, nil, ""); other.raw != "[]\n" {
		t.Fatalf("another company sees %s", other.raw)
	}

	patched := call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"eventTypes":["booking_cancelled","new_employee"]}`)
	mustStatus(t, patched, 200)
	if patched.field("endpoint") != "https://hooks.example.com/t1" || patched.field("description") != "d" ||
		fmt.Sprint(patched.field("eventTypes")) != "[booking_cancelled new_employee]" {
		t.Fatalf("PATCH replaces the given fields only: %s", patched.raw)
	}

	mustStatus(t, call(t, base, "GET", "/webhooks/1001", fake.SeedAdminToken, nil, ""), 404)
	mustStatus(t, call(t, base, "PATCH", "/webhooks/1001", fake.SeedOtherToken, nil, `{"description":"x"}`), 404)
	mustStatus(t, call(t, base, "DELETE", "/webhooks/1001", fake.SeedOtherToken, nil, ""), 404)
	mustStatus(t, call(t, base, "DELETE", "/webhooks/abc", fake.SeedAdminToken, nil, ""), 404)
	deleted := call(t, base, "DELETE", "/webhooks/1001", fake.SeedAdminToken, nil, "")
	mustStatus(t, deleted, 204)
	mustStatus(t, call(t, base, "DELETE", "/webhooks/1001", fake.SeedAdminToken, nil, ""), 404)
	if notFound := call(t, base, "GET", "/webhooks/1002", fake.SeedAdminToken, nil, ""); notFound.field("message") != "Cannot GET /webhooks/1002" {
		t.Fatalf("there is no GET of one webhook: %s", notFound.raw)
	}
}

func TestValidation(t *testing.T) {
	_, base := start(t, fake.Settings{})
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"empty event types", "POST", "/webhooks", `{"endpoint":"https://e.example.com","eventTypes":[]}`, "eventTypes should not be empty"},
		{"missing event types", "POST", "/webhooks", `{"endpoint":"https://e.example.com"}`, "eventTypes should not be empty"},
		{"unknown event type", "POST", "/webhooks", `{"endpoint":"https://e.example.com","eventTypes":["booking_canceled"]}`, "each value in eventTypes must be one of the following values"},
		{"missing endpoint", "POST", "/webhooks", `{"eventTypes":["booking_created"]}`, "endpoint should not be empty"},
		{"relative endpoint", "POST", "/webhooks", `{"endpoint":"/hook","eventTypes":["booking_created"]}`, "endpoint must be a URL address"},
		{"unknown property", "POST", "/webhooks", `{"endpoint":"https://e.example.com","eventTypes":["booking_created"],"secret":"x"}`, "property secret should not exist"},
		{"wrong type", "POST", "/webhooks", `{"endpoint":"https://e.example.com","eventTypes":"booking_created"}`, "eventTypes has the wrong type"},
		{"patch with empty event types", "PATCH", "/webhooks/1001", `{"eventTypes":[]}`, "eventTypes should not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, base, tc.method, tc.path, fake.SeedAdminToken, nil, tc.body)
			mustStatus(t, a, 400)
			msgs, ok := a.field("message").([]any)
			if !ok || !strings.Contains(fmt.Sprint(msgs), tc.want) || a.field("error") != "Bad Request" || a.field("errors") == nil {
				t.Fatalf("want message array with %q: %s", tc.want, a.raw)
			}
		})
	}
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, `not json`), 400)
	for _, et := range []string{"booking_created", "booking_cancelled", "booking_rescheduled", "new_employee", "form_submission",
		"credential_error", "review_submitted", "review_published", "signature_completed"} {
		if !slices.Contains(fake.AcceptedEventTypes, et) {
			t.Errorf("%s is accepted by meetergo", et)
		}
	}
}

func TestWebhookLimitCountsEveryWebhook(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	for i := range 3 {
		if _, err := srv.AddExternalWebhook(fake.SeedCompanyID, fake.WebhookSpec{Endpoint: fmt.Sprintf("https://dash.example.com/%d", i), EventTypes: []string{"new_employee"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201)
	}
	seventh := call(t, base, "POST", "/webhooks", fake.SeedMemberToken, nil, hookBody)
	mustStatus(t, seventh, 406)
	if seventh.field("error") != "Not Acceptable" || seventh.field("statusCode") != float64(406) {
		t.Fatalf("NestJS-style 406: %s", seventh.raw)
	}
	if _, err := srv.AddExternalWebhook(fake.SeedCompanyID, fake.WebhookSpec{Endpoint: "https://dash.example.com/x", EventTypes: []string{"new_employee"}}); err == nil {
		t.Fatal("the dashboard is bound by the limit too")
	}
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedOtherToken, nil, hookBody), 201)

	srv.UpdateSettings(func(s *fake.Settings) { s.WebhookLimit = 7 })
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201)
}

func TestPlanWall(t *testing.T) {
	_, base := start(t, fake.Settings{PlanWall: true})
	a := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "")
	mustStatus(t, a, 403)
	if a.field("code") != "PLAN_LIMIT_REACHED" || a.field("feature") != "webhooks" {
		t.Fatalf("plan wall body: %s", a.raw)
	}
	mustStatus(t, call(t, base, "GET", "/v4/user/me", fake.SeedAdminToken, nil, ""), 200)
}

func TestRateLimit(t *testing.T) {
	for _, retryAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry-after %t", retryAfter), func(t *testing.T) {
			srv, base := start(t, fake.Settings{RequestsPerMinute: 1, Burst: 3, RetryAfter: retryAfter})
			for range 3 {
				mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 200)
			}
			limited := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "")
			mustStatus(t, limited, 429)
			if strings.TrimSpace(limited.raw) != `{"statusCode":429,"message":"Too Many Requests","error":"Too Many Requests"}` {
				t.Fatalf("429 body: %s", limited.raw)
			}
			if got := limited.header.Get("Retry-After"); (got != "") != retryAfter || (retryAfter && got != "60") {
				t.Fatalf("Retry-After %q", got)
			}
			mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedMemberToken, nil, ""), 200)
			c := srv.Count("GET", "/webhooks", fake.SeedAdminToken)
			if c.Requests != 4 || c.RateLimited != 1 || srv.Count("", "", "").Requests != 5 {
				t.Fatalf("counts %+v, all %+v", c, srv.Counts())
			}
		})
	}
}
