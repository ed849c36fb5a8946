package loopbackproxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// setup starts an origin server on 127.0.0.1 and the proxy, and returns a
// client that uses the proxy and the origin's port.
func setup(t *testing.T, origin http.Handler, tlsOrigin bool) (*http.Client, string) {
	t.Helper()
	var o *httptest.Server
	if tlsOrigin {
		o = httptest.NewTLSServer(origin)
	} else {
		o = httptest.NewServer(origin)
	}
	t.Cleanup(o.Close)
	p, err := New("192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	proxyURL, _ := url.Parse(ps.URL)
	transport := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	if tlsOrigin {
		roots := x509.NewCertPool()
		roots.AddCert(o.Certificate())
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: "example.com"}
	}
	_, port, _ := net.SplitHostPort(o.Listener.Addr().String())
	return &http.Client{Transport: transport}, port
}

func TestForwardsAllowedAddressesToLoopback(t *testing.T) {
	var got atomic.Value
	client, port := setup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(fmt.Sprintf("%s %s %s %s %s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Test"), body))
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusAccepted)
	}), false)

	req, _ := http.NewRequest(http.MethodPost, "http://192.0.2.7:"+port+"/in?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("X-Test", "kept")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Answer") != "yes" {
		t.Errorf("answer %d %v", resp.StatusCode, resp.Header)
	}
	if want := `POST /in?x=1 192.0.2.7:` + port + ` kept {"a":1}`; got.Load() != want {
		t.Errorf("origin got %q, want %q", got.Load(), want)
	}
}

func TestRefusesEveryOtherHost(t *testing.T) {
	var hits atomic.Int32
	client, port := setup(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }), false)
	for _, host := range []string{"127.0.0.1", "10.0.0.1", "192.0.3.1", "example.com", "localhost", "[::1]", "192.0.2.1.nip.io"} {
		resp, err := client.Get("http://" + host + ":" + port + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", host, resp.StatusCode)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the origin was reached %d times", hits.Load())
	}
}

func TestTunnelsConnectToAllowedAddresses(t *testing.T) {
	client, port := setup(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "over tls") }), true)
	resp, err := client.Get("https://192.0.2.9:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "over tls" {
		t.Errorf("body %q", body)
	}
	if _, err := client.Get("https://10.1.2.3:" + port + "/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to a refused host: %v, want Forbidden", err)
	}
}

func TestOnlyProxyRequests(t *testing.T) {
	p, _ := New("192.0.2.0/24")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/just/a/path", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("origin-form request: %d, want 400", rec.Code)
	}
	if _, err := New("not a cidr"); err == nil {
		t.Error("New accepted a bad prefix")
	}
}
