package autodiscover

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
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

// observe logs one line per request and counts it. It runs on every
// request, so it allocates little (issue 7): the status writer is pooled,
// the line goes to a RequestLogger as fields, the client address is a
// substring of the request when it can be.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		sw.ResponseWriter = w
		defer func() {
			*sw = statusWriter{}
			statusWriters.Put(sw)
		}()
		next.ServeHTTP(sw, r)
		rec := &sw.rec
		d := time.Since(start) // the monotonic clock only: one clock read
		s.Metrics.observe(rec, d)
		ctx := r.Context()
		if !s.Log.Enabled(ctx, slog.LevelInfo) {
			return
		}
		cfg := s.site.Load().cfg
		line := RequestLine{
			Time:     start.Add(d),
			Dialect:  rec.dialect,
			Domain:   rec.domain,
			Outcome:  rec.outcome,
			Status:   rec.status,
			Duration: d,
			Client:   clientIP(r, cfg.TrustedProxies),
			Upstream: rec.upstream,
			Address:  rec.address,
		}
		if line.Address != "" && !cfg.Log.Addresses {
			line.Address = s.hashAddress(line.Address)
		}
		h := s.Log.Handler()
		if rl, ok := h.(RequestLogger); ok {
			rl.HandleRequest(ctx, line)
			return
		}
		h.Handle(ctx, line.Record())
	})
}

// RequestLine is the request log's line about one request.
type RequestLine struct {
	Time     time.Time
	Dialect  string
	Domain   string
	Outcome  string
	Status   int
	Duration time.Duration
	Client   string
	Upstream string // what the upstream proxy did; not logged when empty
	Address  string // hashed unless log.addresses; not logged when empty
}

// Record is the line as a log record: message "request", and the fields
// as attributes in this order.
func (l RequestLine) Record() slog.Record {
	var buf [8]slog.Attr
	attrs := append(buf[:0],
		slog.String("dialect", l.Dialect),
		slog.String("domain", l.Domain),
		slog.String("outcome", l.Outcome),
		slog.Int("status", l.Status),
		slog.Duration("duration", l.Duration),
		slog.String("client", l.Client),
	)
	if l.Upstream != "" {
		attrs = append(attrs, slog.String("upstream", l.Upstream))
	}
	if l.Address != "" {
		attrs = append(attrs, slog.String("address", l.Address))
	}
	// No caller's PC: Logger.LogAttrs would walk the stack for one on every
	// request, and no handler here prints it.
	r := slog.NewRecord(l.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...) // at once: the attributes past the record's first five take one allocation
	return r
}

// RequestLogger is a log handler that writes a request line from its
// fields, exactly as it would write the line's Record: observe uses it
// when the logger's handler is one, and skips building the record (it
// allocates, and the line is written on every request: issue 7).
type RequestLogger interface {
	slog.Handler
	HandleRequest(context.Context, RequestLine) error
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// addressHasher is a keyed hash with its buffers, pooled: hashing an
// address allocates only the text it returns.
type addressHasher struct {
	mac   hash.Hash
	lower [maxLoggedAddress]byte
	sum   [sha256.Size]byte
}

// hashAddress is a keyed hash of an address: the same address gives the
// same value while the process runs (to follow one user's retries), and
// the log does not reveal who asked.
func (s *Server) hashAddress(addr string) string {
	h, _ := s.hashers.Get().(*addressHasher)
	if h == nil {
		h = &addressHasher{mac: hmac.New(sha256.New, s.addressKey)}
	}
	defer s.hashers.Put(h)
	h.mac.Reset()
	h.mac.Write(lowerASCII(h.lower[:], addr))
	out := [2 + 16]byte{'h', ':'}
	hex.Encode(out[2:], h.mac.Sum(h.sum[:0])[:8])
	return string(out[:])
}

// lowerASCII copies s into dst, as much as fits, with A-Z lower-cased;
// other bytes stay as they are.
func lowerASCII(dst []byte, s string) []byte {
	n := copy(dst, s)
	for i, c := range dst[:n] {
		if 'A' <= c && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst[:n]
}

// maxLoggedAddress covers every address ParseAddress accepts.
const maxLoggedAddress = 320

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
// It is written as netip writes addresses; when the request already has it
// in that form, the result is a substring of it (no allocation).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, text := parseAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return addrText(peer, text)
	}
	// The header's values joined by commas are one list, read right to left.
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for {
			j := strings.LastIndexByte(v, ',')
			a, t := parseAddr(strings.TrimSpace(v[j+1:]))
			if !a.IsValid() {
				return addrText(peer, text) // garbage: stop believing the header here
			}
			peer, text = a, t
			if !isTrusted(a, trusted) {
				return addrText(peer, text)
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return addrText(peer, text)
}

// addrText is a's text: text itself when it is already written that way.
func addrText(a netip.Addr, text string) string {
	if !a.IsValid() {
		return "invalid IP"
	}
	var buf [64]byte
	if b := a.AppendTo(buf[:0]); string(b) != text {
		return string(b)
	}
	return text
}

// fromTrustedProxy reports whether the peer is a trusted proxy.
func fromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	a, _ := parseAddr(r.RemoteAddr)
	return isTrusted(a, trusted)
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

// parseAddr reads "ip", "ip:port" or "[ip]:port" (IPv4-mapped IPv6 as
// IPv4); text is the ip part as written. A string with one colon or a
// bracket has a port: parsing it as a plain address first would fail (and
// allocate an error) for every RemoteAddr.
func parseAddr(s string) (a netip.Addr, text string) {
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, ""
		}
		text = s[:strings.LastIndexByte(s, ':')]
		text = strings.TrimSuffix(strings.TrimPrefix(text, "["), "]")
		return ap.Addr().Unmap(), text
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, ""
	}
	return a.Unmap(), s
}
