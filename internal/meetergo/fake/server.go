package fake

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a fake meetergo. Create it with New; it is safe for concurrent
// use. Close it after the HTTP server that serves it has stopped taking
// requests, or before, to end requests hung by a fault.
type Server struct {
	delivery *http.Client
	api      *http.ServeMux
	admin    *http.ServeMux
	stop     chan struct{}
	stopOnce sync.Once

	mu        sync.Mutex
	settings  Settings
	companies map[string]Company
	users     map[string]User
	creds     map[string]Credential
	webhooks  map[int64]Webhook
	nextID    int64
	limiters  limiters
	faults    faults
	stats     stats
}

// firstWebhookID makes ids look like production's (e.g. 1492) and not like
// list indexes.
const firstWebhookID = 1001

// New returns a server with opts' settings and seed. It fails if the seed is
// inconsistent (e.g. a user of an unknown company).
func New(opts Options) (*Server, error) {
	s := &Server{
		delivery:  opts.DeliveryClient,
		stop:      make(chan struct{}),
		settings:  opts.Settings.withDefaults(),
		companies: map[string]Company{},
		users:     map[string]User{},
		creds:     map[string]Credential{},
		webhooks:  map[int64]Webhook{},
		nextID:    firstWebhookID,
		faults:    faults{rng: rand.New(rand.NewPCG(opts.FaultSeed, opts.FaultSeed))},
		stats:     newStats(opts.RequestLogSize),
	}
	if s.delivery == nil {
		s.delivery = &http.Client{Timeout: DefaultDeliveryTimeout}
	}
	s.limiters.reset(s.settings)
	s.api = s.apiRoutes()
	s.admin = s.adminRoutes()
	if err := s.AddSeed(opts.Seed); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the server's http.Handler: the production routes and,
// under /admin/, the fake-only admin API.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	s.serveAPI(w, r)
}

// Close ends every request a fault holds (hangs, latency). The server
// keeps answering new requests.
func (s *Server) Close() { s.stopOnce.Do(func() { close(s.stop) }) }

// Settings returns the current switches.
func (s *Server) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// SetSettings replaces the switches (zero fields take the defaults). A
// change of the rate limit refills every credential's bucket.
func (s *Server) SetSettings(v Settings) {
	v = v.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.RequestsPerMinute != s.settings.RequestsPerMinute || v.Burst != s.settings.Burst {
		s.limiters.reset(v)
	}
	s.settings = v
}

// UpdateSettings applies change to a copy of the switches and installs it.
func (s *Server) UpdateSettings(change func(*Settings)) {
	v := s.Settings()
	change(&v)
	s.SetSettings(v)
}

// AddSeed adds (or, for a known id or token, replaces) companies, users and
// credentials, and creates the seed's webhooks as if made in the dashboard.
func (s *Server) AddSeed(seed Seed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range seed.Companies {
		if c.ID == "" {
			return fmt.Errorf("fake: a company needs an id")
		}
		s.companies[c.ID] = c
	}
	for _, u := range seed.Users {
		if _, ok := s.companies[u.CompanyID]; !ok || u.ID == "" {
			return fmt.Errorf("fake: user %q needs an id and a known company", u.ID)
		}
		s.users[u.ID] = u
	}
	for _, c := range seed.Credentials {
		if err := s.checkCredential(c); err != nil {
			return err
		}
		s.creds[c.Token] = c
	}
	for _, w := range seed.Webhooks {
		if _, err := s.createWebhook(w.CompanyID, w.WebhookSpec.change(), sourceDashboard); err != nil {
			return fmt.Errorf("fake: seed webhook %q: %w", w.Endpoint, err)
		}
	}
	return nil
}

func (s *Server) checkCredential(c Credential) error {
	switch {
	case c.Token == "":
		return fmt.Errorf("fake: a credential needs a token")
	case c.personal():
		if _, ok := s.users[c.UserID]; !ok {
			return fmt.Errorf("fake: personal token needs a known userId, got %q", c.UserID)
		}
	case c.AnyCompany:
	case c.CompanyID == "" && len(c.CompanyIDs) == 0:
		return fmt.Errorf("fake: platform key needs a known companyId, companyIds or anyCompany")
	default:
		for _, id := range append([]string{c.CompanyID}, c.CompanyIDs...) {
			if _, ok := s.companies[id]; !ok && id != "" {
				return fmt.Errorf("fake: platform key needs known companies, got %q", id)
			}
		}
	}
	return nil
}

// ExpireCredential makes token answer 401 "API key has expired" from now on.
func (s *Server) ExpireCredential(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.creds[token]; ok {
		c.ExpiresAt = time.Now()
		s.creds[token] = c
	}
}

// RevokeCredential makes token unknown: 401 "Invalid API key".
func (s *Server) RevokeCredential(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.creds, token)
}
