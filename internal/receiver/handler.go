package receiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// Outcomes of a request, as answered and as counted in metrics.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeUnsubscribed = "unsubscribed"
	outcomeKept         = "kept"
	outcomeKeptDropped  = "kept_dropped"
	outcomeNotFound     = "not_found"
	outcomeMethod       = "method_not_allowed"
	outcomeTooLarge     = "too_large"
	outcomeSlow         = "timeout"
	outcomeBadRequest   = "bad_request"
	outcomeForbidden    = "forbidden"
	outcomeRateLimited  = "rate_limited"
	outcomeUnavailable  = "unavailable"
)

// answers maps outcomes to status codes and short texts. The texts say
// what is wrong with the request, never anything about resources.
var answers = map[string]struct {
	status int
	text   string
}{
	outcomeAccepted:     {http.StatusOK, `{"status":"accepted"}`},
	outcomeDuplicate:    {http.StatusOK, `{"status":"duplicate"}`},
	outcomeUnsubscribed: {http.StatusOK, `{"status":"ignored"}`},
	outcomeKept:         {http.StatusOK, `{"status":"kept"}`},
	outcomeKeptDropped:  {http.StatusOK, `{"status":"dropped"}`},
	outcomeNotFound:     {http.StatusNotFound, `{"error":"not found"}`},
	outcomeMethod:       {http.StatusMethodNotAllowed, `{"error":"only POST is accepted"}`},
	outcomeTooLarge:     {http.StatusRequestEntityTooLarge, `{"error":"body too large"}`},
	outcomeSlow:         {http.StatusRequestTimeout, `{"error":"body not received in time"}`},
	outcomeBadRequest:   {http.StatusBadRequest, `{"error":"body must be a JSON object naming an event type"}`},
	outcomeForbidden:    {http.StatusForbidden, `{"error":"event belongs to another company"}`},
	outcomeRateLimited:  {http.StatusTooManyRequests, `{"error":"too many requests"}`},
	outcomeUnavailable:  {http.StatusServiceUnavailable, `{"error":"cannot store events right now"}`},
}

// lookupFunc finds the resource of a token (nil if none).
type lookupFunc func(ctx context.Context, tok string) (*webhooksv1alpha1.MeetergoWebhook, error)

// handler answers meetergo's deliveries: POST /hooks/<token>.
type handler struct {
	lookup      lookupFunc
	intake      *intake
	limits      *limiter // nil: no rate limit
	maxBody     int64
	bodyTimeout time.Duration
	log         logr.Logger
	// largeReads holds a slot per body being read (and held) beyond
	// smallBodyBytes; nil: no bound.
	largeReads chan struct{}
	hooks      *hooks // tests only
}

// contentTypeJSON is the Content-Type of every answer; one slice shared by
// all answers (net/http only reads header values).
var contentTypeJSON = []string{"application/json"}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	outcome, eventType := h.serve(w, r)
	a := answers[outcome]
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.text)
	m := requestMetrics(typeLabel(eventType), outcome)
	m.events.Inc()
	m.duration.Observe(time.Since(start).Seconds())
}

// outcomeMetrics are the metrics of one event type and outcome, looked up
// once: WithLabelValues hashes its labels and takes a lock on every call.
type outcomeMetrics struct {
	events   prometheus.Counter
	duration prometheus.Observer
}

// metricsCache holds them by type label and outcome; a pair is created
// when first used, as WithLabelValues would, so the exposed series are the
// same.
var metricsCache sync.Map // [2]string{type, outcome} -> *outcomeMetrics

func requestMetrics(typ, outcome string) *outcomeMetrics {
	key := [2]string{typ, outcome}
	if m, ok := metricsCache.Load(key); ok {
		return m.(*outcomeMetrics)
	}
	m, _ := metricsCache.LoadOrStore(key, &outcomeMetrics{
		events:   eventsTotal.WithLabelValues(typ, outcome),
		duration: requestDuration.WithLabelValues(outcome),
	})
	return m.(*outcomeMetrics)
}

// serve decides the outcome of a request; the event type is "" until known.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) (outcome, eventType string) {
	tok, ok := strings.CutPrefix(r.URL.Path, token.PathPrefix)
	if !ok || tok == "" || strings.Contains(tok, "/") {
		return outcomeNotFound, ""
	}
	hook, err := h.lookup(r.Context(), tok)
	if err != nil {
		h.log.Error(err, "looking up a receiver token")
		return outcomeUnavailable, ""
	}
	if hook == nil {
		return outcomeNotFound, ""
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return outcomeMethod, ""
	}
	if h.limits != nil && !h.limits.allow(hook.UID) {
		w.Header().Set("Retry-After", "1")
		return outcomeRateLimited, ""
	}
	buf, release, outcome := h.readBody(w, r)
	if outcome != "" {
		return outcome, ""
	}
	if release != nil {
		defer release()
	}
	// The buffer is reused by later requests once nothing refers to the
	// body: the store copies it before accept returns, unless accept gave
	// up waiting (the write may then still read it).
	recycle := true
	defer func() {
		if recycle {
			putBuffer(buf)
		}
	}()
	body := buf.Bytes()
	// A body this build cannot read is kept, not refused: meetergo may
	// disable a webhook that answers errors, and its payloads may change
	// without notice. The token proved the sender.
	kept := ""
	ev, err := payload.Parse(body)
	switch {
	case err != nil:
		ev, kept = payload.Event{}, reasonUnparseable
	case ev.CompanyID != "" && hook.Status.CompanyID != "" && ev.CompanyID != hook.Status.CompanyID:
		return outcomeForbidden, ev.Type
	case !slices.Contains(knownTypes, webhooksv1alpha1.EventType(ev.Type)):
		kept = reasonUnknownType
	case !slices.Contains(hook.Spec.EventTypes, webhooksv1alpha1.EventType(ev.Type)):
		return outcomeUnsubscribed, ev.Type
	}
	var dup bool
	if kept != "" {
		dup, err = h.intake.keep(r.Context(), hook, ev, body, kept)
	} else {
		dup, err = h.intake.accept(r.Context(), hook, ev, body)
	}
	recycle = !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	switch {
	case errors.Is(err, errKeptFull):
		return outcomeKeptDropped, ev.Type
	case err != nil:
		h.log.Error(err, "storing an event", "resource", hook.Namespace+"/"+hook.Name, "type", typeLabel(ev.Type))
		return outcomeUnavailable, ev.Type
	case dup:
		return outcomeDuplicate, ev.Type
	case kept != "":
		return outcomeKept, ev.Type
	}
	return outcomeAccepted, ev.Type
}

// readBody reads the body within the size limit and the body deadline into
// a pooled buffer; a non-empty outcome means it could not (and the buffer
// is already back in the pool). release gives back the large-body slot the
// read may hold; call it once the buffer is no longer needed.
//
// The buffer grows with the bytes received, never ahead of them from the
// declared Content-Length: a client that declares 1 MB and sends nothing
// costs a connection's state, not 1 MiB. A body that grows past
// smallBodyBytes waits for one of the handler's largeReads slots first
// (within the body deadline: past it, 408), so at most that many large
// bodies are read and held at once; smaller ones, meetergo's, never wait,
// so slow clients cannot hold up events by holding slots.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (_ *bytes.Buffer, release func(), outcome string) {
	if r.ContentLength > h.maxBody {
		return nil, nil, outcomeTooLarge
	}
	deadline := time.Now().Add(h.bodyTimeout)
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	body := &gatedBody{r: http.MaxBytesReader(w, r.Body, h.maxBody), slots: h.largeReads, deadline: deadline, gone: r.Context().Done()}
	if h.largeReads == nil || r.ContentLength >= 0 && r.ContentLength <= smallBodyBytes {
		body.held = true // no slot needed: net/http reads no more than Content-Length
	} else {
		release = body.release
	}
	buf := getBuffer()
	if h.hooks != nil && h.hooks.bodyWait != nil {
		h.hooks.bodyWait()
	}
	_, err := buf.ReadFrom(body)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return buf, release, ""
	case errors.As(err, &tooLarge):
		outcome = outcomeTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		outcome = outcomeSlow
	default:
		outcome = outcomeBadRequest
	}
	body.release()
	putBuffer(buf)
	return nil, nil, outcome
}

// smallBodyBytes is how much of a body is read without a large-body slot
// (meetergo's bodies are a few KB, at most about 100 KB).
const smallBodyBytes = 64 << 10

// gatedBody reads a request body; past smallBodyBytes it first takes a
// slot of slots, waiting until deadline (os.ErrDeadlineExceeded then) or
// until the client is gone.
type gatedBody struct {
	r        io.Reader
	n        int64
	slots    chan struct{}
	held     bool // a slot is held, or none is needed
	taken    bool // a slot is held
	deadline time.Time
	gone     <-chan struct{}
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if !b.held {
		if b.n >= smallBodyBytes {
			if err := b.acquire(); err != nil {
				return 0, err
			}
		} else if rest := smallBodyBytes - b.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// errClientGone ends the read of a body whose client hung up while it
// waited for a slot.
var errClientGone = errors.New("client gone while waiting to read its body")

func (b *gatedBody) acquire() error {
	select {
	case b.slots <- struct{}{}:
		b.held, b.taken = true, true
		return nil
	default:
	}
	wait := time.NewTimer(time.Until(b.deadline))
	defer wait.Stop()
	select {
	case b.slots <- struct{}{}:
		b.held, b.taken = true, true
		return nil
	case <-wait.C:
		return os.ErrDeadlineExceeded
	case <-b.gone:
		return errClientGone
	}
}

// release gives the slot back, if one is held; it may be called again.
func (b *gatedBody) release() {
	if b.taken {
		b.taken = false
		<-b.slots
	}
}

// bodyBuffers are request body buffers; one that grew beyond
// maxPooledBuffer (a body far larger than meetergo's) is left to the
// garbage collector rather than kept.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 256 << 10

func getBuffer() *bytes.Buffer { return bodyBuffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bodyBuffers.Put(b)
}

// typeLabel bounds the event type label to the known types.
func typeLabel(t string) string {
	switch {
	case t == "":
		return "none"
	case slices.Contains(knownTypes, webhooksv1alpha1.EventType(t)):
		return t
	}
	return "unknown"
}

// knownTypes are the event types the API admits.
var knownTypes = []webhooksv1alpha1.EventType{
	webhooksv1alpha1.EventBookingCreated, webhooksv1alpha1.EventBookingCancelled, webhooksv1alpha1.EventBookingRescheduled,
	webhooksv1alpha1.EventNewEmployee, webhooksv1alpha1.EventFormSubmission, webhooksv1alpha1.EventCredentialError,
	webhooksv1alpha1.EventReviewSubmitted, webhooksv1alpha1.EventReviewPublished, webhooksv1alpha1.EventSignatureCompleted,
}
