package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// Defaults of Options.
const (
	DefaultBindAddress       = ":8082"
	DefaultTokenGracePeriod  = 24 * time.Hour
	DefaultDedupWindow       = 24 * time.Hour
	DefaultMaxBodyBytes      = 1 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyReadTimeout   = 10 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultLargeBodyReads    = 16
	DefaultStoreMaxBytes     = 1 << 30
	// MinStoreMaxBytes is the smallest store bound: below it the log
	// files and the room a checkpoint needs leave no space for events.
	MinStoreMaxBytes = 1 << 20
	// DefaultKeptMaxEvents and DefaultKeptMaxBytes bound the kept
	// (unread) events of each resource.
	DefaultKeptMaxEvents       = 100
	DefaultKeptMaxBytes        = 10 << 20
	DefaultEventInterval       = 10 * time.Second
	DefaultStatusFlushInterval = 5 * time.Second
)

// Options configure the receiver. Zero values take the defaults above (and
// those of package forward); Tokens and DataDir are required.
type Options struct {
	// BindAddress is where the receiver's HTTP server listens, e.g. ":8082".
	BindAddress string
	// DataDir holds the store (one bbolt file). It should be a persistent
	// volume per replica; an emptyDir loses pending deliveries with the pod.
	DataDir string
	// Tokens derives the path tokens of receiver URLs.
	Tokens *token.Deriver
	// TokenGracePeriod is how long after a rotation (status.tokenRotatedAt)
	// the previous token is still accepted.
	TokenGracePeriod time.Duration
	// DedupWindow is how long an event's duplicate key is remembered.
	DedupWindow time.Duration

	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// LargeBodyReads is how many request bodies larger than 64 KiB are
	// read and held at once; beyond it such a body waits for its turn
	// within BodyReadTimeout (408 past it). Smaller bodies never wait.
	// With MaxBodyBytes it bounds the memory of bodies: a body's buffer
	// grows with the bytes received, not with its declared size.
	LargeBodyReads int
	// ReadHeaderTimeout and BodyReadTimeout bound how long a client may take
	// to send headers and body, so a slow client cannot hold a connection.
	ReadHeaderTimeout, BodyReadTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests under way on shutdown.
	ShutdownTimeout time.Duration
	// RateLimit, if above zero, limits each resource to this many requests a
	// second (with RateBurst), answering 429 beyond. Off by default: meetergo
	// does not document retrying a 429.
	RateLimit float64
	RateBurst int
	// StoreMaxBytes bounds the store file; when full, new events get 503.
	StoreMaxBytes int
	// KeptMaxEvents and KeptMaxBytes bound, per resource, the events kept
	// unread (bodies the receiver cannot read, with a valid token) and the
	// bytes of their bodies. Beyond either, such a body is answered 200
	// but not stored (outcome kept_dropped, Warning Event
	// UnreadableEventsDropped), so one token holder cannot fill the store
	// that every resource shares.
	KeptMaxEvents int
	KeptMaxBytes  int64

	// DialContext opens connections to targets; nil means a net.Dialer.
	// Tests map never-routed addresses to loopback with it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy picks the proxy for a forwarded request; nil means
	// http.ProxyFromEnvironment (HTTP_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	// Workers is how many deliveries are attempted at once.
	Workers int
	// RetryBaseDelay and RetryMaxDelay bound the backoff between attempts.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// DeadLetterRetention is how long a dead letter is kept for a replay.
	DeadLetterRetention time.Duration

	// EventInterval is the shortest time between two Kubernetes Events of
	// the same resource and reason; events in between are counted into
	// the next.
	EventInterval time.Duration
	// StatusFlushInterval is how often status.delivery is updated.
	StatusFlushInterval time.Duration

	// hooks lets tests order what a real start leaves to chance; nil
	// outside tests.
	hooks *hooks
	// bodyLoweredFrom is MaxBodyBytes as asked for, when complete lowered
	// it to what the store can take.
	bodyLoweredFrom int64
}

// hooks are called, when set, at points of the receiver's start that
// tests need to order.
type hooks struct {
	// beforeLoad runs in Start before the store is loaded.
	beforeLoad func(ctx context.Context)
	// waitingForLoad runs when the receiver's controller has a resource
	// to sync but the store is not loaded yet.
	waitingForLoad func(r types.NamespacedName)
	// reconciled runs when the controller has synced a resource.
	reconciled func(r types.NamespacedName, err error)
	// bodyWait runs when a request is about to wait for its body's bytes
	// (or for its turn to read them).
	bodyWait func()
}

// storeWriteOverhead is room, beside a body, for the rest of its write
// (the event, its duplicate key, deliveries to up to 16 targets).
const storeWriteOverhead = 8 << 10

// complete checks o and fills in defaults.
func (o *Options) complete() error {
	if o.Tokens == nil {
		return errors.New("receiver: Options.Tokens is required")
	}
	if o.DataDir == "" {
		return errors.New("receiver: Options.DataDir is required")
	}
	if o.RateLimit < 0 || o.RateBurst < 0 {
		return errors.New("receiver: RateLimit and RateBurst must not be negative")
	}
	if o.KeptMaxEvents < 0 || o.KeptMaxBytes < 0 {
		return errors.New("receiver: KeptMaxEvents and KeptMaxBytes (--receiver-kept-max-events, --receiver-kept-max-bytes) must not be negative")
	}
	if o.StoreMaxBytes > 0 && o.StoreMaxBytes < MinStoreMaxBytes {
		return fmt.Errorf("receiver: StoreMaxBytes (--receiver-store-max-bytes) must be at least %d (1 MiB), not %d", MinStoreMaxBytes, o.StoreMaxBytes)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.BindAddress == "" {
		o.BindAddress = DefaultBindAddress
	}
	def(&o.TokenGracePeriod, DefaultTokenGracePeriod)
	def(&o.DedupWindow, DefaultDedupWindow)
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.BodyReadTimeout, DefaultBodyReadTimeout)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	def(&o.EventInterval, DefaultEventInterval)
	def(&o.StatusFlushInterval, DefaultStatusFlushInterval)
	def(&o.RetryBaseDelay, forward.DefaultRetryBaseDelay)
	def(&o.RetryMaxDelay, forward.DefaultRetryMaxDelay)
	def(&o.DeadLetterRetention, forward.DefaultDeadLetterRetention)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.StoreMaxBytes <= 0 {
		o.StoreMaxBytes = DefaultStoreMaxBytes
	}
	// A body the store can never take would be answered 503 for ever (a
	// write larger than one log file is refused): answer it 413 instead.
	if limit := store.LogFileSize(int64(o.StoreMaxBytes)) - storeWriteOverhead; o.MaxBodyBytes > limit {
		o.bodyLoweredFrom, o.MaxBodyBytes = o.MaxBodyBytes, limit
	}
	if o.LargeBodyReads <= 0 {
		o.LargeBodyReads = DefaultLargeBodyReads
	}
	if o.StoreMaxBytes <= 0 {
		o.StoreMaxBytes = DefaultStoreMaxBytes
	}
	if o.KeptMaxEvents == 0 {
		o.KeptMaxEvents = DefaultKeptMaxEvents
	}
	if o.KeptMaxBytes == 0 {
		o.KeptMaxBytes = DefaultKeptMaxBytes
	}
	if o.Workers <= 0 {
		o.Workers = forward.DefaultWorkers
	}
	if o.RateLimit > 0 && o.RateBurst == 0 {
		o.RateBurst = max(1, int(o.RateLimit))
	}
	return nil
}
