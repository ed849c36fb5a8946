package meetergo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// tiny serves one canned answer and records the request, for the shapes
// the fake does not produce.
func tiny(t *testing.T, status int, header http.Header, body string) (*meetergo.HTTPClient, *[]byte) {
	t.Helper()
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := meetergo.NewHTTPClient(meetergo.Options{BaseURL: srv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c, &got
}

func TestDecodeWebhookIDs(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[{"id":1492,"endpoint":"https://e"}]`, "1492"},
		{`[{"id":"1492","endpoint":"https://e"}]`, "1492"},
		{`[{"id":"wh_abc","endpoint":"https://e"}]`, "wh_abc"},
		{`[{"id":12345678901234567890,"endpoint":"https://e"}]`, "12345678901234567890"},
	} {
		c, _ := tiny(t, 200, nil, tc.body)
		list, err := c.ListWebhooks(ctxFor(t), adminToken)
		if err != nil || len(list) != 1 || list[0].ID != tc.want {
			t.Errorf("%s: got %+v, %v; want id %s", tc.body, list, err, tc.want)
		}
	}
}

func TestDecodeToleratesExtrasAndNulls(t *testing.T) {
	body := `[{"id":7,"endpoint":"https://e/1","description":null,"eventTypes":["booking_created"],"companyId":"c1",` +
		`"createdAt":"2026-01-15T09:00:00.123Z","secretField":"x","enabled":true,"nested":{"a":[1,2]}}]`
	c, _ := tiny(t, 200, nil, body)
	list, err := c.ListWebhooks(ctxFor(t), adminToken)
	want := meetergo.Webhook{ID: "7", Endpoint: "https://e/1", EventTypes: []string{"booking_created"}, CompanyID: "c1",
		CreatedAt: time.Date(2026, 1, 15, 9, 0, 0, 123e6, time.UTC)}
	if err != nil || len(list) != 1 || !equalWebhook(list[0], want) {
		t.Fatalf("got %+v, %v", list, err)
	}
}

func equalWebhook(a, b meetergo.Webhook) bool {
	return a.ID == b.ID && a.Endpoint == b.Endpoint && a.Description == b.Description &&
		slices.Equal(a.EventTypes, b.EventTypes) && a.CompanyID == b.CompanyID && a.CreatedAt.Equal(b.CreatedAt)
}

func TestEmptySuccessBodies(t *testing.T) {
	in := meetergo.WebhookInput{Endpoint: "https://e/2", EventTypes: []string{"form_submission"}}

	c, sent := tiny(t, 200, nil, "")
	w, err := c.UpdateWebhook(ctxFor(t), adminToken, "42", in)
	if err != nil || !equalWebhook(w, meetergo.Webhook{ID: "42", Endpoint: in.Endpoint, EventTypes: in.EventTypes}) {
		t.Fatalf("PATCH with an empty 200: %+v, %v", w, err)
	}
	if string(*sent) != `{"endpoint":"https://e/2","eventTypes":["form_submission"]}` {
		t.Fatalf("PATCH sent %s", *sent)
	}

	for _, status := range []int{200, 204} {
		c, _ = tiny(t, status, nil, "")
		if err := c.DeleteWebhook(ctxFor(t), adminToken, "42"); err != nil {
			t.Fatalf("DELETE answered %d: %v", status, err)
		}
	}

	// A create without an id and a list that is not an array (nor an
	// object wrapping one, see TestListWrappedInAnObject) cannot be used:
	// both would mislead the caller.
	c, _ = tiny(t, 201, nil, "")
	_, err = c.CreateWebhook(ctxFor(t), adminToken, in)
	mustError(t, err, meetergo.ReasonUnexpected, 201)
	for _, body := range []string{"", "null", `{"data":null}`} {
		c, _ = tiny(t, 200, nil, body)
		_, err = c.ListWebhooks(ctxFor(t), adminToken)
		mustError(t, err, meetergo.ReasonUnexpected, 200)
	}
}

func TestCreateBody(t *testing.T) {
	c, sent := tiny(t, 201, nil, `{"id":1}`)
	w, err := c.CreateWebhook(ctxFor(t), adminToken, meetergo.WebhookInput{Endpoint: "https://e/3", EventTypes: []string{"new_employee"}})
	if err != nil || w.ID != "1" || w.Endpoint != "https://e/3" {
		t.Fatalf("got %+v, %v", w, err)
	}
	if string(*sent) != `{"endpoint":"https://e/3","eventTypes":["new_employee"]}` {
		t.Fatalf("an empty description must not be sent: %s", *sent)
	}
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		reason   meetergo.Reason
		messages []string
	}{
		{400, `{"statusCode":400,"message":["eventTypes should not be empty","endpoint must be a URL address"],"error":"Bad Request"}`,
			meetergo.ReasonInvalid, []string{"eventTypes should not be empty", "endpoint must be a URL address"}},
		{400, `{"statusCode":400,"message":"Missing required header 'x-meetergo-api-user-id' for API key authentication"}`,
			meetergo.ReasonMissingUserID, []string{"Missing required header 'x-meetergo-api-user-id' for API key authentication"}},
		{401, `{"statusCode":401,"message":"Invalid API key"}`, meetergo.ReasonUnauthorized, []string{"Invalid API key"}},
		{403, `{"statusCode":403,"message":"no","code":"PLAN_LIMIT_REACHED","feature":"webhooks"}`, meetergo.ReasonPlanLimit, []string{"no"}},
		{406, `{"statusCode":406,"message":"limit","error":"Not Acceptable"}`, meetergo.ReasonQuotaExceeded, []string{"limit"}},
		{409, `{"message":"conflict"}`, meetergo.ReasonUnexpected, []string{"conflict"}},
		{422, `{"message":"bad"}`, meetergo.ReasonInvalid, []string{"bad"}},
		{502, `<html>bad gateway</html>`, meetergo.ReasonTransient, nil},
		{500, `{"statusCode":500,"message":"boom ` + fakeSecret + `"}`, meetergo.ReasonTransient, []string{"boom (redacted)"}},
	} {
		c, _ := tiny(t, tc.status, nil, tc.body)
		_, err := c.ListWebhooks(ctxFor(t), meetergo.Credential{Token: fakeSecret})
		got := mustError(t, err, tc.reason, tc.status)
		if !slices.Equal(got.Messages, tc.messages) {
			t.Errorf("%d: messages %q, want %q", tc.status, got.Messages, tc.messages)
		}
	}
}

// fakeSecret is a token a misbehaving server echoes back.
const fakeSecret = "rgo-unknown-token-1234567890"

func TestRetryAfterAsHTTPDate(t *testing.T) {
	at := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
	c, _ := tiny(t, 429, http.Header{"Retry-After": {at}}, `{"statusCode":429,"message":"Too Many Requests","error":"Too Many Requests"}`)
	_, err := c.ListWebhooks(ctxFor(t), adminToken)
	got := mustError(t, err, meetergo.ReasonRateLimited, 429)
	if got.RetryAfter <= time.Second || got.RetryAfter > 3*time.Second {
		t.Fatalf("RetryAfter %v from %q", got.RetryAfter, at)
	}
}
