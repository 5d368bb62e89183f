package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// Behind a TCP front that passes TLS through (HAProxy's send-proxy-v2), the
// client's address comes in a PROXY protocol header: the per-client limits
// and the request log key on it, so clients behind one front are not one
// client. A header from a peer that is not a trusted proxy is refused.
func TestProxyProtocolFromTrustedFront(t *testing.T) {
	dir := t.TempDir()
	roots := writeCertificate(t, dir, "autodiscover.contoso.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("tls: {cert_file: cert.pem, key_file: key.pem}\n"+
		"trusted_proxies: [127.0.0.2/32]\n"+ // the front; the tests' other connections come from 127.0.0.1
		"limits: {pages_per_client_per_minute: 2}\n"+
		"domains:\n  - {name: contoso.com, provider: microsoft365}\n"), 0o600)
	r := startServe(t, "-config", cfg, "-log-format", "json")

	// through dials from the front's address (or from) and sends a PROXY
	// header naming client, as HAProxy does before the client's bytes.
	through := func(from, client string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "autodiscover.contoso.com"},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				h := proxyproto.HeaderProxyFromAddrs(2,
					net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(client), 50000)), conn.RemoteAddr())
				if _, err := h.WriteTo(conn); err != nil {
					conn.Close()
					return nil, err
				}
				return conn, nil
			},
		}}
	}
	page := func(c *http.Client) int {
		resp, err := c.Get("https://" + r.https + "/setup")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// One client through the front spends its two pages a minute ...
	a := through("127.0.0.2", "198.51.100.7")
	for i, want := range []int{200, 200, 429} {
		if got := page(a); got != want {
			t.Fatalf("client A's page %d: %d, want %d", i+1, got, want)
		}
	}
	// ... and another client through the same front has its own.
	if got := page(through("127.0.0.2", "198.51.100.8")); got != 200 {
		t.Errorf("client B through the same front: %d, want 200 (a client of its own)", got)
	}
	waitFor(t, "the request log to name the clients", func() bool {
		log := r.stderr.String()
		return strings.Contains(log, `"client":"198.51.100.7"`) && strings.Contains(log, `"client":"198.51.100.8"`)
	})
	// A trusted front that sends no header is its own client, as before.
	if got := page(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "autodiscover.contoso.com"},
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}); got != 200 {
		t.Errorf("the front without a header: %d, want 200", got)
	}

	// A peer that is not trusted cannot name another client: its header
	// is its first bytes, which TLS refuses.
	if got := page(through("127.0.0.1", "198.51.100.9")); got != 0 {
		t.Errorf("a PROXY header from an untrusted peer was accepted: %d", got)
	}
	if strings.Contains(r.stderr.String(), "198.51.100.9") {
		t.Error("an untrusted peer's PROXY header named the client in the log")
	}
	// The plain-HTTP listener reads the header from the front too.
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: through("127.0.0.2", "198.51.100.10").Transport.(*http.Transport).DialContext}}).
		Get("http://" + r.http + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the plain-HTTP request logged with its client", func() bool {
		return strings.Contains(r.stderr.String(), `"client":"198.51.100.10"`)
	})
}
