package meetergo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-logr/logr"
)

// Client is what the operator needs from meetergo. HTTPClient implements it;
// tests of callers can implement it too.
type Client interface {
	// WhoAmI returns whom the credential acts as (GET /v4/user/me).
	WhoAmI(ctx context.Context, c Credential) (Identity, error)
	// ListWebhooks returns every webhook of the credential's company,
	// including those made in the dashboard or by other tools (GET /webhooks).
	ListWebhooks(ctx context.Context, c Credential) ([]Webhook, error)
	// CreateWebhook registers a webhook (POST /webhooks). meetergo has no
	// idempotency key: after a Transient error the webhook may exist, so
	// list before creating again.
	CreateWebhook(ctx context.Context, c Credential, in WebhookInput) (Webhook, error)
	// UpdateWebhook changes the non-zero fields of in (PATCH /webhooks/{id}).
	UpdateWebhook(ctx context.Context, c Credential, id string, in WebhookInput) (Webhook, error)
	// DeleteWebhook removes a webhook (DELETE /webhooks/{id}). An unknown id
	// is a NotFound error; whether that counts as success is the caller's call.
	DeleteWebhook(ctx context.Context, c Credential, id string) error
}

var _ Client = (*HTTPClient)(nil)

// HTTPClient is the Client for meetergo's HTTP API. It is safe for
// concurrent use; create one per process so that all callers share the
// per-credential rate budgets.
type HTTPClient struct {
	opts    Options
	log     logr.Logger
	budgets *budgets
	metrics *metrics
}

// NewHTTPClient returns a client configured by opts; see Options for the
// defaults. It fails on an unusable BaseURL or if the metrics cannot be
// registered.
func NewHTTPClient(opts Options) (*HTTPClient, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &HTTPClient{
		opts:    opts,
		log:     opts.Logger,
		budgets: newBudgets(opts.RequestsPerMinute, opts.Burst),
		metrics: m,
	}, nil
}

// operation is one kind of API call: its metric label, its name in error
// messages and its HTTP method.
type operation struct {
	label, desc, method string
}

var (
	opWhoAmI = operation{"whoami", "get current user", http.MethodGet}
	opList   = operation{"list", "list webhooks", http.MethodGet}
	opCreate = operation{"create", "create webhook", http.MethodPost}
	opUpdate = operation{"update", "update webhook", http.MethodPatch}
	opDelete = operation{"delete", "delete webhook", http.MethodDelete}
)

// WhoAmI implements Client.
func (h *HTTPClient) WhoAmI(ctx context.Context, c Credential) (Identity, error) {
	resp, err := h.do(ctx, request{op: opWhoAmI, cred: c, path: "/v4/user/me"})
	if err != nil {
		return Identity{}, err
	}
	var v identityJSON
	if err := resp.decode(&v); err != nil {
		return Identity{}, resp.unexpected(opWhoAmI, "the user could not be read: "+err.Error())
	}
	if v.ID == "" || v.CompanyID == "" {
		return Identity{}, resp.unexpected(opWhoAmI, "the user has no id or no companyId")
	}
	return Identity{UserID: string(v.ID), CompanyID: string(v.CompanyID), IsAdmin: v.IsAdmin}, nil
}

// ListWebhooks implements Client. The answer is a JSON array; an object
// wrapping it is read too (see decodeList) and counted in
// meetergo_operator_api_list_wrapped_total. Anything else, even an empty
// body, is an Unexpected error: reading it as "no webhooks" could make the
// caller register a duplicate.
func (h *HTTPClient) ListWebhooks(ctx context.Context, c Credential) ([]Webhook, error) {
	resp, err := h.do(ctx, request{op: opList, cred: c, path: "/webhooks"})
	if err != nil {
		return nil, err
	}
	v, wrappedIn, err := decodeList(resp.body)
	if err != nil || v == nil {
		msg := "the answer is not a JSON array of webhooks"
		if err != nil {
			msg = err.Error()
		}
		return nil, resp.unexpected(opList, msg)
	}
	if wrappedIn != "" {
		h.metrics.listWrapped.WithLabelValues(wrappedIn).Inc()
		h.log.V(1).Info("meetergo wrapped the webhook list in an object", "key", wrappedIn, "credential", c.Fingerprint())
	}
	out := make([]Webhook, len(v))
	for i := range v {
		out[i] = v[i].webhook()
	}
	return out, nil
}

// CreateWebhook implements Client. Endpoint and EventTypes are required and
// checked before anything is sent. A success without a webhook id is an
// Unexpected error: the webhook probably exists, and listing finds it.
func (h *HTTPClient) CreateWebhook(ctx context.Context, c Credential, in WebhookInput) (Webhook, error) {
	if in.Endpoint == "" || len(in.EventTypes) == 0 {
		return Webhook{}, localError(opCreate, ReasonInvalid, "endpoint and at least one event type are required")
	}
	resp, err := h.do(ctx, request{op: opCreate, cred: c, path: "/webhooks", body: webhookBody(in)})
	if err != nil {
		return Webhook{}, err
	}
	w, err := resp.webhook(opCreate, "", in)
	w.DescriptionTruncated = err == nil && truncated(w.Description, in.Description)
	switch {
	case err != nil:
		return Webhook{}, err
	case w.ID == "":
		return Webhook{}, resp.unexpected(opCreate, "the answer carries no webhook id; the webhook was probably created, list to find it")
	}
	return w, nil
}

// UpdateWebhook implements Client. An empty success body is read as the
// webhook with id and the fields sent.
func (h *HTTPClient) UpdateWebhook(ctx context.Context, c Credential, id string, in WebhookInput) (Webhook, error) {
	switch {
	case id == "":
		return Webhook{}, localError(opUpdate, ReasonInvalid, "a webhook id is required")
	case in.Endpoint == "" && in.Description == "" && len(in.EventTypes) == 0:
		return Webhook{}, localError(opUpdate, ReasonInvalid, "nothing to update")
	}
	resp, err := h.do(ctx, request{op: opUpdate, cred: c, path: webhookPath(id), body: webhookBody(in)})
	if err != nil {
		return Webhook{}, err
	}
	w, err := resp.webhook(opUpdate, id, in)
	w.DescriptionTruncated = err == nil && truncated(w.Description, in.Description)
	return w, err
}

// truncated reports a description stored shorter than sent, cut at its
// end: what a server that silently truncates answers.
func truncated(stored, sent string) bool {
	return sent != "" && len(stored) < len(sent) && strings.HasPrefix(sent, stored)
}

// DeleteWebhook implements Client. Any 2xx, with or without a body, is
// success.
func (h *HTTPClient) DeleteWebhook(ctx context.Context, c Credential, id string) error {
	if id == "" {
		return localError(opDelete, ReasonInvalid, "a webhook id is required")
	}
	_, err := h.do(ctx, request{op: opDelete, cred: c, path: webhookPath(id)})
	return err
}

func webhookPath(id string) string { return "/webhooks/" + url.PathEscape(id) }

// webhook decodes a webhook answer, filling what the answer lacks (all of
// it, for an empty body) from id and the input that was sent.
func (r response) webhook(op operation, id string, in WebhookInput) (Webhook, error) {
	var v webhookJSON
	if len(bytes.TrimSpace(r.body)) > 0 {
		if err := r.decode(&v); err != nil {
			return Webhook{}, r.unexpected(op, "the webhook could not be read: "+err.Error())
		}
	}
	w := v.webhook()
	if w.ID == "" {
		w.ID = id
	}
	if w.Endpoint == "" {
		w.Endpoint = in.Endpoint
	}
	if w.Description == "" {
		w.Description = in.Description
	}
	if w.EventTypes == nil {
		w.EventTypes = in.EventTypes
	}
	return w, nil
}

// decode unmarshals the answer's body into v.
func (r response) decode(v any) error { return json.Unmarshal(r.body, v) }

// unexpected is the error for a success answer the client cannot use.
func (r response) unexpected(op operation, msg string) *Error {
	return &Error{Op: op.desc, Reason: ReasonUnexpected, StatusCode: r.status, Messages: []string{msg}, Attempts: r.attempts}
}
