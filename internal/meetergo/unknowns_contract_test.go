package meetergo_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// Contract tests of the shapes meetergo's documentation leaves open: each
// is a switch of the fake, and the real client runs against it.

// TestContractPlanWallAtAnyStatus: the fake's plan wall answered with 403,
// 406, 400 or 429 is a plan wall to the client, never a full company, a
// malformed request or a rate limit; nothing is retried.
func TestContractPlanWallAtAnyStatus(t *testing.T) {
	for _, status := range []int{403, 406, 400, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, fake.Options{Settings: fake.Settings{PlanWall: true, PlanWallStatus: status}}, nil)
			_, createErr := e.client.CreateWebhook(ctxFor(t), adminToken, ownedHook)
			_, listErr := e.client.ListWebhooks(ctxFor(t), platformKey)
			for _, err := range []error{createErr, listErr} {
				got := mustError(t, err, meetergo.ReasonPlanLimit, status)
				if got.Code != "PLAN_LIMIT_REACHED" || got.Feature != "webhooks" || got.Attempts != 1 {
					t.Fatalf("code %q feature %q attempts %d", got.Code, got.Feature, got.Attempts)
				}
			}
			if n := e.srv.Count("", "", "").Requests; n != 2 {
				t.Fatalf("the fake saw %d requests, want 2 (no retries)", n)
			}
		})
	}
}

// TestContractPlanWallOnCreateOnly: a plan that allows fewer webhooks than
// the limit walls creates only; the company's webhooks can still be
// listed, changed and removed.
func TestContractPlanWallOnCreateOnly(t *testing.T) {
	for _, status := range []int{403, 406} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			ctx := ctxFor(t)
			existing, err := e.client.CreateWebhook(ctx, adminToken, ownedHook)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.UpdateSettings(func(s *fake.Settings) { s.PlanWallOnCreate, s.PlanWallStatus = true, status })

			_, err = e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/second", EventTypes: []string{"booking_created"}})
			if got := mustError(t, err, meetergo.ReasonPlanLimit, status); meetergo.IsQuotaExceeded(err) || got.Feature != "webhooks" {
				t.Fatalf("create: %v", err)
			}
			if list, err := e.client.ListWebhooks(ctx, adminToken); err != nil || len(list) != 1 || list[0].ID != existing.ID {
				t.Fatalf("list = %+v, %v", list, err)
			}
			if w, err := e.client.UpdateWebhook(ctx, adminToken, existing.ID, meetergo.WebhookInput{EventTypes: []string{"booking_cancelled"}}); err != nil ||
				!slices.Equal(w.EventTypes, []string{"booking_cancelled"}) {
				t.Fatalf("update = %+v, %v", w, err)
			}
			if err := e.client.DeleteWebhook(ctx, adminToken, existing.ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

// TestContractListWrapped: the fake's list wrapped under each usual key,
// and under another single key, reads as the same webhooks, and each
// wrapped answer is counted by its key.
func TestContractListWrapped(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, fake.Options{}, func(o *meetergo.Options) { o.Registerer = reg })
	ctx := ctxFor(t)
	for _, ep := range []string{"https://hooks.example.com/a", "https://hooks.example.com/b"} {
		if _, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: ep, Description: "d", EventTypes: []string{"new_employee"}}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := e.client.ListWebhooks(ctx, adminToken)
	if err != nil || len(want) != 2 {
		t.Fatalf("bare list = %+v, %v", want, err)
	}
	shapes := map[string]string{"data": "data", "items": "items", "webhooks": "webhooks", "results": "results", "registrations": "other"}
	for shape := range shapes {
		e.srv.UpdateSettings(func(s *fake.Settings) { s.ListShape = shape })
		got, err := e.client.ListWebhooks(ctx, platformKey)
		if err != nil || len(got) != len(want) || !equalWebhook(got[0], want[0]) || !equalWebhook(got[1], want[1]) {
			t.Errorf("list wrapped under %q = %+v, %v; want %+v", shape, got, err, want)
		}
	}
	var expo strings.Builder
	expo.WriteString("# HELP meetergo_operator_api_list_wrapped_total Webhook lists meetergo answered as an object wrapping the array instead of a bare array, by the key that held it (data, items, webhooks, results, or other).\n")
	expo.WriteString("# TYPE meetergo_operator_api_list_wrapped_total counter\n")
	for _, key := range []string{"data", "items", "other", "results", "webhooks"} {
		fmt.Fprintf(&expo, "meetergo_operator_api_list_wrapped_total{key=%q} 1\n", key)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo.String()), "meetergo_operator_api_list_wrapped_total"); err != nil {
		t.Fatal(err)
	}

	// Under an unknown key an empty array says too little: it stays an error.
	for _, w := range want {
		if err := e.client.DeleteWebhook(ctx, adminToken, w.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.UpdateSettings(func(s *fake.Settings) { s.ListShape = "data" })
	if got, err := e.client.ListWebhooks(ctx, adminToken); err != nil || got == nil || len(got) != 0 {
		t.Fatalf(`empty list under "data" = %#v, %v`, got, err)
	}
	e.srv.UpdateSettings(func(s *fake.Settings) { s.ListShape = "registrations" })
	_, err = e.client.ListWebhooks(ctx, adminToken)
	mustError(t, err, meetergo.ReasonUnexpected, 200)
}

// TestContractDisabled: a registration the fake shows disabled, with each
// field meetergo might use, reads as Disabled with that field named, in
// lists and in update answers; its neighbours stay enabled.
func TestContractDisabled(t *testing.T) {
	for _, field := range fake.DisabledFields {
		t.Run(field, func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			ctx := ctxFor(t)
			off, err := e.client.CreateWebhook(ctx, adminToken, ownedHook)
			if err != nil || off.Disabled || off.DisabledReason != "" {
				t.Fatalf("create = %+v, %v", off, err)
			}
			on, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/on", EventTypes: []string{"booking_created"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.srv.DisableWebhook(mustID(t, off.ID), field); err != nil {
				t.Fatal(err)
			}
			list, err := e.client.ListWebhooks(ctx, platformKey)
			if err != nil || len(list) != 2 {
				t.Fatalf("list = %+v, %v", list, err)
			}
			for _, w := range list {
				wantOff := w.ID == off.ID
				if w.Disabled != wantOff || (wantOff && w.DisabledReason != field) || (!wantOff && w.DisabledReason != "") {
					t.Errorf("webhook %s (disabled %t): Disabled %t, DisabledReason %q", w.ID, wantOff, w.Disabled, w.DisabledReason)
				}
			}
			updated, err := e.client.UpdateWebhook(ctx, adminToken, off.ID, meetergo.WebhookInput{Description: "still off"})
			if err != nil || !updated.Disabled || updated.DisabledReason != field {
				t.Fatalf("update answer = %+v, %v", updated, err)
			}
			if _, err := e.srv.EnableWebhook(mustID(t, off.ID)); err != nil {
				t.Fatal(err)
			}
			if list, err := e.client.ListWebhooks(ctx, adminToken); err != nil || list[0].Disabled || list[1].Disabled || on.Disabled {
				t.Fatalf("after enabling: %+v, %v", list, err)
			}
		})
	}
}

func mustID(t *testing.T, id string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(id, &n); err != nil {
		t.Fatalf("webhook id %q: %v", id, err)
	}
	return n
}

// TestContractDescriptionTruncated: a server that cuts descriptions
// silently answers the cut text; the client returns it, says so on the
// create and update answers, and the list reads it back cut.
func TestContractDescriptionTruncated(t *testing.T) {
	const limit = 20
	e := newEnv(t, fake.Options{Settings: fake.Settings{DescriptionMaxLength: limit}}, nil)
	ctx := ctxFor(t)
	long := "Bestätigungen für das Vertriebsteam " + marker // multi-byte runes before the cut
	cut := string([]rune(long)[:limit])
	created, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/t", Description: long, EventTypes: []string{"booking_created"}})
	if err != nil || created.Description != cut || !created.DescriptionTruncated {
		t.Fatalf("create = %+v, %v; want description %q, truncated", created, err, cut)
	}
	list, err := e.client.ListWebhooks(ctx, adminToken)
	if err != nil || len(list) != 1 || list[0].Description != cut || strings.Contains(list[0].Description, marker) {
		t.Fatalf("list = %+v, %v", list, err)
	}
	updated, err := e.client.UpdateWebhook(ctx, adminToken, created.ID, meetergo.WebhookInput{Description: "x" + long})
	if err != nil || updated.Description != "x"+string([]rune(long)[:limit-1]) || !updated.DescriptionTruncated {
		t.Fatalf("update = %+v, %v", updated, err)
	}
	short, err := e.client.UpdateWebhook(ctx, adminToken, created.ID, meetergo.WebhookInput{Description: "short enough"})
	if err != nil || short.Description != "short enough" || short.DescriptionTruncated {
		t.Fatalf("update with a short description = %+v, %v", short, err)
	}

	// Without the limit (the default) nothing is cut.
	e = newEnv(t, fake.Options{}, nil)
	whole, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/t", Description: long, EventTypes: []string{"booking_created"}})
	if err != nil || whole.Description != long || whole.DescriptionTruncated {
		t.Fatalf("create without a limit = %+v, %v", whole, err)
	}
}

// TestContractOnePlatformKeyTwoCompanies: one platform key acting for
// users of two companies is two identities, and each sees its own
// company's webhooks only.
func TestContractOnePlatformKeyTwoCompanies(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	if err := e.srv.AddSeed(fake.Seed{Credentials: []fake.Credential{fake.MultiCompanyCredential()}}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	inFirst := meetergo.Credential{Token: fake.SeedMultiCompanyPlatformKey, UserID: fake.SeedMemberID}
	inOther := meetergo.Credential{Token: fake.SeedMultiCompanyPlatformKey, UserID: fake.SeedOtherUserID}
	first, err1 := e.client.WhoAmI(ctx, inFirst)
	other, err2 := e.client.WhoAmI(ctx, inOther)
	if err1 != nil || err2 != nil || first != (meetergo.Identity{UserID: fake.SeedMemberID, CompanyID: fake.SeedCompanyID}) ||
		other != (meetergo.Identity{UserID: fake.SeedOtherUserID, CompanyID: fake.SeedOtherCompanyID, IsAdmin: true}) {
		t.Fatalf("identities %+v, %+v (%v, %v)", first, other, err1, err2)
	}
	if inFirst.Fingerprint() != inOther.Fingerprint() {
		t.Fatal("one key, one fingerprint")
	}
	a, err := e.client.CreateWebhook(ctx, inFirst, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/first", EventTypes: []string{"booking_created"}})
	if err != nil || a.CompanyID != fake.SeedCompanyID {
		t.Fatalf("create in the first company = %+v, %v", a, err)
	}
	b, err := e.client.CreateWebhook(ctx, inOther, meetergo.WebhookInput{Endpoint: "https://hooks.example.com/other", EventTypes: []string{"booking_created"}})
	if err != nil || b.CompanyID != fake.SeedOtherCompanyID {
		t.Fatalf("create in the other company = %+v, %v", b, err)
	}
	for cred, want := range map[meetergo.Credential]string{inFirst: a.ID, inOther: b.ID} {
		if list, err := e.client.ListWebhooks(ctx, cred); err != nil || len(list) != 1 || list[0].ID != want {
			t.Errorf("list for user %s = %+v, %v", cred.UserID, list, err)
		}
	}
	if err := e.client.DeleteWebhook(ctx, inFirst, b.ID); !meetergo.IsNotFound(err) {
		t.Fatalf("acting for the first company's user, the other's webhook is unknown: %v", err)
	}
	// The single-company key still cannot act for the other company.
	_, err = e.client.WhoAmI(ctx, meetergo.Credential{Token: fake.SeedPlatformKey, UserID: fake.SeedOtherUserID})
	mustError(t, err, meetergo.ReasonForbidden, 403)
}
