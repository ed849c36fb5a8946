package meetergo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// Credentials of the fake's default seed.
var (
	adminToken  = meetergo.Credential{Token: fake.SeedAdminToken}
	memberToken = meetergo.Credential{Token: fake.SeedMemberToken}
	platformKey = meetergo.Credential{Token: fake.SeedPlatformKey, UserID: fake.SeedAdminID}
	otherToken  = meetergo.Credential{Token: fake.SeedOtherToken}
)

// secretsOf are the strings no output may contain: each token and the
// secret part of each platform key.
func secretsOf(creds ...meetergo.Credential) []string {
	var out []string
	for _, c := range creds {
		out = append(out, c.Token)
		if i := strings.LastIndexByte(c.Token, ':'); i >= 0 {
			out = append(out, c.Token[i+1:])
		}
	}
	return out
}

var allSecrets = secretsOf(adminToken, memberToken, platformKey, otherToken, meetergo.Credential{Token: fake.SeedMultiCompanyPlatformKey},
	meetergo.Credential{Token: "rgo-unknown-token-1234567890"}, meetergo.Credential{Token: "ak_live:00000000-0000-4000-8000-000000000000:unknownsecret123"})

// assertNoSecrets fails if err, in any rendering, contains a secret.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	for _, format := range []string{"%v", "%+v", "%s", "%#v", "%q"} {
		text := fmt.Sprintf(format, err)
		for _, s := range allSecrets {
			if strings.Contains(text, s) {
				t.Fatalf("error rendered with %s contains a credential: %s", format, text)
			}
		}
	}
}

// waits records the waits the client asks for instead of spending them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

// nonZero returns the recorded waits longer than zero (budget waits of a
// fresh bucket are zero).
func (w *waits) nonZero() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, d := range w.d {
		if d > 0 {
			out = append(out, d)
		}
	}
	return out
}

// logSink collects everything the client logs, at every verbosity.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) write(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logSink) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// env is a fake meetergo and a client talking to it.
type env struct {
	srv    *fake.Server
	url    string
	client *meetergo.HTTPClient
	waits  *waits
	logs   *logSink
}

// newEnv starts a fake with opts and a client whose waits are recorded, not
// spent, unless realTime. On cleanup it checks that nothing logged carries
// a credential.
func newEnv(t *testing.T, opts fake.Options, change func(*meetergo.Options)) *env {
	t.Helper()
	if opts.Seed.Companies == nil {
		opts.Seed = fake.DefaultSeed()
	}
	e := &env{waits: &waits{}, logs: &logSink{}}
	e.srv, e.url = fake.Start(t, opts)
	o := meetergo.Options{
		BaseURL:   e.url,
		UserAgent: "meetergo-operator/test",
		Sleep:     e.waits.sleep,
		Logger:    funcr.New(e.logs.write, funcr.Options{Verbosity: 10}),
	}
	if change != nil {
		change(&o)
	}
	var err error
	if e.client, err = meetergo.NewHTTPClient(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logs := e.logs.text()
		for _, s := range allSecrets {
			if strings.Contains(logs, s) {
				t.Errorf("the client logged a credential:\n%s", logs)
			}
		}
	})
	return e
}

// realTime makes the client spend its waits.
func realTime(o *meetergo.Options) { o.Sleep = nil }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustInject adds a fault to the fake.
func mustInject(t *testing.T, srv *fake.Server, f fake.Fault) {
	t.Helper()
	if _, err := srv.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

// mustError checks that err is a *meetergo.Error of the reason and status.
func mustError(t *testing.T, err error, reason meetergo.Reason, status int) *meetergo.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got none", reason)
	}
	assertNoSecrets(t, err)
	var e *meetergo.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *meetergo.Error, got %T: %v", err, err)
	}
	if e.Reason != reason || e.StatusCode != status {
		t.Fatalf("want %s/%d, got %s/%d: %v", reason, status, e.Reason, e.StatusCode, err)
	}
	return e
}
