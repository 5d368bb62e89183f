package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/internal/testpki"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	announced      = regexp.MustCompile(`serving \d+ domain\(s\) on (.*)`)
	announcedHTTPS = regexp.MustCompile(`https://(\S+)`)
	announcedHTTP  = regexp.MustCompile(`\bhttp://(\S+)`)
	announcedAdmin = regexp.MustCompile(`admin: http://(\S+)/healthz`)
)

// running is a serve started by startServe.
type running struct {
	https, http, admin string
	stderr             *syncBuffer
	stop               func() int // cancels and returns the exit status
	pid                int        // the process, when it has its own (startBinary)
}

// announced reads the listeners' addresses from serve's start-up line in
// out, and reports whether it was there.
func (r *running) announced(out string) bool {
	m := announced.FindStringSubmatch(out)
	if m == nil {
		return false
	}
	if h := announcedHTTPS.FindStringSubmatch(m[1]); h != nil {
		r.https = h[1]
	}
	if h := announcedHTTP.FindStringSubmatch(m[1]); h != nil {
		r.http = h[1]
	}
	if a := announcedAdmin.FindStringSubmatch(out); a != nil {
		r.admin = a[1]
	}
	return true
}

// startServe runs "serve args..." on loopback ports chosen by the kernel
// (args may empty a listener: "-https", ""). The server is stopped when
// the test ends (if not before) and must exit 0.
func startServe(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "-https", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...), stdout, stderr)
	}()
	var (
		mu      sync.Mutex
		code    int
		stopped bool
	)
	r := &running{stderr: stderr}
	r.stop = func() int {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return code
		}
		stopped = true
		cancel()
		select {
		case code = <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s of cancel")
			code = -1
		}
		return code
	}
	t.Cleanup(func() {
		if c := r.stop(); c != 0 {
			t.Errorf("serve exited %d; stderr:\n%s", c, stderr)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.announced(stdout.String()) {
			return r
		}
		select {
		case code := <-done:
			mu.Lock()
			stopped = true
			mu.Unlock()
			t.Fatalf("serve exited %d before serving; stderr:\n%s", code, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve announced nothing in 10s; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	return nil
}

const poxRequest = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`

func postPOX(t *testing.T, c *http.Client, url, addr string) *clientcheck.POX {
	t.Helper()
	resp, err := c.Post(url, "text/xml", strings.NewReader(strings.Replace(poxRequest, "%s", addr, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p, err := clientcheck.ReadPOX(resp.Header.Get("Content-Type"), body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return p
}

// The README's first command: serve with no config answers for example.com
// over a real HTTPS listener and over plain HTTP.
func TestServeEmbeddedDefault(t *testing.T) {
	r := startServe(t)
	httpsAddr, httpAddr, stderr := r.https, r.http, r.stderr
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The development certificate is self-signed; check what it is instead.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := c.Get("https://" + httpsAddr + "/mail/config-v1.1.xml?emailaddress=user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname("autodiscover.example.com"); err != nil {
		t.Errorf("dev certificate: %v", err)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", resp.TLS.Version)
	}
	tb, err := clientcheck.Thunderbird(resp.Header.Get("Content-Type"), body)
	if err != nil || tb.Incoming[0].Host != "outlook.office365.com" {
		t.Fatalf("autoconfig over https: %v %+v", err, tb)
	}
	if p := postPOX(t, c, "https://"+httpsAddr+"/autodiscover/autodiscover.xml", "user@example.com"); p.Action != "settings" || p.Servers[2].Host != "smtp.office365.com" {
		t.Errorf("POX: %+v", p)
	}
	// Plain HTTP: autoconfig, and the POX redirect with the https port.
	resp, err = http.Get("http://" + httpAddr + "/mail/config-v1.1.xml?emailaddress=user@example.com")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("autoconfig over http: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/autodiscover/autodiscover.xml", nil)
	req.Host = "autodiscover.example.com"
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := strings.Cut(httpsAddr, ":")
	if want := "https://autodiscover.example.com:" + port + "/autodiscover/autodiscover.xml"; resp.StatusCode != 302 || resp.Header.Get("Location") != want {
		t.Errorf("redirect %d %q, want 302 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if !strings.Contains(stderr.String(), "self-signed certificate, for development only") {
		t.Errorf("dev certificate not announced:\n%s", stderr)
	}
}

// A config file with certificate files serves its domain list, and a client
// that trusts only the test CA verifies the chain for each host name.
func TestServeConfigWithCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	caPool := writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com", "autodiscover.fabrikam.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(`tls:
  cert_file: cert.pem
  key_file: key.pem
domains:
  - name: contoso.com
    provider: microsoft365
  - name: fabrikam.com
    provider: custom
    imap: {host: mail.fabrikam.com, port: 993, tls: ssl}
    smtp: {host: mail.fabrikam.com, port: 587, tls: starttls}
`), 0o600)
	r := startServe(t, "-config", cfg)
	httpsAddr, stderr := r.https, r.stderr
	for _, tc := range []struct{ host, addr, imap string }{
		{"autodiscover.contoso.com", "jane@contoso.com", "outlook.office365.com"},
		{"autodiscover.fabrikam.com", "max@fabrikam.com", "mail.fabrikam.com"},
	} {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: caPool, ServerName: tc.host},
		}}
		if p := postPOX(t, c, "https://"+httpsAddr+"/autodiscover/autodiscover.xml", tc.addr); p.Servers[0].Host != tc.imap {
			t.Errorf("%s: IMAP %s, want %s", tc.addr, p.Servers[0].Host, tc.imap)
		}
	}
	// example.com is not in this config: never answered.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool, ServerName: "autodiscover.contoso.com"}}}
	if p := postPOX(t, c, "https://"+httpsAddr+"/autodiscover/autodiscover.xml", "user@example.com"); p.ErrorCode != 500 {
		t.Errorf("unconfigured domain: %+v", p)
	}
	if strings.Contains(stderr.String(), "self-signed") {
		t.Error("a self-signed certificate was made although cert files are configured")
	}
}

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("domains:\n  - name: a.com\n    provider: microsoft365\n    smtp: {host: smtp-mail.outlook.com}\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"serve", "-config", filepath.Join(dir, "missing.yaml")}, 1, "read config"},
		{[]string{"serve", "-config", bad, "-https", "127.0.0.1:0", "-http", ""}, 1, "bad.yaml:4: domains[0].smtp.host: smtp-mail.outlook.com is a consumer"},
		{[]string{"serve", "-https", "256.0.0.1:99999"}, 1, "listen https"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("run(%q) = %d, stderr %q; want %d containing %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Errorf("help: %d %q", code, out.String())
	}
}

// writeCertificate writes cert.pem (leaf + intermediate) and key.pem for
// names, issued by a fresh test CA through an intermediate, and returns a
// pool holding only the CA.
func writeCertificate(t *testing.T, dir string, names ...string) *x509.CertPool {
	t.Helper()
	c := testpki.New(t, names...)
	c.WriteFiles(t, dir)
	return c.Roots
}

// Behind a TLS-terminating proxy (-https "") without trusted_proxies, every
// request would be answered as plain HTTP: serve warns at start.
func TestServeWarnsBehindProxyWithoutTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	trusting := filepath.Join(dir, "trusting.yaml")
	os.WriteFile(trusting, []byte("trusted_proxies: [10.0.0.0/8]\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n"), 0o600)
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{nil, true},
		{[]string{"-config", trusting}, false},
	} {
		r := startServe(t, append([]string{"-https", "", "-admin", ""}, tc.args...)...)
		if code := r.stop(); code != 0 {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, r.stderr)
		}
		if got := strings.Contains(r.stderr.String(), "trusted_proxies is too"); got != tc.warn {
			t.Errorf("%v: warned %v, want %v:\n%s", tc.args, got, tc.warn, r.stderr)
		}
	}
}

// Behind an ingress (-https "") the configured certificate files, the
// ingress's own, still sign Apple profiles, and /readyz needs them.
func TestServeSignsBehindIngress(t *testing.T) {
	dir := t.TempDir()
	writeCertificate(t, dir, "autodiscover.contoso.com", "autoconfig.contoso.com")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("trusted_proxies: [127.0.0.1/32]\ntls: {cert_file: cert.pem, key_file: key.pem}\ndomains:\n  - name: contoso.com\n    provider: google-workspace\n"), 0o600)
	addr := startServe(t, "-config", cfg, "-https", "", "-admin", "").http
	req, _ := http.NewRequest("GET", "http://"+addr+"/mobileconfig?email=jane@contoso.com", nil)
	req.Host = "autodiscover.contoso.com"
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A signed profile is DER (CMS SignedData), an unsigned one an XML plist.
	if resp.StatusCode != 200 || len(body) == 0 || body[0] != 0x30 {
		t.Errorf("profile behind the ingress: %d, starts %q: not signed", resp.StatusCode, body[:min(len(body), 20)])
	}
	// And the setup page does not tell people it is a development setup.
	req, _ = http.NewRequest("GET", "http://"+addr+"/setup?email=jane@contoso.com", nil)
	req.Host = "autodiscover.contoso.com"
	req.Header.Set("X-Forwarded-Proto", "https")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Contains(page, []byte("development setup")) || !bytes.Contains(page, []byte("mobileconfig")) {
		t.Errorf("setup page behind the ingress: %d, says development setup: %v", resp.StatusCode, bytes.Contains(page, []byte("development setup")))
	}
}
