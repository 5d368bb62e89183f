// Package autodiscover is the HTTP layer: one routing table (routes.go) and
// one file per client dialect.
package autodiscover

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// Server answers every autoconfiguration dialect for the domains of one
// config. The config can be swapped while serving: each request sees one
// whole config from start to end.
type Server struct {
	site atomic.Pointer[site]

	// Now is the clock (tests fix it). Defaults to time.Now.
	Now func() time.Time
	// Log receives one line per request. Defaults to slog.Default().
	Log *slog.Logger
	// HTTPSPort is the public port of the HTTPS listener, used in redirects
	// from plain HTTP; 443 is left out of URLs.
	HTTPSPort int
	// Metrics counts requests; nil counts nothing.
	Metrics *Metrics
	// Certificates sign Apple profiles; nil or untrusted (development)
	// serves them unsigned.
	Certificates certs.Provider
	// UpstreamClient talks to domains' upstreams (NewUpstreamClient).
	UpstreamClient *http.Client

	cache          byteCache     // upstream answers
	qrCodes        byteCache     // rendered QR codes, by profile URL
	setupPages     byteCache     // setup page skeletons (renderSetup)
	pageSlots      chan struct{} // a token per setup page or profile being made
	answerMemory   *answerBudget // answers being built or written
	relayLimits    relayLimiter
	pageLimits     pageLimiter
	untrustedPeers peerSet // peers warned about (untrustedProxy)
	addressKey     []byte  // for hashAddress
}

// site is one loaded config with its prebuilt answers.
type site struct {
	cfg     *config.Config
	answers map[*config.Domain]*answers
}

// New builds a server for cfg.
func New(cfg *config.Config) (*Server, error) {
	s := &Server{Now: time.Now, Log: slog.Default(), HTTPSPort: 443, addressKey: make([]byte, 32), UpstreamClient: NewUpstreamClient()}
	rand.Read(s.addressKey)
	s.cache.ttl, s.cache.maxSize = upstreamCacheTTL, func() int { return s.site.Load().cfg.Limits.UpstreamCacheBytes }
	s.qrCodes.ttl, s.qrCodes.maxSize = time.Hour, func() int { return qrCacheBytes }
	s.setupPages.ttl, s.setupPages.maxSize = time.Hour, func() int { return skeletonCacheBytes }
	s.pageSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	s.answerMemory = newAnswerBudget(int64(cfg.Limits.AnswerMemoryBytes))
	if err := s.Load(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Load builds every domain's answers and then swaps them in at once. On
// error the config in use stays.
func (s *Server) Load(cfg *config.Config) error {
	st := &site{cfg: cfg, answers: make(map[*config.Domain]*answers, len(cfg.Domains))}
	c := newCompiler()
	for _, d := range cfg.Domains {
		a, err := c.compile(d)
		if err != nil {
			return fmt.Errorf("build answers: %w", err)
		}
		st.answers[d] = a
	}
	s.site.Store(st)
	return nil
}

// Config returns the config being served.
func (s *Server) Config() *config.Config { return s.site.Load().cfg }

// lookup returns the answers for a domain name, or nil when the domain is
// not configured: the service answers for nothing else.
func (st *site) lookup(domain string) *answers {
	d, ok := st.cfg.Lookup(domain)
	if !ok {
		return nil
	}
	return st.answers[d]
}

// hostDomain maps a Host header to a configured domain when the host is
// the domain itself, autodiscover.<domain> or autoconfig.<domain>.
func (st *site) hostDomain(hostport string) *answers {
	host := hostName(hostport)
	if a := st.lookup(host); a != nil {
		return a
	}
	for _, prefix := range []string{"autodiscover.", "autoconfig."} {
		if rest, ok := strings.CutPrefix(host, prefix); ok {
			return st.lookup(rest)
		}
	}
	return nil
}
