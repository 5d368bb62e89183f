package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/pgtest"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"golang.org/x/crypto/acme/autocert"
)

// loopbackDNS answers every A query with 127.0.0.1 (and nothing else), so
// pebble's validation authority reaches our listeners for any name.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// pebble is a Let's Encrypt test CA running in the test process.
type pebble struct {
	dirURL string
	client *http.Client // trusts pebble's HTTPS certificate
	roots  *x509.CertPool
	orders atomic.Int32 // orders made (new-order answered 201)
	issued atomic.Int32 // certificates issued (finalize answered 200)
}

// startPebble validates http-01 on httpPort and tls-alpn-01 on tlsPort of
// 127.0.0.1 (through the loopback resolver).
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, loopbackDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p := &pebble{roots: x509.NewCertPool()}
	h := front.Handler()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order, finalize := strings.Contains(r.URL.Path, "order-plz"), strings.Contains(r.URL.Path, "finalize-order")
		if !order && !finalize {
			h.ServeHTTP(w, r)
			return
		}
		// An order made: 201 Created; a certificate issued: a finalize
		// answered 200 (a request refused for its nonce, which pebble
		// does at random, is tried again and counts once).
		sw := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		switch {
		case order && sw.status == http.StatusCreated:
			p.orders.Add(1)
		case finalize && sw.status == http.StatusOK:
			p.issued.Add(1)
		}
	}))
	t.Cleanup(ts.Close)
	p.dirURL = ts.URL + wfe.DirectoryPath
	p.client = ts.Client()
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// loopbackHosts resolves every name to loopback, as pebble's resolver
// does here.
func loopbackHosts(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serveACME runs an HTTPS listener and a port-80-style HTTP listener on
// loopback, both answering through the ACME provider, and returns their ports.
func serveACME(t *testing.T, a *ACME) (httpsPort, httpPort int) {
	t.Helper()
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	httpsSrv := &http.Server{Handler: ok, TLSConfig: &tls.Config{
		GetCertificate: a.GetCertificate,
		NextProtos:     append([]string{"h2", "http/1.1"}, a.NextProtos()...),
	}}
	httpSrv := &http.Server{Handler: a.HTTPHandler(ok)}
	go httpsSrv.ServeTLS(tlsLn, "", "")
	go httpSrv.Serve(httpLn)
	t.Cleanup(func() { httpsSrv.Close(); httpSrv.Close() })
	return tlsLn.Addr().(*net.TCPAddr).Port, httpLn.Addr().(*net.TCPAddr).Port
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// handshake connects to our HTTPS listener as a client that trusts only
// pebble's root and returns the verified leaf.
func handshake(t *testing.T, port int, host string, roots *x509.CertPool, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.ServerName, cfg.RootCAs = host, roots
	d := &net.Dialer{Timeout: 90 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// The real autocert code path against a real ACME server: tls-alpn-01 on
// the HTTPS listener, a chain that verifies against pebble's root only,
// ECDSA by default and RSA to a client without ECDSA, and a host policy
// that refuses other names before contacting the CA.
func TestACMEWithPebbleTLSALPN(t *testing.T) {
	hosts := []string{"autodiscover.example.com", "autoconfig.example.com"}
	// The listeners must exist before pebble knows their ports; the
	// provider's CA settings are filled in once pebble runs.
	opts := ACMEOptions{CacheDir: t.TempDir(), LookupHost: loopbackHosts}
	a := NewACME(opts, hosts)
	httpsPort, httpPort := serveACME(t, a)
	p := startPebble(t, httpPort, httpsPort)
	a.m.Client.DirectoryURL, a.m.Client.HTTPClient = p.dirURL, p.client

	leaf, err := handshake(t, httpsPort, "autodiscover.example.com", p.roots, nil)
	if err != nil {
		t.Fatalf("handshake verifying against pebble's root: %v", err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("default certificate key %T, want ECDSA", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("autodiscover.example.com"); err != nil {
		t.Error(err)
	}
	// An old client: TLS 1.2 with RSA key exchange suites only.
	old := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
	rsaLeaf, err := handshake(t, httpsPort, "autodiscover.example.com", p.roots, old)
	if err != nil {
		t.Fatalf("RSA-only client: %v", err)
	}
	if _, ok := rsaLeaf.PublicKey.(*rsa.PublicKey); !ok {
		t.Errorf("RSA-only client got a %T key", rsaLeaf.PublicKey)
	}
	// Cached sees the ECDSA certificate without contacting the CA, and keeps
	// it: probes and scrapes do not read the disk each time.
	before := p.orders.Load()
	c, err := a.Cached(t.Context(), "autodiscover.example.com")
	if err != nil || c.Leaf == nil && len(c.Certificate) == 0 {
		t.Fatalf("Cached: %v", err)
	}
	if err := os.Remove(filepath.Join(opts.CacheDir, "autodiscover.example.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cached(t.Context(), "autodiscover.example.com"); err != nil {
		t.Errorf("Cached read the disk again within its memo time: %v", err)
	}
	if _, err := a.Cached(t.Context(), "autoconfig.example.com"); err == nil {
		t.Error("Cached has a certificate for a host never asked for")
	}
	// Host policy: another name fails and the CA hears nothing of it.
	if _, err := handshake(t, httpsPort, "evil.example.com", p.roots, nil); err == nil {
		t.Error("handshake for an unconfigured host succeeded")
	}
	if n := p.orders.Load(); n != before {
		t.Errorf("the CA got %d new orders for an unconfigured host", n-before)
	}
	// Obtain fills in the remaining host.
	if errs, deferred := a.Obtain(t.Context(), hosts); len(errs) != 0 || deferred != 0 {
		t.Fatalf("Obtain: %v, %d deferred", errs, deferred)
	}
	if _, err := a.Cached(t.Context(), "autoconfig.example.com"); err != nil {
		t.Errorf("after Obtain: %v", err)
	}
}

// http-01 through the port-80 handler: pebble's tls-alpn-01 attempts go to
// a closed port, so only http-01 can succeed.
func TestACMEWithPebbleHTTP01(t *testing.T) {
	a := NewACME(ACMEOptions{CacheDir: t.TempDir(), LookupHost: loopbackHosts}, []string{"autoconfig.example.org"})
	httpsPort, httpPort := serveACME(t, a)
	p := startPebble(t, httpPort, freePort(t))
	a.m.Client.DirectoryURL, a.m.Client.HTTPClient = p.dirURL, p.client
	if _, err := handshake(t, httpsPort, "autoconfig.example.org", p.roots, nil); err != nil {
		t.Fatalf("certificate through http-01: %v", err)
	}
}

// Obtain asks for at most MaxObtain missing certificates; the rest are left
// for their first handshake.
func TestObtainIsBounded(t *testing.T) {
	var hosts []string
	for i := range MaxObtain + 5 {
		hosts = append(hosts, "autodiscover.d"+strconv.Itoa(i)+".example")
	}
	// A directory on a closed loopback port: each attempt fails at once.
	a := NewACME(ACMEOptions{DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: t.TempDir(), LookupHost: loopbackHosts}, hosts)
	errs, deferred := a.Obtain(t.Context(), hosts)
	if len(errs) != MaxObtain || deferred != 5 {
		t.Errorf("asked for %d, deferred %d; want %d and 5", len(errs), deferred, MaxObtain)
	}
}

// Two replicas sharing one PostgreSQL store, against pebble: a certificate
// is ordered once however many replicas ask for it at once; the http-01
// challenge succeeds though pebble's validation reaches only the replica
// that did not order; both serve the same certificate.
func TestACMEFleetWithPostgres(t *testing.T) {
	pgtest.Setenv(t)
	hosts := []string{"autodiscover.fleet.example", "autoconfig.fleet.example"}
	// Ordered last, by a replica that stops while ordering it.
	late := "autodiscover.late.example"
	replica := func() (*ACME, int, int) {
		store, err := NewPGCache(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		a := NewACME(ACMEOptions{Cache: store, LookupHost: loopbackHosts}, append(hosts, late))
		https, http := serveACME(t, a)
		return a, https, http
	}
	a, aHTTPS, _ := replica()
	b, bHTTPS, bHTTP := replica()
	// pebble validates http-01 at b alone; tls-alpn-01 reaches nobody.
	p := startPebble(t, bHTTP, freePort(t))
	for _, r := range []*ACME{a, b} {
		r.m.Client.DirectoryURL, r.m.Client.HTTPClient = p.dirURL, p.client
	}

	// Both replicas asked for both hosts at once, several times each.
	var wg sync.WaitGroup
	leaves := map[string][]*x509.Certificate{}
	var mu sync.Mutex
	for _, host := range hosts {
		for _, port := range []int{aHTTPS, bHTTPS, aHTTPS, bHTTPS} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// As a client does, a failed handshake is tried again: the
				// one that raced another replica's order fails once.
				var leaf *x509.Certificate
				var err error
				for range 3 {
					if leaf, err = handshake(t, port, host, p.roots, nil); err == nil {
						break
					}
				}
				if err != nil {
					t.Errorf("%s on port %d: %v", host, port, err)
					return
				}
				mu.Lock()
				leaves[host] = append(leaves[host], leaf)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	// autocert may make a second order for a name when its first
	// challenge type fails (tls-alpn-01 reaches nobody here): issued
	// certificates are what is counted.
	if n := p.issued.Load(); n != int32(len(hosts)) {
		t.Errorf("pebble issued %d certificates for %d hosts to two replicas (%d orders)", n, len(hosts), p.orders.Load())
	}
	for host, ls := range leaves {
		for _, l := range ls[1:] {
			if !l.Equal(ls[0]) {
				t.Errorf("%s: the replicas serve different certificates", host)
			}
		}
	}

	// A third replica starts ordering late and stops in the middle (its CA
	// never answers; its store's session ends as a dead process's does):
	// b, asked for the same name meanwhile, completes the order.
	stop := stopWhileOrdering(t, late)
	type result struct {
		leaf *x509.Certificate
		err  error
	}
	served := make(chan result, 1)
	go func() {
		var r result
		for range 3 {
			if r.leaf, r.err = handshake(t, bHTTPS, late, p.roots, nil); r.err == nil {
				break
			}
		}
		served <- r
	}()
	select {
	case r := <-served:
		t.Fatalf("b did not wait for the order in progress: %v", r.err)
	case <-time.After(200 * time.Millisecond): // how long the test looks, not a bound on the code
	}
	stop()
	r := <-served
	if r.err != nil {
		t.Fatalf("after the ordering replica stopped, the other one: %v", r.err)
	}
	leaf := r.leaf
	if leaf.Subject.CommonName != late && !slices.Contains(leaf.DNSNames, late) {
		t.Errorf("b served a certificate for %v", leaf.DNSNames)
	}
	if n := p.issued.Load(); n != int32(len(hosts))+1 {
		t.Errorf("pebble issued %d certificates, want %d", n, len(hosts)+1)
	}
}

// stopWhileOrdering starts a replica whose CA accepts connections and never
// answers, asks it for host, and returns once it holds host's order; the
// function returned stops it.
func stopWhileOrdering(t *testing.T, host string) (stop func()) {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	store, err := NewPGCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := NewACME(ACMEOptions{Cache: store, LookupHost: loopbackHosts}, []string{host})
	c.m.Client.DirectoryURL = "http://" + silent.Addr().String() + "/dir"
	cHTTPS, _ := serveACME(t, c)
	client, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(cHTTPS))
	if err != nil {
		t.Fatal(err)
	}
	go tls.Client(client, &tls.Config{ServerName: host}).Handshake() // hangs with the CA

	// Wait until c holds the order: another store's Get then says so.
	probe, err := NewPGCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for {
		_, err := probe.Get(t.Context(), host)
		if errors.Is(err, ErrOrdering) {
			break
		}
		if !errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("probing the order: %v", err)
		}
		probe.Release(host) // the probe got the lock: c has not yet
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			store.Close()
			client.Close()
			silent.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(stop)
	return stop
}
