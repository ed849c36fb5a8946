package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// DeliverOptions choose what Deliver sends and to whom.
type DeliverOptions struct {
	// PayloadOptions shape the payload. Its CompanyID also selects the
	// receivers: only that company's webhooks, or every company's if empty
	// (each company then gets its own payload).
	PayloadOptions
	// Twice sends the identical body twice to each receiver, as meetergo
	// may.
	Twice bool `json:"twice,omitempty"`
}

// DeliveryResult is one POST of a delivery and the receiver's answer.
type DeliveryResult struct {
	WebhookID int64
	CompanyID string
	// Endpoint is the full registered URL, token and all.
	Endpoint string
	// AppointmentID is the payload's id.
	AppointmentID string
	// Attempt is 1, or 2 for the second copy sent with Twice.
	Attempt int
	// StatusCode is the receiver's answer, 0 if there was none.
	StatusCode int
	// Err is why there was no answer.
	Err error
	// Body is the payload sent.
	Body []byte
}

// Deliver POSTs a payload of eventType to every enabled webhook subscribed
// to it, one after the other, the way meetergo does: JSON body, no
// signature, no delivery id, a 30 s timeout by default. Each call makes a
// new appointment id and secret unless opts.AppointmentID is set; the id's
// field name is opts.IDField, else Settings.PayloadIDField. It returns one
// result per POST; it fails only for an unknown event type or id field.
func (s *Server) Deliver(ctx context.Context, eventType string, opts DeliverOptions) ([]DeliveryResult, error) {
	if !slices.Contains(AcceptedEventTypes, eventType) {
		return nil, fmt.Errorf("fake: unknown event type %q", eventType)
	}
	if opts.IDField == "" {
		opts.IDField = s.Settings().PayloadIDField
	}
	if err := checkIDField(opts.IDField); err != nil {
		return nil, err
	}
	var targets []Webhook
	for _, w := range s.Webhooks(opts.CompanyID) {
		if w.subscribes(eventType) && w.DisabledBy == "" {
			targets = append(targets, w)
		}
	}
	bodies := map[string][]byte{} // one payload per company
	appointments := map[string]string{}
	var results []DeliveryResult
	for _, w := range targets {
		body, ok := bodies[w.CompanyID]
		if !ok {
			po := opts.PayloadOptions
			po.CompanyID = w.CompanyID
			if po.AppointmentID == "" {
				po.AppointmentID = newUUID()
			}
			var err error
			if body, err = Payload(eventType, po); err != nil {
				return results, err
			}
			bodies[w.CompanyID], appointments[w.CompanyID] = body, po.AppointmentID
		}
		copies := 1
		if opts.Twice {
			copies = 2
		}
		for attempt := 1; attempt <= copies; attempt++ {
			res := DeliveryResult{WebhookID: w.ID, CompanyID: w.CompanyID, Endpoint: w.Endpoint,
				AppointmentID: appointments[w.CompanyID], Attempt: attempt, Body: body}
			res.StatusCode, res.Err = s.post(ctx, w.Endpoint, body)
			results = append(results, res)
		}
	}
	return results, nil
}

// DeliverRaw POSTs body verbatim to webhook id, whatever its event types:
// for receiver tests of unparseable bodies, unknown event types or shapes
// the fake does not make. contentType is sent as Content-Type
// ("application/json" if empty). It fails if the webhook is unknown (404)
// or disabled (409: meetergo would not deliver to it).
func (s *Server) DeliverRaw(ctx context.Context, id int64, body []byte, contentType string) (DeliveryResult, error) {
	s.mu.Lock()
	w, ok := s.webhooks[id]
	s.mu.Unlock()
	switch {
	case !ok:
		return DeliveryResult{}, webhookNotFound()
	case w.DisabledBy != "":
		return DeliveryResult{}, newError(http.StatusConflict, "Webhook is disabled")
	}
	res := DeliveryResult{WebhookID: w.ID, CompanyID: w.CompanyID, Endpoint: w.Endpoint, Attempt: 1, Body: body}
	res.StatusCode, res.Err = s.postAs(ctx, w.Endpoint, body, contentType)
	return res, nil
}

// post sends one delivery and reads (and discards) the answer.
func (s *Server) post(ctx context.Context, endpoint string, body []byte) (int, error) {
	return s.postAs(ctx, endpoint, body, "")
}

// postAs is post with a chosen Content-Type ("application/json" if empty).
func (s *Server) postAs(ctx context.Context, endpoint string, body []byte, contentType string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "meetergo-fake")
	resp, err := s.delivery.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// LoopbackDeliveryClient returns a delivery client that connects to
// 127.0.0.1, at the URL's port, whatever host the URL names: endpoints on
// never-routed test addresses (192.0.2.x) or made-up names reach a receiver
// listening on loopback, and nothing ever leaves the machine. It ignores
// proxy settings and has meetergo's 30 s timeout.
func LoopbackDeliveryClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: DefaultDeliveryTimeout,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return dialer.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
			},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}
