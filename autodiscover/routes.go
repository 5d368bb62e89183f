package autodiscover

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gorilla/mux"
)

// HTTPSHandler is every URL answered over HTTPS.
func (s *Server) HTTPSHandler() http.Handler { return s.observe(s.table().dispatch()) }

// table is the routing table over HTTPS: each route names the clients
// that call it.
func (s *Server) table() *table {
	r := newTable()
	// POX Autodiscover (MS-OXDSCLI; MS-ASCMD mobilesync): Outlook desktop,
	// Thunderbird's Exchange lookup, exchangelib (which spells
	// /Autodiscover/Autodiscover.xml), DavMail, ActiveSync phones.
	r.exact("/autodiscover/autodiscover.xml", s.pox, http.MethodPost)
	// GET from some mobile clients: an error document, never a prompt.
	r.exact("/autodiscover/autodiscover.xml", s.poxGet, http.MethodGet, http.MethodHead)
	// SOAP Autodiscover ([MS-OXWSADISC]): EWS Managed API clients, Outlook for Mac.
	r.exact("/autodiscover/autodiscover.svc", s.soap, http.MethodPost)
	// Autodiscover v2 (JSON): Outlook mobile, Outlook 2019 (Protocol=Autodiscoverv1).
	r.exact("/autodiscover/autodiscover.json", s.v2, http.MethodGet)
	r.prefix(v2PathPrefix, s.v2, http.MethodGet)
	// Thunderbird autoconfig; Horde; Android clients (/v1.1/).
	for _, p := range autoconfigPaths {
		r.exact(p, s.autoconfig, http.MethodGet, http.MethodHead)
	}
	// Apple configuration profiles: iPhone, iPad, Mac users (from the setup page).
	r.exact("/mobileconfig", s.mobileconfig, http.MethodGet, http.MethodHead)
	r.prefix(mobileconfigPrefix, s.mobileconfig, http.MethodGet, http.MethodHead)
	// The setup page for people, on the autodiscover and autoconfig hosts.
	r.exact("/", s.setup, http.MethodGet, http.MethodHead)
	r.exact("/setup", s.setup, http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return r
}

// HTTPHandler is every URL answered over plain HTTP: autoconfig (Horde and
// Thunderbird fetch http:// too), Outlook's HTTP-redirect step for POX
// (MS-OXDISCO 3.1.5.3), and a redirect to HTTPS for everything else.
//
// Behind a TLS-terminating proxy (a Kubernetes ingress), requests from a
// trusted proxy that carry X-Forwarded-Proto: https get the HTTPS routes.
func (s *Server) HTTPHandler() http.Handler {
	plain, viaTLS := s.httpRoutes(), s.HTTPSHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Proto") == "https" && fromTrustedProxy(r, s.site.Load().cfg.TrustedProxies) {
			viaTLS.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

func (s *Server) httpRoutes() http.Handler { return s.observe(s.httpTable().dispatch()) }

// httpTable is the routing table over plain HTTP.
func (s *Server) httpTable() *table {
	r := newTable()
	// Outlook, exchangelib: unauthenticated GET, answered 302 to https.
	r.exact("/autodiscover/autodiscover.xml", s.poxRedirect, http.MethodGet, http.MethodHead)
	for _, p := range autoconfigPaths {
		r.exact(p, s.autoconfig, http.MethodGet, http.MethodHead)
	}
	r.NotFoundHandler = http.HandlerFunc(s.toHTTPS)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.toHTTPS)
	return r
}

// table is a routing table: gorilla/mux matches the routes in order, and
// the exact paths are indexed too, lower-cased, by method: an indexed
// request skips mux's walk over every route before it (issue 7). newTable's
// caller adds routes, then serves them with dispatch.
type table struct {
	*mux.Router
	index map[string]map[string]indexed // lower-case path -> method -> route
}

type indexed struct {
	route *mux.Route
	h     http.Handler
}

func newTable() *table {
	return &table{Router: mux.NewRouter(), index: map[string]map[string]indexed{}}
}

// exact routes a path matched case-insensitively: MS-OXDISCO's ABNF says
// the strings are case-insensitive, and clients spell them both ways.
func (t *table) exact(p string, h http.HandlerFunc, methods ...string) {
	rt := t.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		return strings.EqualFold(r.URL.Path, p)
	}).Methods(methods...).Handler(h)
	lp := strings.ToLower(p)
	if t.index[lp] == nil {
		t.index[lp] = map[string]indexed{}
	}
	for _, m := range methods {
		if _, ok := t.index[lp][m]; !ok { // mux takes the first route that matches
			t.index[lp][m] = indexed{rt, h}
		}
	}
}

// prefix routes the paths longer than prefix that start with it, in any case.
func (t *table) prefix(prefix string, h http.HandlerFunc, methods ...string) {
	t.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		p := r.URL.Path
		return len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix)
	}).Methods(methods...).Handler(h)
}

// dispatch serves a request with the handler the table matches. mux's own
// ServeHTTP copies the request twice per request to put route variables in
// its context (4 allocations, issue 7); our routes have no variables, so a
// clean path goes straight to the matched handler (the NotFound and
// MethodNotAllowed handlers included): from the index when it has the path
// and method, else from mux's Match. Anything else, such as a path that
// needs cleaning, goes through mux's ServeHTTP, which redirects it.
func (t *table) dispatch() http.Handler {
	t.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		_, errPath := route.GetPathTemplate()
		_, errHost := route.GetHostTemplate()
		if errPath == nil || errHost == nil {
			panic("dispatch: a route with a template needs mux's ServeHTTP for its variables")
		}
		return nil
	})
	// The index must answer as mux does: no earlier route may take an
	// indexed path (a prefix route, say).
	for p, byMethod := range t.index {
		for method, e := range byMethod {
			var m mux.RouteMatch
			if !t.Match(&http.Request{Method: method, URL: &url.URL{Path: p}}, &m) || m.Route != e.route {
				panic("dispatch: mux routes " + method + " " + p + " elsewhere than the index")
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if e := t.lookup(req); e.h != nil {
			e.h.ServeHTTP(w, req)
			return
		}
		p := req.URL.Path
		// Vars set: mux makes an empty map per match otherwise; with no
		// templates nothing writes to it.
		m := mux.RouteMatch{Vars: noVars}
		if p != "" && p[0] == '/' && path.Clean(p) == p && t.Match(req, &m) && m.Handler != nil {
			m.Handler.ServeHTTP(w, req)
			return
		}
		t.ServeHTTP(w, req)
	})
}

// lookup is req's indexed route, or none (a nil h). An indexed path is clean.
func (t *table) lookup(req *http.Request) indexed {
	p := req.URL.Path
	var buf [64]byte
	if len(p) > len(buf) {
		return indexed{}
	}
	return t.index[string(lowerASCII(buf[:], p))][req.Method]
}

var noVars = map[string]string{}

// poxRedirect is the HTTP-redirect method: 302 to the https URL.
func (s *Server) poxRedirect(w http.ResponseWriter, r *http.Request) {
	s.redirectOwnHost(w, r, "pox", "/autodiscover/autodiscover.xml", http.StatusFound)
}

// toHTTPS sends any other plain-HTTP request for one of our hosts to the
// same path over HTTPS: 301 for GET/HEAD, 308 (method kept) otherwise.
func (s *Server) toHTTPS(w http.ResponseWriter, r *http.Request) {
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect
	}
	s.redirectOwnHost(w, r, "http", r.URL.EscapedPath(), code)
}

// redirectOwnHost redirects to https://<the request's host>path, only for
// our own host names: no open redirect.
func (s *Server) redirectOwnHost(w http.ResponseWriter, r *http.Request, dialect, path string, code int) {
	rec := recordOf(w)
	rec.dialect = dialect
	a := s.site.Load().hostDomain(r.Host)
	if a == nil {
		rec.outcome = "unknown_domain"
		http.NotFound(w, r)
		return
	}
	rec.domain, rec.outcome = a.domain.Name, "redirect"
	http.Redirect(w, r, s.httpsURL(r.Host, path), code)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	recordOf(w).outcome = "not_found"
	http.NotFound(w, r)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	recordOf(w).outcome = "method_not_allowed"
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}
