package fake

import (
	"net/http"
	"time"
)

// Defaults of Settings, as documented for production.
const (
	DefaultWebhookLimit      = 6
	DefaultRequestsPerMinute = 100
	DefaultBurst             = 200
	DefaultPlanWallStatus    = http.StatusForbidden
	// DefaultDeliveryTimeout is how long meetergo waits for a receiver.
	DefaultDeliveryTimeout = 30 * time.Second
	defaultRequestLogSize  = 10000
)

// Options configure a Server.
type Options struct {
	// Settings are the switches a test can also change at run time; zero
	// fields take the defaults above.
	Settings
	// Seed is the server's initial state: companies, users, credentials
	// and webhooks that already exist. DefaultSeed() is a ready one.
	Seed Seed
	// DeliveryClient sends deliveries. Nil means a client with a 30 s
	// timeout; LoopbackDeliveryClient keeps every delivery on 127.0.0.1.
	DeliveryClient *http.Client
	// FaultSeed seeds the random numbers behind Fault.Probability, so a
	// soak run can be repeated.
	FaultSeed uint64
	// RequestLogSize is how many requests Requests keeps (10000 if zero).
	RequestLogSize int
}

// Settings are the server's switches; see Server.SetSettings.
type Settings struct {
	// WebhookLimit is the number of webhooks a company may have; the next
	// create answers 406.
	WebhookLimit int `json:"webhookLimit,omitempty"`
	// RequestsPerMinute and Burst shape each credential's token bucket;
	// a request beyond it answers 429.
	RequestsPerMinute int `json:"requestsPerMinute,omitempty"`
	Burst             int `json:"burst,omitempty"`
	// RetryAfter adds a Retry-After header (whole seconds) to 429 answers.
	// Production does not document one, so it is off by default.
	RetryAfter bool `json:"retryAfter"`
	// PlanWall makes every webhook route answer the plan wall: code
	// PLAN_LIMIT_REACHED, feature "webhooks", status PlanWallStatus.
	PlanWall bool `json:"planWall"`
	// PlanWallStatus is the plan wall's HTTP status: 403 by default (also
	// for anything outside 400..599). meetergo's own clients read the code
	// whatever the status.
	PlanWallStatus int `json:"planWallStatus,omitempty"`
	// PlanWallOnCreate makes only POST /webhooks answer the plan wall:
	// list, update and delete work. It models a plan that allows fewer
	// webhooks than the limit (and no more now). PlanWall, if set, walls
	// every route regardless.
	PlanWallOnCreate bool `json:"planWallOnCreate"`
	// Latency delays every API request.
	Latency Duration `json:"latency"`
	// ListShape is how GET /webhooks answers: "" a bare JSON array (as
	// production); any other value wraps the array in an object under that
	// key, e.g. "data", "items", "webhooks" or "results".
	ListShape string `json:"listShape"`
	// DescriptionMaxLength, if positive, cuts every stored description at
	// this many characters (runes), on create and update, through the API
	// or the dashboard; the answer carries the cut text, as a server that
	// silently truncates would. 0: unlimited.
	DescriptionMaxLength int `json:"descriptionMaxLength"`
	// PayloadIDField is the name of the payload's top-level id in
	// deliveries made by Deliver when DeliverOptions do not choose one:
	// "" or "id" (production), or "appointmentId".
	PayloadIDField string `json:"payloadIdField"`
}

func (s Settings) withDefaults() Settings {
	if s.WebhookLimit <= 0 {
		s.WebhookLimit = DefaultWebhookLimit
	}
	if s.RequestsPerMinute <= 0 {
		s.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if s.Burst <= 0 {
		s.Burst = DefaultBurst
	}
	if s.PlanWallStatus < 400 || s.PlanWallStatus > 599 {
		s.PlanWallStatus = DefaultPlanWallStatus
	}
	if s.DescriptionMaxLength < 0 {
		s.DescriptionMaxLength = 0
	}
	return s
}
