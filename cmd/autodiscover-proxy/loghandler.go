package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
)

// lineHandler writes the records a request log is made of (a message and
// flat string, integer and duration attributes, all plain ASCII) the way
// slog's own TextHandler or JSONHandler writes them, byte for byte, in a
// fraction of the time: one line per request is a tenth of a small
// request's cost through slog's general path (bench/, issue 7). Any other
// record, and every handler derived by WithAttrs or WithGroup, goes to
// slog's handler. It takes autodiscover's request line as fields, too
// (HandleRequest). FuzzLineHandler and FuzzRequestLine compare the two.
type lineHandler struct {
	slog.Handler // slog's own, for everything the fast path does not take
	w            io.Writer
	requests     requestLineWriter // w, when it buffers request lines apart (bufferedLog)
	json         bool
}

// requestLineWriter takes request lines, which may be written out of order
// with each other (bufferedLog).
type requestLineWriter interface {
	WriteRequestLine([]byte) error
}

var _ autodiscover.RequestLogger = (*lineHandler)(nil)

func newLineHandler(w io.Writer, json bool) *lineHandler {
	h := &lineHandler{w: w, json: json}
	h.requests, _ = w.(requestLineWriter)
	if json {
		h.Handler = slog.NewJSONHandler(w, nil)
	} else {
		h.Handler = slog.NewTextHandler(w, nil)
	}
	return h
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp)
	b, ok := h.appendLine((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.Handler.Handle(ctx, r)
	}
	// One Write per line: the writer (bufferedLog) keeps lines whole.
	_, err := h.w.Write(b)
	return err
}

// HandleRequest writes the request line as Handle writes its Record,
// without building the record (autodiscover.RequestLogger).
func (h *lineHandler) HandleRequest(ctx context.Context, l autodiscover.RequestLine) error {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp)
	b, ok := h.appendRequest((*bp)[:0], &l)
	*bp = b
	if !ok {
		return h.Handle(ctx, l.Record())
	}
	if h.requests != nil {
		return h.requests.WriteRequestLine(b)
	}
	_, err := h.w.Write(b)
	return err
}

// appendRequest formats l as appendLine formats l.Record(), or reports
// that the line needs slog's handler.
func (h *lineHandler) appendRequest(b []byte, l *autodiscover.RequestLine) ([]byte, bool) {
	b, ok := h.appendHead(b, l.Time, slog.LevelInfo, "request")
	if !ok {
		return b, false
	}
	for _, kv := range [...]struct{ k, v string }{{"dialect", l.Dialect}, {"domain", l.Domain}, {"outcome", l.Outcome}} {
		if b, ok = h.appendString(h.appendKey(b, kv.k), kv.v); !ok {
			return b, false
		}
	}
	b = strconv.AppendInt(h.appendKey(b, "status"), int64(l.Status), 10)
	b = h.appendDuration(h.appendKey(b, "duration"), l.Duration)
	for _, kv := range [...]struct {
		k, v     string
		optional bool // not logged when empty
	}{{"client", l.Client, false}, {"upstream", l.Upstream, true}, {"address", l.Address, true}} {
		if kv.optional && kv.v == "" {
			continue
		}
		if b, ok = h.appendString(h.appendKey(b, kv.k), kv.v); !ok {
			return b, false
		}
	}
	return h.appendEnd(b), true
}

// appendLine formats r, or reports that it is not a record it takes.
func (h *lineHandler) appendLine(b []byte, r slog.Record) ([]byte, bool) {
	b, ok := h.appendHead(b, r.Time, r.Level, r.Message)
	if !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		if !plainText(a.Key) {
			ok = false
			return false
		}
		b = h.appendKey(b, a.Key)
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b, ok = h.appendString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindDuration:
			b = h.appendDuration(b, v.Duration())
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return b, false
	}
	return h.appendEnd(b), true
}

// appendHead writes time, level and message, or reports that slog would
// write them differently.
func (h *lineHandler) appendHead(b []byte, t time.Time, level slog.Level, msg string) ([]byte, bool) {
	if y := t.Year(); t.IsZero() || y < 0 || y >= 10000 || !plainText(msg) {
		return b, false
	}
	if h.json {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		b = append(b, level.String()...)
		b = append(b, `","msg":"`...)
		b = append(b, msg...)
		return append(b, '"'), true
	}
	b = append(b, "time="...)
	// slog's TextHandler: RFC 3339 in milliseconds, three digits kept.
	n := len(b)
	b = t.Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
	const millis = len("2006-01-02T15:04:05.000")
	b = append(b[:n+millis], b[n+millis+1:]...)
	b = append(b, " level="...)
	b = append(b, level.String()...)
	b = append(b, " msg="...)
	return append(b, msg...), true
}

// appendKey writes an attribute's key (plain text) and what follows it.
func (h *lineHandler) appendKey(b []byte, key string) []byte {
	if h.json {
		b = append(b, ',', '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	b = append(b, ' ')
	b = append(b, key...)
	return append(b, '=')
}

// appendString writes a string value, or reports that slog would quote
// or escape it.
func (h *lineHandler) appendString(b []byte, s string) ([]byte, bool) {
	if s != "" && !plainText(s) {
		return b, false
	}
	if h.json || s == "" {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), true
	}
	return append(b, s...), true
}

func (h *lineHandler) appendDuration(b []byte, d time.Duration) []byte {
	if h.json {
		return strconv.AppendInt(b, int64(d), 10)
	}
	return append(b, d.String()...)
}

func (h *lineHandler) appendEnd(b []byte) []byte {
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n')
}

// plainText reports whether s is written as it is, unquoted and unescaped,
// by both of slog's handlers: printable ASCII without space, quote,
// backslash or equals sign.
func plainText(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
			return false
		}
	}
	return true
}
