package autodiscover

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// record is what a handler says about the request it answered; observe
// logs and counts it. Only these fields are logged: never the path or
// query (they can hold an address), never a header (Authorization, cookies).
type record struct {
	dialect  string
	domain   string
	outcome  string
	address  string // the address asked about, logged hashed by default
	upstream string // what the upstream proxy did, when a domain has one
	status   int
}

// recordOf returns the request's record, which travels with the
// ResponseWriter (no new context per request); a throwaway one when the
// handler was called without observe.
func recordOf(w http.ResponseWriter) *record {
	if sw, ok := w.(*statusWriter); ok {
		return &sw.rec
	}
	return &record{}
}

type statusWriter struct {
	http.ResponseWriter
	rec record
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

// observe logs one line per request and counts it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		rec := &sw.rec
		d := time.Since(start)
		s.Metrics.observe(rec, d)
		cfg := s.site.Load().cfg
		attrs := []slog.Attr{
			slog.String("dialect", rec.dialect),
			slog.String("domain", rec.domain),
			slog.String("outcome", rec.outcome),
			slog.Int("status", rec.status),
			slog.Duration("duration", d),
			slog.String("client", clientIP(r, cfg.TrustedProxies).String()),
		}
		if rec.upstream != "" {
			attrs = append(attrs, slog.String("upstream", rec.upstream))
		}
		if rec.address != "" {
			a := rec.address
			if !cfg.Log.Addresses {
				a = s.hashAddress(a)
			}
			attrs = append(attrs, slog.String("address", a))
		}
		s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// hashAddress is a keyed hash of an address: the same address gives the
// same value while the process runs (to follow one user's retries), and
// the log does not reveal who asked.
func (s *Server) hashAddress(addr string) string {
	m, _ := s.hashers.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.addressKey)
	}
	defer s.hashers.Put(m)
	m.Reset()
	var lower [maxLoggedAddress]byte
	n := copy(lower[:], addr)
	for i, c := range lower[:n] {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	m.Write(lower[:n])
	var sum [sha256.Size]byte
	out := [2 + 16]byte{'h', ':'}
	hex.Encode(out[2:], m.Sum(sum[:0])[:8])
	return string(out[:])
}

// maxLoggedAddress covers every address ParseAddress accepts.
const maxLoggedAddress = 320

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	xff := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(xff) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(xff[i]))
		if !a.IsValid() {
			break // garbage: stop believing the header here
		}
		peer = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return peer
}

// fromTrustedProxy reports whether the peer is a trusted proxy.
func fromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	return isTrusted(parseAddr(r.RemoteAddr), trusted)
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads "ip", "ip:port" or "[ip]:port".
func parseAddr(s string) netip.Addr {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
