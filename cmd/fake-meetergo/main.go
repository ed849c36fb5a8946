// Command fake-meetergo runs the fake meetergo API of package
// internal/meetergo/fake on its own, for scripts and manual tests.
//
// It prints one line on stdout, "listening on http://HOST:PORT", and
// serves until SIGINT or SIGTERM. Without --config it is seeded with
// fake.DefaultSeed(). See docs/fake-meetergo.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fake-meetergo:", err)
		os.Exit(1)
	}
}

// config is the --config file: the server's settings, its seed (the
// default seed if absent) and faults active from the start.
type config struct {
	fake.Settings
	Seed      *fake.Seed   `json:"seed,omitempty"`
	Faults    []fake.Fault `json:"faults,omitempty"`
	FaultSeed uint64       `json:"faultSeed,omitempty"`
}

// run parses args, serves until ctx ends, and writes the listening line to
// stdout and everything else to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fake-meetergo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (host:port; port 0 picks a free one)")
	configPath := fs.String("config", "", "JSON file with settings, seed and faults (see docs/fake-meetergo.md)")
	retryAfter := fs.Bool("retry-after", false, "send Retry-After on 429 answers")
	webhookLimit := fs.Int("webhook-limit", fake.DefaultWebhookLimit, "webhooks per company; the next create answers 406")
	rpm := fs.Int("requests-per-minute", fake.DefaultRequestsPerMinute, "rate limit per credential")
	burst := fs.Int("burst", fake.DefaultBurst, "burst per credential")
	planWall := fs.Bool("plan-wall", false, "answer 403 PLAN_LIMIT_REACHED on the webhook routes")
	planWallStatus := fs.Int("plan-wall-status", fake.DefaultPlanWallStatus, "HTTP status of the plan wall (400..599)")
	planWallOnCreate := fs.Bool("plan-wall-on-create", false, "answer the plan wall on POST /webhooks only (list, update and delete work)")
	latency := fs.Duration("latency", 0, "delay added to every API request")
	listShape := fs.String("list-shape", "", `GET /webhooks answers a bare array ("") or an object wrapping it under this key (data, items, webhooks, results)`)
	descMax := fs.Int("description-max-length", 0, "cut stored descriptions at this many characters (0: unlimited)")
	idField := fs.String("payload-id-field", "", `name of the delivered payload's id: "id" (default) or "appointmentId"`)
	loopback := fs.Bool("deliver-loopback", true, "connect every delivery to 127.0.0.1 at the endpoint's port, whatever its host")
	var personal, platform, anyCompany stringList
	fs.Var(&personal, "personal-token", "add a personal token (rgo-...) of the seed's first user (repeatable)")
	fs.Var(&platform, "platform-key", "add a platform key (ak_live:...) of the seed's first company (repeatable)")
	fs.Var(&anyCompany, "any-company-platform-key", "add a platform key (ak_live:...) that acts for users of every company (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg, err := readConfig(*configPath)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "retry-after":
			cfg.RetryAfter = *retryAfter
		case "webhook-limit":
			cfg.WebhookLimit = *webhookLimit
		case "requests-per-minute":
			cfg.RequestsPerMinute = *rpm
		case "burst":
			cfg.Burst = *burst
		case "plan-wall":
			cfg.PlanWall = *planWall
		case "latency":
			cfg.Latency.Duration = *latency
		case "plan-wall-status":
			cfg.PlanWallStatus = *planWallStatus
		case "plan-wall-on-create":
			cfg.PlanWallOnCreate = *planWallOnCreate
		case "list-shape":
			cfg.ListShape = *listShape
		case "description-max-length":
			cfg.DescriptionMaxLength = *descMax
		case "payload-id-field":
			cfg.PayloadIDField = *idField
		}
	})
	if err := cfg.check(); err != nil {
		return err
	}
	if err := cfg.addTokens(personal, platform, anyCompany); err != nil {
		return err
	}
	opts := fake.Options{Settings: cfg.Settings, Seed: *cfg.Seed, FaultSeed: cfg.FaultSeed}
	if *loopback {
		opts.DeliveryClient = fake.LoopbackDeliveryClient()
	}
	srv, err := fake.New(opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, f := range cfg.Faults {
		if _, err := srv.InjectFault(f); err != nil {
			return err
		}
	}
	return serve(ctx, srv, *listen, stdout, stderr)
}

// serve listens on addr and serves srv until ctx ends.
func serve(ctx context.Context, srv *fake.Server, addr string, stdout, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(stderr, "warning: listening beyond loopback; the admin API needs no credential")
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	s := srv.Settings()
	fmt.Fprintf(stderr, "fake meetergo: %d webhooks per company, %d requests/min burst %d per credential, retry-after %t, plan wall %t (on create %t, status %d), list shape %q, description max %d, payload id field %q; admin API under /admin/\n",
		s.WebhookLimit, s.RequestsPerMinute, s.Burst, s.RetryAfter, s.PlanWall, s.PlanWallOnCreate, s.PlanWallStatus, s.ListShape, s.DescriptionMaxLength, s.PayloadIDField)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	srv.Close() // release hung requests so that shutdown can finish
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readConfig reads the --config file; without one, the default seed.
func readConfig(path string) (config, error) {
	var cfg config
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, err
		}
		defer func() { _ = f.Close() }()
		dec := json.NewDecoder(f)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if cfg.Seed == nil {
		seed := fake.DefaultSeed()
		cfg.Seed = &seed
	}
	return cfg, nil
}

// check refuses settings the server would misread.
func (c *config) check() error {
	switch {
	case c.PlanWallStatus != 0 && (c.PlanWallStatus < 400 || c.PlanWallStatus > 599):
		return fmt.Errorf("plan wall status %d: want 400..599", c.PlanWallStatus)
	case c.DescriptionMaxLength < 0:
		return errors.New("description max length must not be negative")
	case c.PayloadIDField != "" && c.PayloadIDField != fake.IDFieldID && c.PayloadIDField != fake.IDFieldAppointmentID:
		return fmt.Errorf("payload id field %q: want %q or %q", c.PayloadIDField, fake.IDFieldID, fake.IDFieldAppointmentID)
	}
	return nil
}

// addTokens adds the --personal-token, --platform-key and
// --any-company-platform-key credentials. Platform keys must look like
// meetergo's (ak_live:...): the operator's client refuses other shapes.
func (c *config) addTokens(personal, platform, anyCompany []string) error {
	if len(personal) > 0 && len(c.Seed.Users) == 0 {
		return errors.New("--personal-token needs a user in the seed")
	}
	if len(platform) > 0 && len(c.Seed.Companies) == 0 {
		return errors.New("--platform-key needs a company in the seed")
	}
	for _, t := range append(slices.Clone(platform), anyCompany...) {
		if !strings.HasPrefix(t, "ak_live:") {
			return errors.New("--platform-key and --any-company-platform-key must start with ak_live:")
		}
	}
	for _, t := range anyCompany {
		c.Seed.Credentials = append(c.Seed.Credentials, fake.Credential{Token: t, AnyCompany: true})
	}
	for _, t := range personal {
		if !strings.HasPrefix(t, "rgo-") {
			return errors.New("--personal-token must start with rgo-")
		}
		c.Seed.Credentials = append(c.Seed.Credentials, fake.Credential{Token: t, UserID: c.Seed.Users[0].ID})
	}
	for _, t := range platform {
		c.Seed.Credentials = append(c.Seed.Credentials, fake.Credential{Token: t, CompanyID: c.Seed.Companies[0].ID})
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

// String implements flag.Value.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
