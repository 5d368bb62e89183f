package autodiscover

import (
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"
)

// HTTPSHandler is every URL answered over HTTPS. This is the routing table:
// each route names the clients that call it.
func (s *Server) HTTPSHandler() http.Handler {
	r := mux.NewRouter()
	// POX Autodiscover (MS-OXDSCLI; MS-ASCMD mobilesync): Outlook desktop,
	// Thunderbird's Exchange lookup, exchangelib (which spells
	// /Autodiscover/Autodiscover.xml), DavMail, ActiveSync phones.
	route(r, exactFold("/autodiscover/autodiscover.xml"), s.pox, http.MethodPost)
	// GET from some mobile clients: an error document, never a prompt.
	route(r, exactFold("/autodiscover/autodiscover.xml"), s.poxGet, http.MethodGet, http.MethodHead)
	// SOAP Autodiscover ([MS-OXWSADISC]): EWS Managed API clients, Outlook for Mac.
	route(r, exactFold("/autodiscover/autodiscover.svc"), s.soap, http.MethodPost)
	// Autodiscover v2 (JSON): Outlook mobile, Outlook 2019 (Protocol=Autodiscoverv1).
	route(r, exactFold("/autodiscover/autodiscover.json"), s.v2, http.MethodGet)
	route(r, prefixFold(v2PathPrefix), s.v2, http.MethodGet)
	// Thunderbird autoconfig; Horde; Android clients (/v1.1/).
	for _, p := range autoconfigPaths {
		route(r, exactFold(p), s.autoconfig, http.MethodGet, http.MethodHead)
	}
	// Apple configuration profiles: iPhone, iPad, Mac users (from the setup page).
	route(r, exactFold("/mobileconfig"), s.mobileconfig, http.MethodGet, http.MethodHead)
	route(r, prefixFold(mobileconfigPrefix), s.mobileconfig, http.MethodGet, http.MethodHead)
	// The setup page for people, on the autodiscover and autoconfig hosts.
	route(r, exactFold("/"), s.setup, http.MethodGet, http.MethodHead)
	route(r, exactFold("/setup"), s.setup, http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return s.observe(dispatch(r))
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

func (s *Server) httpRoutes() http.Handler {
	r := mux.NewRouter()
	// Outlook, exchangelib: unauthenticated GET, answered 302 to https.
	route(r, exactFold("/autodiscover/autodiscover.xml"), s.poxRedirect, http.MethodGet, http.MethodHead)
	for _, p := range autoconfigPaths {
		route(r, exactFold(p), s.autoconfig, http.MethodGet, http.MethodHead)
	}
	r.NotFoundHandler = http.HandlerFunc(s.toHTTPS)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.toHTTPS)
	return s.observe(dispatch(r))
}

// dispatch serves a request with the handler r matches. mux.Router's own
// ServeHTTP copies the request twice per request to put route variables in
// its context (4 allocations, issue 7); our routes have no variables, so a
// clean path goes straight to the matched handler (the NotFound and
// MethodNotAllowed handlers included). Anything else, such as a path that
// needs cleaning, goes through r.ServeHTTP, which redirects it.
func dispatch(r *mux.Router) http.Handler {
	r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		_, errPath := route.GetPathTemplate()
		_, errHost := route.GetHostTemplate()
		if errPath == nil || errHost == nil {
			panic("dispatch: a route with a template needs mux's ServeHTTP for its variables")
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.Path
		// Vars set: mux makes an empty map per match otherwise; with no
		// templates nothing writes to it.
		m := mux.RouteMatch{Vars: noVars}
		if p != "" && p[0] == '/' && path.Clean(p) == p && r.Match(req, &m) && m.Handler != nil {
			m.Handler.ServeHTTP(w, req)
			return
		}
		r.ServeHTTP(w, req)
	})
}

var noVars = map[string]string{}

func route(r *mux.Router, m mux.MatcherFunc, h http.HandlerFunc, methods ...string) {
	r.MatcherFunc(m).Methods(methods...).HandlerFunc(h)
}

// exactFold matches a path case-insensitively: MS-OXDISCO's ABNF says the
// strings are case-insensitive, and clients spell them both ways.
func exactFold(path string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		return strings.EqualFold(r.URL.Path, path)
	}
}

func prefixFold(prefix string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		p := r.URL.Path
		return len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix)
	}
}

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
