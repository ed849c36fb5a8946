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

// Deliver POSTs a payload of eventType to every webhook subscribed to it,
// one after the other, the way meetergo does: JSON body, no signature, no
// delivery id, a 30 s timeout by default. Each call makes a new appointment
// id and secret unless opts.AppointmentID is set. It returns one result per
// POST; it fails only for an unknown event type.
func (s *Server) Deliver(ctx context.Context, eventType string, opts DeliverOptions) ([]DeliveryResult, error) {
	if !slices.Contains(AcceptedEventTypes, eventType) {
		return nil, fmt.Errorf("fake: unknown event type %q", eventType)
	}
	var targets []Webhook
	for _, w := range s.Webhooks(opts.CompanyID) {
		if w.subscribes(eventType) {
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

// post sends one delivery and reads (and discards) the answer.
func (s *Server) post(ctx context.Context, endpoint string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
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
