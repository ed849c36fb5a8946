package fake_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// The switches for what meetergo's documentation leaves open, checked on
// the wire.

func TestPlanWallStatusAndOnCreate(t *testing.T) {
	srv, base := start(t, fake.Settings{PlanWall: true, PlanWallStatus: 406})
	a := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "")
	mustStatus(t, a, 406)
	if a.field("code") != "PLAN_LIMIT_REACHED" || a.field("feature") != "webhooks" || a.field("statusCode") != float64(406) {
		t.Fatalf("plan wall body: %s", a.raw)
	}
	srv.UpdateSettings(func(s *fake.Settings) { s.PlanWallStatus = 200 })
	if s := srv.Settings(); s.PlanWallStatus != fake.DefaultPlanWallStatus {
		t.Fatalf("a plan wall status outside 400..599 falls back to 403: %d", s.PlanWallStatus)
	}
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 403)

	srv.UpdateSettings(func(s *fake.Settings) { s.PlanWall, s.PlanWallOnCreate, s.PlanWallStatus = false, true, 400 })
	if _, err := srv.AddExternalWebhook(fake.SeedCompanyID, fake.WebhookSpec{Endpoint: "https://dash.example.com/1", EventTypes: []string{"booking_created"}}); err != nil {
		t.Fatal(err)
	}
	create := call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody)
	mustStatus(t, create, 400)
	if create.field("code") != "PLAN_LIMIT_REACHED" {
		t.Fatalf("create: %s", create.raw)
	}
	mustStatus(t, call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, ""), 200)
	mustStatus(t, call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"x"}`), 200)
	mustStatus(t, call(t, base, "DELETE", "/webhooks/1001", fake.SeedAdminToken, nil, ""), 204)
	mustStatus(t, call(t, base, "GET", "/v4/user/me", fake.SeedAdminToken, nil, ""), 200)
}

func TestListShape(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	mustStatus(t, call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, hookBody), 201)
	for _, shape := range []string{"data", "items", "webhooks", "results", "anything"} {
		srv.UpdateSettings(func(s *fake.Settings) { s.ListShape = shape })
		a := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "")
		items, ok := a.field(shape).([]any)
		if m, _ := a.json.(map[string]any); !ok || len(items) != 1 || len(m) != 1 || !strings.Contains(a.raw, `"id":1001,`) {
			t.Fatalf("list shape %q: %s", shape, a.raw)
		}
	}
	srv.UpdateSettings(func(s *fake.Settings) { s.ListShape = "" })
	if a := call(t, base, "GET", "/webhooks", fake.SeedOtherToken, nil, ""); a.raw != "[]\n" {
		t.Fatalf("the default is a bare array: %s", a.raw)
	}
}

func TestDisabledWebhooks(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	rc := newReceiver(t, 200)
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/hooks/off", "booking_created")
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/hooks/on", "booking_created")
	admin := func(method, path, body string) answer { return call(t, base, method, "/admin"+path, "", nil, body) }

	for _, field := range fake.DisabledFields {
		d := admin("POST", "/webhooks/1001/disable", `{"field":"`+field+`"}`)
		mustStatus(t, d, 200)
		if d.field("disabledBy") != field {
			t.Fatalf("disable: %s", d.raw)
		}
		list, _ := call(t, base, "GET", "/webhooks", fake.SeedAdminToken, nil, "").json.([]any)
		off, on := list[0].(map[string]any), list[1].(map[string]any)
		others := slices.DeleteFunc(slices.Clone(fake.DisabledFields), func(f string) bool { return f == field })
		for _, f := range others {
			if _, has := off[f]; has {
				t.Errorf("disabled by %s shows %s too: %v", field, f, off)
			}
		}
		if field == fake.DisabledByDisabledAt {
			if s, _ := off[field].(string); !strings.HasSuffix(s, "Z") {
				t.Errorf("disabledAt is a time: %v", off)
			}
		} else if off[field] != false {
			t.Errorf("disabled by %s: %v", field, off)
		}
		for _, f := range fake.DisabledFields {
			if _, has := on[f]; has {
				t.Errorf("an enabled webhook shows none of the fields: %v", on)
			}
		}

		results, err := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{})
		if err != nil || len(results) != 1 || results[0].WebhookID != 1002 {
			t.Fatalf("deliveries go to the enabled webhook only: %+v, %v", results, err)
		}
		mustStatus(t, call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"x"}`), 200)
		if srv.Webhooks(fake.SeedCompanyID)[0].DisabledBy != field {
			t.Fatal("an update leaves the webhook disabled")
		}
		mustStatus(t, admin("POST", "/webhooks/1001/enable", ""), 200)
		if results, _ := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{}); len(results) != 2 {
			t.Fatalf("enabled again, both get deliveries: %+v", results)
		}
	}
	if d := admin("POST", "/webhooks/1001/disable", ""); d.field("disabledBy") != fake.DisabledByActive {
		t.Fatalf("the default field is active: %s", d.raw)
	}
	mustStatus(t, admin("POST", "/webhooks/1001/disable", `{"field":"status"}`), 400)
	mustStatus(t, admin("POST", "/webhooks/9999/disable", ""), 404)
	mustStatus(t, admin("POST", "/webhooks/9999/enable", ""), 404)
}

func TestDescriptionMaxLength(t *testing.T) {
	srv, base := start(t, fake.Settings{DescriptionMaxLength: 5})
	created := call(t, base, "POST", "/webhooks", fake.SeedAdminToken, nil, `{"endpoint":"https://e.example.com/1","eventTypes":["booking_created"],"description":"äöüßéabc"}`)
	mustStatus(t, created, 201)
	if created.field("description") != "äöüßé" {
		t.Fatalf("create stores and answers the cut text: %s", created.raw)
	}
	patched := call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"abcdefgh"}`)
	if patched.field("description") != "abcde" || srv.Webhooks(fake.SeedCompanyID)[0].Description != "abcde" {
		t.Fatalf("patch: %s", patched.raw)
	}
	mustStatus(t, call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"abc"}`), 200)
	w, err := srv.AddExternalWebhook(fake.SeedCompanyID, fake.WebhookSpec{Endpoint: "https://dash.example.com/1", Description: "dashboard", EventTypes: []string{"new_employee"}})
	if err != nil || w.Description != "dashb" {
		t.Fatalf("the dashboard is cut too: %+v, %v", w, err)
	}
	srv.UpdateSettings(func(s *fake.Settings) { s.DescriptionMaxLength = 0 })
	if a := call(t, base, "PATCH", "/webhooks/1001", fake.SeedAdminToken, nil, `{"description":"abcdefgh"}`); a.field("description") != "abcdefgh" {
		t.Fatalf("0 is unlimited: %s", a.raw)
	}
}

func TestOnePlatformKeyForSeveralCompanies(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	anyKey := "ak_live:4a1b7c2d-0000-4000-8000-00000000f0aa:fakeanycompanysecret"
	if err := srv.AddSeed(fake.Seed{Credentials: []fake.Credential{fake.MultiCompanyCredential(), {Token: anyKey, AnyCompany: true}}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{fake.SeedMultiCompanyPlatformKey, anyKey} {
		for user, company := range map[string]string{fake.SeedAdminID: fake.SeedCompanyID, fake.SeedOtherUserID: fake.SeedOtherCompanyID} {
			me := call(t, base, "GET", "/v4/user/me", key, ptr(user), "")
			if me.status != 200 || me.field("id") != user || me.field("companyId") != company {
				t.Fatalf("%s acting for %s: %s", key[:12], user, me.raw)
			}
		}
	}
	if err := srv.AddSeed(fake.Seed{Companies: []fake.Company{{ID: "c-third"}}, Users: []fake.User{{ID: "u-third", CompanyID: "c-third"}}}); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, base, "GET", "/v4/user/me", fake.SeedMultiCompanyPlatformKey, ptr("u-third"), ""), 403)
	mustStatus(t, call(t, base, "GET", "/v4/user/me", anyKey, ptr("u-third"), ""), 200)
	mustStatus(t, call(t, base, "GET", "/v4/user/me", fake.SeedPlatformKey, ptr(fake.SeedOtherUserID), ""), 403)

	for _, bad := range []fake.Credential{
		{Token: "ak_live:x:no-company"},
		{Token: "ak_live:x:unknown-company", CompanyIDs: []string{fake.SeedCompanyID, "nope"}},
	} {
		if err := srv.AddSeed(fake.Seed{Credentials: []fake.Credential{bad}}); err == nil {
			t.Errorf("seeded %+v", bad)
		}
	}
	a := call(t, base, "POST", "/admin/seed", "", nil, `{"credentials":[{"token":"ak_live:x:json","companyIds":["`+fake.SeedCompanyID+`","`+fake.SeedOtherCompanyID+`"]}]}`)
	mustStatus(t, a, 204)
	mustStatus(t, call(t, base, "GET", "/v4/user/me", "ak_live:x:json", ptr(fake.SeedOtherUserID), ""), 200)
}

func TestPayloadIDField(t *testing.T) {
	for _, et := range fake.AcceptedEventTypes {
		for _, legacy := range []bool{false, true} {
			body, err := fake.Payload(et, fake.PayloadOptions{AppointmentID: "appt-7", IDField: fake.IDFieldAppointmentID, LegacyShape: legacy})
			if err != nil {
				t.Fatal(err)
			}
			p := decode(t, body)
			if legacy {
				p, _ = p["data"].(map[string]any)
			}
			if _, has := p["id"]; has || p["appointmentId"] != "appt-7" || p["companyId"] != fake.SeedCompanyID {
				t.Fatalf("%s (legacy %t): %s", et, legacy, body)
			}
			if !legacy && p["webhookType"] != et {
				t.Fatalf("%s: %s", et, body)
			}
		}
	}
	if _, err := fake.Payload("booking_created", fake.PayloadOptions{IDField: "bookingId"}); err == nil {
		t.Fatal("an unknown id field is refused")
	}

	srv, base := start(t, fake.Settings{PayloadIDField: fake.IDFieldAppointmentID})
	rc := newReceiver(t, 200)
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/hooks/t", "booking_created")
	if _, err := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	a := call(t, base, "POST", "/admin/deliver", "", nil, `{"eventType":"booking_created","idField":"id"}`)
	mustStatus(t, a, 200)
	got := rc.got()
	if first, second := decode(t, got[0]), decode(t, got[1]); first["appointmentId"] == nil || first["id"] != nil || second["id"] == nil || second["appointmentId"] != nil {
		t.Fatalf("the setting, then the option: %s / %s", got[0], got[1])
	}
	mustStatus(t, call(t, base, "POST", "/admin/deliver", "", nil, `{"eventType":"booking_created","idField":"x"}`), 400)
	mustStatus(t, call(t, base, "PATCH", "/admin/settings", "", nil, `{"payloadIdField":"x"}`), 400)
}

func TestDeliverRaw(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	rc := newReceiver(t, 400)
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/hooks/raw-secret-token", "booking_created")
	for _, body := range []string{`{"webhookType":"meeting_exploded","id":"x"}`, `{not json`, ``} {
		res, err := srv.DeliverRaw(context.Background(), 1001, []byte(body), "")
		if err != nil || res.StatusCode != 400 || string(res.Body) != body || res.WebhookID != 1001 {
			t.Fatalf("raw %q: %+v, %v", body, res, err)
		}
	}
	a := call(t, base, "POST", "/admin/webhooks/1001/deliver", "", nil, "\x00\xffbinary")
	mustStatus(t, a, 200)
	results, _ := a.field("results").([]any)
	if len(results) != 1 || results[0].(map[string]any)["statusCode"] != float64(400) || strings.Contains(a.raw, "raw-secret-token") {
		t.Fatalf("admin raw delivery: %s", a.raw)
	}
	got := rc.got()
	if len(got) != 4 || string(got[0]) != `{"webhookType":"meeting_exploded","id":"x"}` || string(got[3]) != "\x00\xffbinary" || rc.header.Get("Content-Type") != "application/json" {
		t.Fatalf("the receiver got %q (Content-Type %q)", got, rc.header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("POST", base+"/admin/webhooks/1001/deliver", strings.NewReader("a=b"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || rc.header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("the Content-Type is passed on: %d %q", resp.StatusCode, rc.header.Get("Content-Type"))
	}
	mustStatus(t, call(t, base, "POST", "/admin/webhooks/9999/deliver", "", nil, "{}"), 404)
	if _, err := srv.DisableWebhook(1001, ""); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, base, "POST", "/admin/webhooks/1001/deliver", "", nil, "{}"), 409)
	if n := len(rc.got()); n != 5 {
		t.Fatalf("the receiver got %d deliveries, want 5", n)
	}
}

func TestAdminSettingsNewSwitches(t *testing.T) {
	srv, base := start(t, fake.Settings{})
	if s := srv.Settings(); s.PlanWallStatus != 403 || s.PlanWallOnCreate || s.ListShape != "" || s.DescriptionMaxLength != 0 || s.PayloadIDField != "" {
		t.Fatalf("defaults: %+v", s)
	}
	a := call(t, base, "PATCH", "/admin/settings", "", nil,
		`{"planWallStatus":406,"planWallOnCreate":true,"listShape":"items","descriptionMaxLength":40,"payloadIdField":"appointmentId"}`)
	mustStatus(t, a, 200)
	s := srv.Settings()
	if s.PlanWallStatus != 406 || !s.PlanWallOnCreate || s.ListShape != "items" || s.DescriptionMaxLength != 40 || s.PayloadIDField != "appointmentId" || s.WebhookLimit != 6 {
		t.Fatalf("settings %+v", s)
	}
	got := call(t, base, "GET", "/admin/settings", "", nil, "")
	for _, f := range []string{"planWallStatus", "planWallOnCreate", "listShape", "descriptionMaxLength", "payloadIdField"} {
		if got.field(f) == nil {
			t.Errorf("GET /admin/settings lacks %s: %s", f, got.raw)
		}
	}
}
