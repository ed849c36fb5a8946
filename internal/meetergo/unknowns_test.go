package meetergo_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// These tests meet what meetergo's documentation leaves open: answers the
// client must read defensively, each shown first with small purpose-built
// handlers and then, in unknowns_contract_test.go, against the fake.

// TestPlanLimitCodeAtAnyStatus: meetergo's own clients take a body with
// "code":"PLAN_LIMIT_REACHED" for a plan wall whatever the status, so the
// code is read before the status.
func TestPlanLimitCodeAtAnyStatus(t *testing.T) {
	for _, status := range []int{400, 402, 403, 404, 406, 409, 422, 429, 500, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			body := fmt.Sprintf(`{"statusCode":%d,"message":"Upgrade your plan","code":"PLAN_LIMIT_REACHED","feature":"webhooks"}`, status)
			c, _ := tiny(t, status, nil, body)
			_, err := c.CreateWebhook(ctxFor(t), adminToken, ownedHook)
			got := mustError(t, err, meetergo.ReasonPlanLimit, status)
			if got.Code != "PLAN_LIMIT_REACHED" || got.Feature != "webhooks" || got.Attempts != 1 || !meetergo.IsPlanLimit(err) {
				t.Fatalf("code %q feature %q attempts %d", got.Code, got.Feature, got.Attempts)
			}
		})
	}
	// Without the code each status keeps its own meaning.
	for status, want := range map[int]meetergo.Reason{403: meetergo.ReasonForbidden, 406: meetergo.ReasonQuotaExceeded, 400: meetergo.ReasonInvalid} {
		c, _ := tiny(t, status, nil, `{"message":"x","code":"SOMETHING_ELSE"}`)
		_, err := c.CreateWebhook(ctxFor(t), adminToken, ownedHook)
		mustError(t, err, want, status)
	}
}

// TestListWrappedInAnObject: a list answer that wraps the array in an
// object is read, whichever of the usual keys holds it.
func TestListWrappedInAnObject(t *testing.T) {
	items := `[{"id":1492,"endpoint":"https://e/1","eventTypes":["booking_created"]},{"id":"1493","endpoint":"https://e/2"}]`
	for _, body := range []string{
		`{"data":` + items + `}`,
		`{"items":` + items + `}`,
		`{"webhooks":` + items + `}`,
		`{"results":` + items + `}`,
		`{"data":` + items + `,"total":2,"meta":{"page":1,"totalPages":1}}`,
		`{"statusCode":200,"webhooks":` + items + `}`,
		`{"registrations":` + items + `}`,
	} {
		c, _ := tiny(t, 200, nil, body)
		list, err := c.ListWebhooks(ctxFor(t), adminToken)
		if err != nil || len(list) != 2 || list[0].ID != "1492" || list[1].ID != "1493" || list[1].Endpoint != "https://e/2" {
			t.Errorf("%s: got %+v, %v", body, list, err)
		}
	}
	c, _ := tiny(t, 200, nil, `{"data":[]}`)
	if list, err := c.ListWebhooks(ctxFor(t), adminToken); err != nil || list == nil || len(list) != 0 {
		t.Errorf(`{"data":[]}: got %#v, %v; want an empty list`, list, err)
	}
}

// TestListUnreadableStaysAnError: what cannot be read for certain as the
// whole list stays Unexpected: reading it as "fewer webhooks" could make
// the caller register a duplicate.
func TestListUnreadableStaysAnError(t *testing.T) {
	one := `[{"id":1,"endpoint":"https://e/1"}]`
	for _, body := range []string{
		"", "null", `"webhooks"`, `42`, `{}`, `{"data":null}`, `{"data":{"id":1}}`, `{"data":"x"}`,
		`{"data":` + one + `,"items":` + one + `}`, // which one?
		`{"registrations":[]}`,                     // an unknown key says nothing when empty
		`{"errors":[{"message":"x"}]}`,             // objects, but no webhooks
		`{"registrations":[1,2]}`,
		`{"a":` + one + `,"b":` + one + `}`,
		`{"data":` + one + `,"hasMore":true}`, // paged: one page could hide webhooks
		`{"data":` + one + `,"total":7}`,
		`{"data":` + one + `,"meta":{"totalItems":7,"totalPages":2}}`,
		`{"items":` + one + `,"next":"https://api.meetergo.com/webhooks?page=2"}`,
		`{"items":` + one + `,"links":{"next":"/webhooks?cursor=abc"}}`,
		`{"data":[{"id":1},"x"]}`,
	} {
		c, _ := tiny(t, 200, nil, body)
		list, err := c.ListWebhooks(ctxFor(t), adminToken)
		if meetergo.ReasonOf(err) != meetergo.ReasonUnexpected {
			t.Errorf("%s: got %+v, %v; want Unexpected", body, list, err)
		}
	}
}

// TestUnsupportedCredentialRefusedLocally: a token that is neither a
// personal token nor a platform key is refused before anything is sent
// (meetergo would take it for a short-lived login token), with a message
// naming the kinds that work and never the token.
func TestUnsupportedCredentialRefusedLocally(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	const unsupported = meetergo.Reason("UnsupportedCredential")
	for _, token := range []string{
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlIn0.c2lnbmF0dXJlLW9mLWEtbG9naW4",
		"ak_test:4a1b7c2d-0000-4000-8000-00000000f001:fakeplatformsecret9f8e7d6c5b4a",
		"4a1b7c2d-0000-4000-8000-00000000f001:fakeplatformsecret9f8e7d6c5b4a",
		"RGO-uppercase-is-not-a-personal-token-123456",
		"AK_LIVE:4a1b7c2d-0000-4000-8000-00000000f001:fakeplatformsecret9f8e7d6c5b4a",
	} {
		for _, cred := range []meetergo.Credential{{Token: token}, {Token: token, UserID: fake.SeedAdminID}} {
			before := e.srv.Count("", "", "").Requests
			calls := map[string]error{}
			_, calls["whoami"] = e.client.WhoAmI(ctxFor(t), cred)
			_, calls["list"] = e.client.ListWebhooks(ctxFor(t), cred)
			_, calls["create"] = e.client.CreateWebhook(ctxFor(t), cred, ownedHook)
			_, calls["update"] = e.client.UpdateWebhook(ctxFor(t), cred, "1001", ownedHook)
			calls["delete"] = e.client.DeleteWebhook(ctxFor(t), cred, "1001")
			for op, err := range calls {
				got := mustError(t, err, unsupported, 0)
				text := fmt.Sprintf("%v %+v %#v", err, err, cred)
				if got.Attempts != 0 || !strings.Contains(text, "rgo-") || !strings.Contains(text, "ak_live:") || strings.Contains(text, token) ||
					strings.Contains(text, token[len(token)-12:]) {
					t.Errorf("%s with %v: %s", op, cred, text)
				}
			}
			if sent := e.srv.Count("", "", "").Requests - before; sent != 0 {
				t.Errorf("%d requests were sent with an unsupported credential", sent)
			}
		}
	}
	if !slices.Contains([]meetergo.CredentialKind{meetergo.PersonalToken, meetergo.PlatformKey}, adminToken.Kind()) {
		t.Fatal("a personal token is supported")
	}
}

// TestDisabledFields: any of the fields meetergo might use to say a
// registration is switched off marks it Disabled and is named; absent,
// null, true or unreadable values mean enabled and never fail the list.
func TestDisabledFields(t *testing.T) {
	for _, tc := range []struct {
		fields string
		reason string
	}{
		{``, ""},
		{`,"active":true,"enabled":true,"isActive":true,"disabledAt":null`, ""},
		{`,"active":false`, "active"},
		{`,"enabled":false`, "enabled"},
		{`,"isActive":false`, "isActive"},
		{`,"disabledAt":"2026-03-01T10:00:00.000Z"`, "disabledAt"},
		{`,"disabledAt":1767225600`, "disabledAt"},
		{`,"disabledAt":""`, ""},
		{`,"active":"false"`, "active"},
		{`,"enabled":0`, "enabled"},
		{`,"active":"paused","enabled":{"x":1},"isActive":[]`, ""},
		{`,"active":true,"isActive":false`, "isActive"},
		{`,"active":false,"disabledAt":"2026-03-01T10:00:00Z"`, "active"},
	} {
		body := `{"id":7,"endpoint":"https://e/1","eventTypes":["booking_created"]` + tc.fields + `}`
		c, _ := tiny(t, 200, nil, "["+body+"]")
		list, err := c.ListWebhooks(ctxFor(t), adminToken)
		if err != nil || len(list) != 1 || list[0].Disabled != (tc.reason != "") || list[0].DisabledReason != tc.reason || list[0].ID != "7" {
			t.Errorf("list %s: got %+v, %v; want reason %q", body, list, err, tc.reason)
		}
		c, _ = tiny(t, 200, nil, body)
		w, err := c.UpdateWebhook(ctxFor(t), adminToken, "7", meetergo.WebhookInput{Description: "d"})
		if err != nil || w.Disabled != (tc.reason != "") || w.DisabledReason != tc.reason {
			t.Errorf("update answer %s: got %+v, %v; want reason %q", body, w, err, tc.reason)
		}
	}
}

// TestDescriptionTruncatedIsReported: a create or update answer whose
// description is the one sent, cut short, is flagged; any other answer is
// not (an empty answer is filled in from what was sent).
func TestDescriptionTruncatedIsReported(t *testing.T) {
	sent := meetergo.WebhookInput{Endpoint: "https://e/1", Description: "orders " + marker, EventTypes: []string{"booking_created"}}
	for _, tc := range []struct {
		answer    string
		truncated bool
	}{
		{`{"id":1,"description":"orders [meetergo-op"}`, true},
		{`{"id":1,"description":"orders "}`, true},
		{`{"id":1,"description":"orders ` + marker + `"}`, false},
		{`{"id":1,"description":null}`, false},
		{`{"id":1}`, false},
		{`{"id":1,"description":"something else"}`, false},
	} {
		c, _ := tiny(t, 201, nil, tc.answer)
		created, err := c.CreateWebhook(ctxFor(t), adminToken, sent)
		if err != nil || created.DescriptionTruncated != tc.truncated {
			t.Errorf("create answered %s: %+v, %v; want truncated %t", tc.answer, created, err, tc.truncated)
		}
		c, _ = tiny(t, 200, nil, tc.answer)
		updated, err := c.UpdateWebhook(ctxFor(t), adminToken, "1", sent)
		if err != nil || updated.DescriptionTruncated != tc.truncated {
			t.Errorf("update answered %s: %+v, %v; want truncated %t", tc.answer, updated, err, tc.truncated)
		}
	}
	c, _ := tiny(t, 200, nil, "")
	if w, err := c.UpdateWebhook(ctxFor(t), adminToken, "1", meetergo.WebhookInput{EventTypes: []string{"booking_created"}}); err != nil || w.DescriptionTruncated {
		t.Errorf("an update without a description: %+v, %v", w, err)
	}
}
