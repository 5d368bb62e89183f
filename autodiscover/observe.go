package autodiscover

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// report is what a handler says about the request it answered; observe
// logs and counts it. The handler states only these fields; the request
// line adds the method, host, path and User-Agent, and never a query (it
// can hold an address) or a credential header (Authorization, cookies).
type report struct {
	dialect     Dialect
	outcome     Outcome
	domain      string // the configured domain answered for
	asked       string // the domain asked for, logged on unknown_domain
	address     string // the address asked about, logged hashed by default
	upstream    upstreamResult
	upstreamErr string // why the upstream's answer was not used
	status      int
}

// unknownDomain records a request for a domain this service does not serve.
func (r *report) unknownDomain(asked string) {
	r.outcome, r.asked = OutcomeUnknownDomain, asked
}

// reportKey is the context key of the request's report.
type reportKey struct{}

// reportOf returns the request's report, which travels in the request's
// context (so that no wrapper of the ResponseWriter can lose it); a
// throwaway one when the handler was called without observe.
func reportOf(r *http.Request) *report {
	if rec, ok := r.Context().Value(reportKey{}).(*report); ok {
		return rec
	}
	return &report{}
}

// statusWriter notes the status written into the report.
type statusWriter struct {
	http.ResponseWriter
	rec *report
}

func (w *statusWriter) WriteHeader(code int) {
	if w.rec.status == 0 {
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs one line per request and counts it.
//
// It also closes the connection after a request framed with
// Transfer-Encoding on HTTP/1.x: net/http reads such a body as chunked
// even when Content-Length says otherwise, and a front end that framed it
// by Content-Length would read the rest as another request (request
// smuggling); RFC 9112 §6.1 asks the server to close the connection after
// answering. No autodiscover client sends a chunked body.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		defer s.Metrics.begin()()
		start := time.Now()
		rec := &report{}
		next.ServeHTTP(&statusWriter{ResponseWriter: w, rec: rec}, r.WithContext(context.WithValue(r.Context(), reportKey{}, rec)))
		d := time.Since(start)
		s.Metrics.observe(rec, d)
		s.logRequest(r, rec, d)
	})
}

// Bounds on what a request line quotes from the request.
const (
	maxLoggedPath      = 200
	maxLoggedUserAgent = 200
	maxLoggedHost      = 255 // a DNS name and a port
)

// logRequest writes the request line.
func (s *Server) logRequest(r *http.Request, rec *report, d time.Duration) {
	ctx := r.Context()
	if !s.Log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	cfg := s.site.Load().cfg
	plain := cfg.Log.Addresses
	attrs := []slog.Attr{
		slog.String("dialect", string(rec.dialect)),
		slog.String("outcome", string(rec.outcome)),
		slog.String("domain", rec.domain),
		slog.Int("status", rec.status),
		slog.Duration("duration", d),
		slog.String("client", clientIP(r, cfg.TrustedProxies)),
		slog.String("method", logText(r.Method, 16)),
		slog.String("host", logText(r.Host, maxLoggedHost)),
		slog.String("path", logText(s.loggedPath(r.URL.Path, plain), maxLoggedPath)),
		slog.String("user_agent", logText(r.UserAgent(), maxLoggedUserAgent)),
	}
	if rec.outcome == OutcomeUnknownDomain && rec.asked != "" {
		attrs = append(attrs, slog.String("asked_domain", askedDomain(rec.asked)))
	}
	if rec.upstream != "" {
		attrs = append(attrs, slog.String("upstream", string(rec.upstream)))
	}
	if rec.upstreamErr != "" {
		attrs = append(attrs, slog.String("upstream_error", logText(rec.upstreamErr, maxLoggedPath)))
	}
	if rec.address != "" {
		a := rec.address
		if !plain {
			a = s.hashAddress(a)
		}
		attrs = append(attrs, slog.String("address", a))
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// loggedPath is the path with every segment that holds an address
// (/mobileconfig/<addr>.mobileconfig, /autodiscover/autodiscover.json/v1.0/<addr>)
// hashed like the address field, unless log.addresses is plain.
func (s *Server) loggedPath(p string, plain bool) string {
	if plain || !strings.Contains(p, "@") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.Contains(seg, "@") {
			segs[i] = s.hashAddress(seg)
		}
	}
	return strings.Join(segs, "/")
}

// askedDomain is the domain a request asked for, as an A-label when it is
// a valid name (the form to put in the config), else as sent.
func askedDomain(d string) string {
	if n, err := config.NormalizeDomain(d); err == nil {
		return n
	}
	return logText(d, maxLoggedHost)
}

// logText is s cut to at most max bytes, with control and invisible
// formatting characters dropped (and invalid UTF-8, such as a rune the cut
// split), so that what a client sends cannot forge or hide log lines.
func logText(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// hashAddress is a keyed hash of an address: the same address gives the
// same value while the key stays (to follow one user's retries), and the
// log does not reveal who asked. The key is log.address_key_file's, shared
// by replicas, or one random per process.
func (s *Server) hashAddress(addr string) string {
	key := s.site.Load().cfg.Log.AddressKey
	if key == nil {
		key = s.addressKey
	}
	return HashAddress(key, addr)
}

// HashAddress is the value the logs carry for addr under key
// (`autodiscover-proxy hash-address` prints it for an operator).
func HashAddress(key []byte, addr string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(strings.ToLower(addr)))
	return "h:" + hex.EncodeToString(mac.Sum(nil)[:8])
}
