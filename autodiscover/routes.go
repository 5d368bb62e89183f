package autodiscover

import (
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// HTTPSHandler is every URL answered over HTTPS.
func (s *Server) HTTPSHandler() http.Handler { return s.observe(caseless(s.httpsRoutes())) }

// httpsRoutes is the routing table over HTTPS: each route names the
// clients that call it.
func (s *Server) httpsRoutes() *mux.Router {
	r := newRouter()
	// POX Autodiscover ([MS-OXDSCLI]; [MS-ASCMD] mobilesync): Outlook desktop,
	// Thunderbird's Exchange lookup, exchangelib (which spells
	// /Autodiscover/Autodiscover.xml), DavMail, ActiveSync phones.
	r.Path("/autodiscover/autodiscover.xml").Methods(http.MethodPost).HandlerFunc(s.pox)
	// GET from some mobile clients: an error document, never a prompt.
	r.Path("/autodiscover/autodiscover.xml").Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.poxGet)
	// SOAP Autodiscover ([MS-OXWSADISC]): EWS Managed API clients, Outlook for Mac.
	r.Path("/autodiscover/autodiscover.svc").Methods(http.MethodPost).HandlerFunc(s.soap)
	// Autodiscover v2 (JSON): Outlook mobile, Outlook 2019 (Protocol=Autodiscoverv1).
	r.Path("/autodiscover/autodiscover.json").Methods(http.MethodGet).HandlerFunc(s.v2)
	r.PathPrefix(v2PathPrefix).Methods(http.MethodGet).HandlerFunc(s.v2)
	// Mozilla autoconfig: Thunderbird, Horde, Android clients (/v1.1/).
	for _, p := range autoconfigPaths {
		r.Path(p).Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.autoconfig)
	}
	// Apple configuration profiles: iPhone, iPad, Mac users (from the setup page).
	// Pages and profiles cost more than an API answer: limited per client.
	r.Path("/mobileconfig").Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.limitPages(DialectApple, s.mobileconfig))
	r.PathPrefix(mobileconfigPrefix).Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.limitPages(DialectApple, s.mobileconfig))
	// The setup page for people, on the autodiscover and autoconfig hosts.
	r.Path("/").Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.limitPages(DialectSetup, s.setup))
	r.Path("/setup").Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.limitPages(DialectSetup, s.setup))
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return r
}

// HTTPHandler is every URL answered over plain HTTP: autoconfig (Horde and
// Thunderbird fetch http:// too), Outlook's HTTP-redirect step for POX
// ([MS-OXDISCO] 3.1.5.3), and a redirect to HTTPS for everything else.
//
// Behind a TLS-terminating proxy (a Kubernetes ingress), requests from a
// trusted proxy that carry X-Forwarded-Proto: https get the HTTPS routes.
func (s *Server) HTTPHandler() http.Handler {
	plain, viaTLS := s.observe(caseless(s.httpRoutes())), s.HTTPSHandler()
	untrusted := s.observe(http.HandlerFunc(s.untrustedProxy))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("X-Forwarded-Proto") != "https":
			plain.ServeHTTP(w, r)
		case fromTrustedProxy(r, s.site.Load().cfg.TrustedProxies):
			viaTLS.ServeHTTP(w, r)
		default:
			untrusted.ServeHTTP(w, r)
		}
	})
}

// untrustedProxy answers a plain-HTTP request that says it reached a proxy
// over https, from a peer not in trusted_proxies: redirecting it to https
// would send it round the proxy again, for ever. The log says so once per
// peer.
func (s *Server) untrustedProxy(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect, rec.outcome = DialectHTTP, OutcomeUntrustedProxy
	peer := parseAddr(r.RemoteAddr)
	if s.untrustedPeers.firstTime(peer) {
		s.Log.Warn("a request says X-Forwarded-Proto: https, but its peer is not in trusted_proxies: add the proxy's address or range there",
			"peer", peer.String(), "trusted_proxies", s.site.Load().cfg.TrustedProxies)
	}
	http.Error(w, "This request came through a proxy that autodiscover-proxy does not trust (X-Forwarded-Proto from an address outside trusted_proxies).", http.StatusBadRequest)
}

// httpRoutes is the routing table over plain HTTP.
func (s *Server) httpRoutes() *mux.Router {
	r := newRouter()
	// Outlook, exchangelib: unauthenticated GET, answered 302 to https.
	r.Path("/autodiscover/autodiscover.xml").Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.poxRedirect)
	for _, p := range autoconfigPaths {
		r.Path(p).Methods(http.MethodGet, http.MethodHead).HandlerFunc(s.autoconfig)
	}
	r.NotFoundHandler = http.HandlerFunc(s.toHTTPS)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.toHTTPS)
	return r
}

// newRouter is a router that never cleans paths: mux would answer a path
// such as //x or /a/../b with a 301 to a URL built from the request line,
// whose host the client chooses (GET https://evil.test//x HTTP/1.1). Such
// a path matches no route instead.
func newRouter() *mux.Router { return mux.NewRouter().SkipClean(true) }

// caseless lets every route match case-insensitively: [MS-OXDISCO] 2.2's
// ABNF makes the path strings case-insensitive, and clients spell them both
// ways. The path is lower-cased before routing, but for a last segment that
// holds an address (/mobileconfig/<addr>.mobileconfig,
// /autodiscover/autodiscover.json/v1.0/<addr>), which keeps its case.
func caseless(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := routingPath(r.URL.Path); p != r.URL.Path {
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r = r.WithContext(r.Context()) // a shallow copy: the caller's request stays as it was
			r.URL = &u
		}
		next.ServeHTTP(w, r)
	})
}

// routingPath is p as routes match it (caseless).
func routingPath(p string) string {
	dir, last := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, last = p[:i+1], p[i+1:]
	}
	if strings.Contains(last, "@") {
		return strings.ToLower(dir) + last
	}
	return strings.ToLower(p)
}

// poxRedirect is the HTTP-redirect method: 302 to the https URL.
func (s *Server) poxRedirect(w http.ResponseWriter, r *http.Request) {
	s.redirectOwnHost(w, r, DialectPOX, "/autodiscover/autodiscover.xml", http.StatusFound)
}

// toHTTPS sends any other plain-HTTP request for one of our hosts to the
// same path over HTTPS: 301 for GET/HEAD, 308 (method kept) otherwise.
func (s *Server) toHTTPS(w http.ResponseWriter, r *http.Request) {
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect
	}
	s.redirectOwnHost(w, r, DialectHTTP, r.URL.EscapedPath(), code)
}

// redirectOwnHost redirects to https://<the request's host>path, only for
// our own host names: no open redirect. The host is the request's
// (net/http takes it from an absolute-form request line over the Host
// header), and it must be one of the configured domains' names.
func (s *Server) redirectOwnHost(w http.ResponseWriter, r *http.Request, dialect Dialect, path string, code int) {
	rec := reportOf(r)
	rec.dialect = dialect
	a := s.site.Load().hostDomain(r.Host)
	if a == nil {
		rec.unknownDomain(hostName(r.Host))
		http.NotFound(w, r)
		return
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // CONNECT and OPTIONS * have no path
	}
	rec.domain, rec.outcome = a.domain.Name, OutcomeRedirect
	http.Redirect(w, r, s.httpsURL(r.Host, path), code)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	reportOf(r).outcome = OutcomeNotFound
	http.NotFound(w, r)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	reportOf(r).outcome = OutcomeMethodNotAllowed
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// limitPages serves h within the client's limits.pages_per_client_per_minute,
// and at most as many at once as half the CPUs, so that a flood of pages
// from many clients leaves the other answers CPU; past the client's limit,
// a page that says to wait, with Retry-After.
func (s *Server) limitPages(d Dialect, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg := s.site.Load().cfg
		if s.pageLimits.allow(clientKey(r, cfg), cfg.Limits.PagesPerClientPerMinute, s.Now()) {
			select {
			case s.pageSlots <- struct{}{}:
				defer func() { <-s.pageSlots }()
			case <-r.Context().Done():
				return
			}
			h(w, r)
			return
		}
		rec := reportOf(r)
		rec.dialect, rec.outcome = d, OutcomeRateLimited
		l := pageLanguage(r)
		h := w.Header()
		h.Set("Retry-After", "60")
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Language", l.Code)
		h.Set("Vary", "Accept-Language")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTooManyRequests)
		org := ""
		if a := s.site.Load().hostDomain(r.Host); a != nil {
			org = a.domain.DisplayName
		}
		io.WriteString(w, tooManyPage(l, org))
	}
}

// tooManyPage is the answer past the page limit: for a person, in words,
// in their language, under the organisation's name (when the host names
// it).
func tooManyPage(l *catalogue, org string) string {
	title := html.EscapeString(l.T("wait_title"))
	if org != "" {
		org = "<p><strong>" + html.EscapeString(org) + "</strong></p>\n"
	}
	return `<!DOCTYPE html>
<html lang="` + l.Code + `"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>` + title + `</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5">
` + org + `<h1>` + title + `</h1>
<p>` + html.EscapeString(l.T("wait_text")) + `</p>
</body></html>
`
}
