package receiver

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// routerFixture is a handler whose router reads a fake cache holding
// resources of two namespaces, the same names in both, one rotated within
// the grace period and one beyond it.
type routerFixture struct {
	handler *handler
	found   *webhooksv1alpha1.MeetergoWebhook
	// valid maps each token that must open a resource to it;
	// revoked are tokens derived for these resources that must not.
	valid   map[string]types.NamespacedName
	revoked []string
}

func newRouterFixture(t testing.TB) *routerFixture {
	t.Helper()
	d, err := token.NewDeriver(tokenKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	mk := func(ns, name, uid string, gen int64, rotated time.Duration) *webhooksv1alpha1.MeetergoWebhook {
		w := &webhooksv1alpha1.MeetergoWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
		w.Spec.EventTypes = []webhooksv1alpha1.EventType{"booking_created"}
		w.Status.TokenGeneration = gen
		if rotated != 0 {
			w.Status.TokenRotatedAt = &metav1.Time{Time: now.Add(-rotated)}
		}
		return w
	}
	hooks := []*webhooksv1alpha1.MeetergoWebhook{
		mk("team-a", "hook", "00000000-0000-4000-8000-00000000000a", 0, 0),
		mk("team-b", "hook", "00000000-0000-4000-8000-00000000000b", 0, 0),
		mk("team-a", "rotated", "00000000-0000-4000-8000-0000000000a2", 2, time.Minute),
		mk("team-b", "stale", "00000000-0000-4000-8000-0000000000b1", 1, 2*testGrace),
	}
	scheme := runtime.NewScheme()
	if err := webhooksv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := crfake.NewClientBuilder().WithScheme(scheme).WithIndex(&webhooksv1alpha1.MeetergoWebhook{}, tokenIndex, tokensOf(d))
	for _, w := range hooks {
		b = b.WithObjects(w)
	}
	rt := &router{cache: b.Build(), tokens: d, grace: testGrace, now: func() time.Time { return now }}
	fx := &routerFixture{valid: map[string]types.NamespacedName{}}
	for _, w := range hooks {
		key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
		gen := w.Status.TokenGeneration
		fx.valid[d.Token(string(w.UID), gen)] = key
		for g := range gen {
			prev := d.Token(string(w.UID), g)
			if g == gen-1 && now.Before(w.Status.TokenRotatedAt.Add(testGrace)) {
				fx.valid[prev] = key
			} else {
				fx.revoked = append(fx.revoked, prev)
			}
		}
		fx.revoked = append(fx.revoked, d.Token(string(w.UID), gen+1))
	}
	fx.handler = &handler{
		lookup: func(ctx context.Context, tok string) (*webhooksv1alpha1.MeetergoWebhook, error) {
			w, err := rt.lookup(ctx, tok)
			fx.found = w
			return w, err
		},
		maxBody: DefaultMaxBodyBytes, bodyTimeout: time.Second, log: logr.Discard(),
	}
	return fx
}

// serve sends one request announcing a body over the limit and sending
// none (so nothing is read or stored: a resource that is found answers
// 413, or 405 for another method). An empty body would be stored: the
// receiver keeps a body it cannot read.
func (fx *routerFixture) serve(method, target string) (*http.Request, int, bool) {
	fx.found = nil
	raw := method + " " + target + " HTTP/1.1\r\nHost: receiver\r\nContent-Length: " + strconv.Itoa(DefaultMaxBodyBytes+1) + "\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, 0, false // net/http answers 400 itself; the handler never sees it
	}
	rec := httptest.NewRecorder()
	fx.handler.ServeHTTP(rec, req)
	return req, rec.Code, true
}

// fuzzWorker says whether this process is a worker of `go test -fuzz`.
// Workers run only the fuzz target, and FuzzRouter reads a fake cache, so
// TestMain starts no control plane for them: the fuzzing engine starts
// and kills workers (SIGINT, then SIGKILL), which would leave an etcd and
// a kube-apiserver behind each time.
func fuzzWorker() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			return true
		}
	}
	return false
}

// FuzzRouter sends requests with arbitrary request targets (paths,
// escapes, queries, absolute forms) and methods through the real handler
// and router: nothing panics, a request opens a resource only when its
// decoded path is exactly /hooks/<a token of that resource> (current, or
// previous within the grace period), every such path opens its own
// resource and no other, and what opens nothing is answered 404.
func FuzzRouter(f *testing.F) {
	fx := newRouterFixture(f)
	for tok := range fx.valid {
		for _, target := range almostRightTargets(tok) {
			f.Add("POST", target)
		}
		f.Add("GET", "/hooks/"+tok)
	}
	for _, tok := range fx.revoked {
		f.Add("POST", "/hooks/"+tok)
	}
	for _, s := range []string{"/", "*", "/hooks", "/hooks/", "/hooks//", "http://x/hooks/", "/hooks/%", "/hooks/%zz", "/hooks/\x00", "/\xff"} {
		f.Add("POST", s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		req, code, ok := fx.serve(method, target)
		if !ok {
			return
		}
		tok, isHook := strings.CutPrefix(req.URL.Path, token.PathPrefix)
		want, known := fx.valid[tok]
		switch {
		case isHook && known:
			if fx.found == nil || fx.found.Namespace != want.Namespace || fx.found.Name != want.Name {
				t.Fatalf("%s %q: the token of %s opened %v", method, target, want, ref(fx.found))
			}
			if code == http.StatusNotFound {
				t.Fatalf("%s %q: a valid token answered 404", method, target)
			}
		default:
			if fx.found != nil {
				t.Fatalf("%s %q (path %q) opened %s", method, target, req.URL.Path, ref(fx.found))
			}
			if code != http.StatusNotFound {
				t.Fatalf("%s %q (path %q): status %d, want 404", method, target, req.URL.Path, code)
			}
		}
	})
}

func ref(w *webhooksv1alpha1.MeetergoWebhook) string {
	if w == nil {
		return "nothing"
	}
	return w.Namespace + "/" + w.Name
}

// almostRightTargets are request targets near /hooks/<tok>: the exact one
// first, then variants of it.
func almostRightTargets(tok string) []string {
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	swapCase := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, tok)
	return []string{
		"/hooks/" + tok,
		"/hooks/" + flip(0),
		"/hooks/" + flip(len(tok)/2),
		"/hooks/" + flip(len(tok)-1),
		"/hooks/" + tok[:len(tok)-1],
		"/hooks/" + tok[:len(tok)/2],
		"/hooks/" + tok + "x",
		"/hooks/" + tok + "/",
		"/hooks/" + tok + "/more",
		"/hooks/" + tok + "?x=1",
		"/hooks/" + tok + "#frag",
		"/hooks/" + tok + "%00",
		"/hooks/" + tok + "%2F",
		"/hooks/" + percentEncoded(tok),
		"/hooks/" + url.PathEscape(tok),
		"/hooks/" + swapCase,
		"/hooks/" + strings.ToUpper(tok),
		"/HOOKS/" + tok,
		"/hooks//" + tok,
		"//hooks/" + tok,
		"/hooks/./" + tok,
		"/x/../hooks/" + tok,
		"/hooks/%2F" + tok,
		"/hooks/ " + tok,
		"http://receiver/hooks/" + tok,
		"https://elsewhere.example/hooks/" + tok,
	}
}

// percentEncoded writes every byte of s as %XX.
func percentEncoded(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestAlmostRightTokensOpenNothing spells out, for one token, what the
// fuzz target checks for any: which near misses open nothing, and which
// spellings are the same path to net/http (so open the resource).
func TestAlmostRightTokensOpenNothing(t *testing.T) {
	fx := newRouterFixture(t)
	var tok string
	for k, v := range fx.valid {
		if v.Namespace == "team-a" && v.Name == "hook" {
			tok = k
		}
	}
	opens := map[string]bool{
		"/hooks/" + tok:                             true,
		"/hooks/" + tok + "?x=1":                    true, // a query is not part of the path
		"http://receiver/hooks/" + tok:              true, // absolute form (RFC 9112 3.2.2)
		"https://elsewhere.example/hooks/" + tok:    true, // the Host is not checked: the token is the secret
		"/hooks/" + url.PathEscape(tok):             true, // nothing to escape in base64url
		"/hooks/" + almostRightTargets(tok)[13][7:]: true, // every byte percent-encoded: the same path
	}
	for _, target := range almostRightTargets(tok) {
		req, code, ok := fx.serve("POST", target)
		switch {
		case !ok:
			t.Logf("%-60q rejected by net/http (400 before the handler)", target)
		case opens[target]:
			if fx.found == nil || code != http.StatusRequestEntityTooLarge {
				t.Errorf("%q: status %d, found %s; want the resource (413 for the body announced)", target, code, ref(fx.found))
			}
		default:
			if fx.found != nil || code != http.StatusNotFound {
				t.Errorf("%q (path %q): status %d, found %s; want 404", target, req.URL.Path, code, ref(fx.found))
			}
		}
	}
	for _, tok := range fx.revoked {
		if _, code, _ := fx.serve("POST", "/hooks/"+tok); code != http.StatusNotFound || fx.found != nil {
			t.Errorf("a revoked or future token: status %d, found %s", code, ref(fx.found))
		}
	}
}
