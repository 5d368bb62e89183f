package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACME obtains and renews certificates from an ACME CA with autocert:
// tls-alpn-01 on the HTTPS listener and http-01 through the port-80
// handler. ECDSA certificates by default; autocert gives RSA ones to
// clients whose ClientHello offers no ECDSA (old mail clients).
type ACME struct {
	m     *autocert.Manager
	hosts atomic.Pointer[map[string]bool]

	mu   sync.Mutex
	memo map[string]memoCert // Cached's reads of the disk cache

	servedOnce sync.Map // names whose certificate this replica has served: at most the configured hosts
	onboard    *onboarding
}

// memoCert is a certificate read from the cache, and when.
type memoCert struct {
	cert *tls.Certificate
	read time.Time
}

// memoTTL: readiness probes and metric scrapes read certificates often;
// the disk cache is read again after this, so renewals show within it.
const memoTTL = time.Hour

// ACMEOptions configure NewACME.
type ACMEOptions struct {
	DirectoryURL string
	Email        string
	CacheDir     string
	// HTTPClient talks to the CA; nil means http.DefaultClient. Tests set
	// one that trusts their CA's HTTPS certificate.
	HTTPClient *http.Client
	// Cache keeps certificates, the account key and challenge tokens: nil
	// means a directory, CacheDir; a PGCache shares them among replicas
	// (and paces the fleet's orders).
	Cache autocert.Cache
	// Log tells each host's state changes; nil logs nothing.
	Log *slog.Logger
	// LookupHost resolves a name before it is ordered; nil is the
	// system's resolver.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// NewACME serves certificates for exactly hosts (SetHosts changes them).
func NewACME(o ACMEOptions, hosts []string) *ACME {
	a := &ACME{}
	a.SetHosts(hosts)
	cache := o.Cache
	if cache == nil {
		cache = autocert.DirCache(o.CacheDir)
	}
	var pace pacer = &windowPacer{now: time.Now}
	if p, ok := cache.(pacer); ok {
		pace = p
	}
	a.onboard = newOnboarding(o.Log, pace)
	if o.LookupHost != nil {
		a.onboard.lookup = o.LookupHost
	}
	a.m = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      cache,
		Email:      o.Email,
		HostPolicy: a.policy,
		Client:     &acme.Client{DirectoryURL: o.DirectoryURL, HTTPClient: o.HTTPClient, UserAgent: "autodiscover-proxy"},
	}
	return a
}

// SetHosts replaces the host list, at config reload.
func (a *ACME) SetHosts(hosts []string) {
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		m[strings.ToLower(h)] = true
	}
	a.hosts.Store(&m)
}

// policy allows exactly the configured hosts: a handshake for any other
// SNI fails here, before the CA is contacted.
// autocert's http-01 handler passes the Host header, which may carry a
// port ("autoconfig.example.com:80" is legal), so a port is dropped first.
func (a *ACME) policy(_ context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if (*a.hosts.Load())[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return nil
	}
	a.noOrder(host)
	return fmt.Errorf("acme: host %q is not configured", host)
}

// noOrder tells a shared store that this replica will not order host's
// certificates after all (it holds their order locks from its misses).
func (a *ACME) noOrder(host string) {
	if r, ok := a.m.Cache.(interface{ Release(key string) }); ok {
		r.Release(host)
		r.Release(host + "+rsa")
	}
}

func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	ctx := hello.Context()
	if ctx == nil { // a ClientHelloInfo made here (Obtain)
		ctx = context.Background()
	}
	// A configured name not yet served by this replica: its certificate
	// may have to be read from the store, or ordered.
	first := a.policy(ctx, name) == nil && !a.served(name)
	// With a shared store, the first handshake of a name on this replica
	// waits for another replica's order of it outside autocert's locks
	// (autocert reads its cache under a lock that every handshake takes).
	if s, ok := a.m.Cache.(interface {
		AwaitOrder(ctx context.Context, key string) error
	}); ok && first {
		ctx, cancel := context.WithTimeout(ctx, orderWait)
		s.AwaitOrder(ctx, name) // on failure, autocert says why below
		cancel()
	}
	// An order follows where no certificate is at hand: only for a name
	// whose DNS points somewhere, past its backoff, at the CA's pace.
	ordering := false
	if first {
		if _, err := a.Cached(ctx, name); err != nil {
			if err := a.onboard.before(ctx, name); err != nil {
				a.noOrder(name)
				return nil, err
			}
			ordering = true
		}
	}
	c, err := a.m.GetCertificate(hello)
	if ordering {
		a.onboard.after(name, err)
	}
	if err != nil {
		a.noOrder(hello.ServerName) // a failed order is no order: another replica may try
		return nil, err
	}
	a.servedOnce.Store(name, true)
	return c, nil
}

// States is every host's certificate state this replica knows.
func (a *ACME) States() []HostState { return a.onboard.snapshot() }

// orderWait bounds a handshake's wait for another replica's order.
const orderWait = 2 * time.Minute

// served reports whether this replica has served name's certificate.
func (a *ACME) served(name string) bool {
	_, ok := a.servedOnce.Load(name)
	return ok
}

// HTTPHandler answers http-01 challenges and passes everything else on.
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler { return a.m.HTTPHandler(fallback) }

// NextProtos is what the TLS config must offer for tls-alpn-01.
func (a *ACME) NextProtos() []string { return []string{acme.ALPNProto} }

func (a *ACME) Trusted() bool { return true }

// Cached reads host's ECDSA certificate from the cache without contacting
// the CA.
func (a *ACME) Cached(ctx context.Context, host string) (*tls.Certificate, error) {
	if err := a.policy(ctx, host); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCertificate, err)
	}
	now := time.Now()
	a.mu.Lock()
	m, ok := a.memo[host]
	a.mu.Unlock()
	if ok && now.Sub(m.read) < memoTTL {
		return covering(m.cert, host, now)
	}
	data, err := a.m.Cache.Get(ctx, host)
	if errors.Is(err, autocert.ErrCacheMiss) {
		return nil, fmt.Errorf("%w for %s yet", ErrNoCertificate, host)
	}
	if err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	c, err := tls.X509KeyPair(data, data) // autocert stores key and chain in one PEM file
	if err != nil {
		return nil, fmt.Errorf("acme cache entry for %s: %w", host, err)
	}
	a.mu.Lock()
	if a.memo == nil {
		a.memo = map[string]memoCert{}
	}
	a.memo[host] = memoCert{&c, now}
	a.mu.Unlock()
	c2, err := covering(&c, host, now)
	if err == nil {
		a.onboard.set(host, StateIssued, "", time.Time{}, 0)
	}
	return c2, err
}

// MaxObtain bounds how many missing certificates Obtain asks for at once:
// the CA's rate limits (Let's Encrypt: 300 new orders per account per 3
// hours) must not be spent at one start. The rest come at first use.
const MaxObtain = 100

// Obtain asks for the missing certificates of hosts, at most MaxObtain, so
// problems (DNS, port 80, rate limits) show in the log at start instead of
// at a client's first handshake. It returns the error per host, and how
// many missing hosts it left for later.
func (a *ACME) Obtain(ctx context.Context, hosts []string) (errs map[string]error, deferred int) {
	errs = map[string]error{}
	asked := 0
	for _, h := range hosts {
		if ctx.Err() != nil {
			errs[h] = ctx.Err()
			continue
		}
		if _, err := a.Cached(ctx, h); err == nil {
			continue
		}
		if asked == MaxObtain {
			deferred++
			continue
		}
		asked++
		// A ClientHello that offers ECDSA, as modern clients' do. autocert
		// bounds issuance with its own 5-minute deadline.
		hello := &tls.ClientHelloInfo{
			ServerName:   h,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		}
		if _, err := a.GetCertificate(hello); err != nil {
			errs[h] = err
		}
	}
	return errs, deferred
}
