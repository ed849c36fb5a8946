package forward

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		status int
		err    error
		want   verdict
	}{
		{200, nil, success}, {201, nil, success}, {204, nil, success}, {299, nil, success},
		{0, errors.New("connection refused"), retryable},
		{408, nil, retryable}, {429, nil, retryable}, {500, nil, retryable}, {502, nil, retryable}, {503, nil, retryable}, {504, nil, retryable},
		{301, nil, permanent}, {304, nil, permanent}, {400, nil, permanent}, {401, nil, permanent}, {403, nil, permanent},
		{404, nil, permanent}, {409, nil, permanent}, {410, nil, permanent}, {413, nil, permanent}, {422, nil, permanent},
	}
	for _, c := range cases {
		if got := classify(c.status, c.err); got != c.want {
			t.Errorf("classify(%d, %v) = %s, want %s", c.status, c.err, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the jitter's upper end
	zero := func(int64) int64 { return 0 }
	base, maxDelay := time.Second, time.Minute
	cases := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        func(int64) int64
		want       time.Duration
	}{
		{"first retry: up to base", 1, 0, top, time.Second},
		{"doubles", 2, 0, top, 2 * time.Second},
		{"doubles again", 4, 0, top, 8 * time.Second},
		{"capped", 7, 0, top, time.Minute},
		{"no overflow on huge attempts", 500, 0, top, time.Minute},
		{"full jitter reaches zero", 4, 0, zero, 0},
		{"Retry-After wins when longer", 1, 30 * time.Second, top, 30 * time.Second},
		{"backoff wins when longer", 7, 5 * time.Second, top, time.Minute},
		{"Retry-After capped", 1, 10 * time.Hour, zero, maxRetryAfter},
	}
	for _, c := range cases {
		if got := backoff(c.attempt, base, maxDelay, c.retryAfter, c.rnd); got != c.want {
			t.Errorf("%s: backoff = %s, want %s", c.name, got, c.want)
		}
	}
	for range 1000 {
		if d := backoff(3, base, maxDelay, 0, jitter); d < 0 || d > 4*time.Second {
			t.Fatalf("jittered backoff %s outside [0, 4s]", d)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":         0,
		"7":        7 * time.Second,
		"0":        0,
		"-3":       0,
		"soon":     0,
		"99999999": maxRetryAfter,
		now.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
	}
	for v, want := range cases {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q = %s, want %s", v, got, want)
		}
	}
}

// TestSignMatchesTheStandardWebhooksVector checks Sign against the example
// of the Standard Webhooks specification and its reference libraries.
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestParseSecret(t *testing.T) {
	for in, ok := range map[string]bool{
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":    true,
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":          true,
		" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n": true,
		"whsec_not base64!":                         false,
		"whsec_c2hvcnQ=":                            false, // "short"
		"":                                          false,
	} {
		if _, err := ParseSecret(in); (err == nil) != ok {
			t.Errorf("ParseSecret(%q): err %v, want ok=%v", in, err, ok)
		}
	}
}

func TestTargets(t *testing.T) {
	w := &webhooksv1alpha1.MeetergoWebhook{Spec: webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created", "booking_cancelled"},
		Targets: []webhooksv1alpha1.Target{
			{Service: webhooksv1alpha1.ServiceReference{Name: "all", Port: intstr.FromString("http")}},
			{Service: webhooksv1alpha1.ServiceReference{Name: "created", Port: intstr.FromInt32(8080)}, Path: "/in", EventTypes: []webhooksv1alpha1.EventType{"booking_created"}},
			{Service: webhooksv1alpha1.ServiceReference{Name: "all", Port: intstr.FromString("http")}, Path: "/"}, // same as the first
		},
	}}
	if got, want := Targets(w, "booking_created"), []string{"all:http/", "created:8080/in"}; !slices.Equal(got, want) {
		t.Errorf("booking_created goes to %v, want %v", got, want)
	}
	if got, want := Targets(w, "booking_cancelled"), []string{"all:http/"}; !slices.Equal(got, want) {
		t.Errorf("booking_cancelled goes to %v, want %v", got, want)
	}
	if got := Targets(w, "new_employee"); len(got) != 0 {
		t.Errorf("an unsubscribed type goes to %v", got)
	}
	if _, ok := findTarget(w, "created:8080/in", "booking_cancelled"); ok {
		t.Error("findTarget found a target that does not take the type")
	}
	if tg, ok := findTarget(w, "created:8080/in", "booking_created"); !ok || tg.Path != "/in" {
		t.Errorf("findTarget = %+v, %v", tg, ok)
	}
}

func TestDescribeError(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := map[error]string{
		dial: "connection refused",
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route")}: "cannot connect",
		fmt.Errorf("read: %w", syscall.ECONNRESET):                        "connection closed without an answer",
		io.ErrUnexpectedEOF: "connection closed without an answer",
		errors.New("tls: bad certificate for https://x/secret-path"): "request failed",
	}
	for err, want := range cases {
		if got := describeError(err, time.Second); got != want {
			t.Errorf("describeError(%v) = %q, want %q", err, got, want)
		}
	}
	if !isDialError(dial) || isDialError(io.EOF) {
		t.Error("isDialError misclassifies")
	}
}

func BenchmarkSign(b *testing.B) {
	key, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := make([]byte, 3<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	}
}
