// Package loopbackproxy is a small HTTP forward proxy for the demo and
// end-to-end tests. The API server refuses loopback addresses in
// EndpointSlices, so tests give target Services never-routed addresses
// (192.0.2.x, TEST-NET-1) with the real port of a server on 127.0.0.1, and
// start the operator with HTTP_PROXY pointing at this proxy: it sends a
// request for an allowed address to 127.0.0.1 at the same port, and refuses
// every other host with 403, so nothing ever leaves the machine.
//
// It serves plain HTTP requests in absolute form (what a client sends to a
// proxy) and CONNECT tunnels (what it sends for https). It resolves no
// names: a host must be an IP literal inside the allowed prefix.
package loopbackproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"time"
)

// Proxy is the proxy's http.Handler.
type Proxy struct {
	allowed netip.Prefix
	dialer  net.Dialer
	reverse *httputil.ReverseProxy
}

// New returns a proxy that forwards requests for hosts in allowedCIDR (e.g.
// "192.0.2.0/24") to 127.0.0.1 at the requested port.
func New(allowedCIDR string) (*Proxy, error) {
	prefix, err := netip.ParsePrefix(allowedCIDR)
	if err != nil {
		return nil, fmt.Errorf("loopbackproxy: %w", err)
	}
	p := &Proxy{allowed: prefix.Masked(), dialer: net.Dialer{Timeout: 5 * time.Second}}
	p.reverse = &httputil.ReverseProxy{
		// The request's URL already names the allowed host; the transport
		// dials loopback instead.
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme = "http" },
		Transport: &http.Transport{
			Proxy:       nil,
			DialContext: p.dialLoopback,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "loopbackproxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	return p, nil
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" {
		http.Error(w, "loopbackproxy: only proxy requests (absolute http:// URLs, or CONNECT) are served", http.StatusBadRequest)
		return
	}
	if _, err := p.target(r.URL.Host, "80"); err != nil {
		http.Error(w, "loopbackproxy: "+err.Error(), http.StatusForbidden)
		return
	}
	p.reverse.ServeHTTP(w, r)
}

// target maps an allowed host:port to 127.0.0.1:port; it refuses any host
// that is not an IP literal in the allowed prefix.
func (p *Proxy) target(hostport, defaultPort string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, defaultPort
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.allowed.Contains(addr.Unmap()) {
		return "", fmt.Errorf("host %q is not in %s", host, p.allowed)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

// dialLoopback is the transport's dialer: it dials only what target allows.
func (p *Proxy) dialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	to, err := p.target(addr, "80")
	if err != nil {
		return nil, err
	}
	return p.dialer.DialContext(ctx, "tcp", to)
}

// tunnel serves CONNECT: a raw TCP tunnel to the mapped address.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	to, err := p.target(r.Host, "443")
	if err != nil {
		http.Error(w, "loopbackproxy: "+err.Error(), http.StatusForbidden)
		return
	}
	upstream, err := p.dialer.DialContext(r.Context(), "tcp", to)
	if err != nil {
		http.Error(w, "loopbackproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = upstream.Close() }()
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "loopbackproxy: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = client.Close() }()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, buf); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); closeWrite(client); done <- struct{}{} }()
	<-done
	<-done
}

// closeWrite half-closes a TCP connection so the other side sees EOF.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}
