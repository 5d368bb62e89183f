package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// lineHandler writes the records a request log is made of (a message and
// flat string, integer and duration attributes, all plain ASCII) the way
// slog's own TextHandler or JSONHandler writes them, byte for byte, in a
// fraction of the time: one line per request is a tenth of a small
// request's cost through slog's general path (bench/, issue 7). Any other
// record, and every handler derived by WithAttrs or WithGroup, goes to
// slog's handler. FuzzLineHandler compares the two.
type lineHandler struct {
	slog.Handler // slog's own, for everything the fast path does not take
	w            io.Writer
	json         bool
}

func newLineHandler(w io.Writer, json bool) *lineHandler {
	h := &lineHandler{w: w, json: json}
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

// appendLine formats r, or reports that it is not a record it takes.
func (h *lineHandler) appendLine(b []byte, r slog.Record) ([]byte, bool) {
	if y := r.Time.Year(); r.Time.IsZero() || y < 0 || y >= 10000 || !plainText(r.Message) {
		return b, false
	}
	if h.json {
		b = append(b, `{"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		b = append(b, r.Level.String()...)
		b = append(b, `","msg":"`...)
		b = append(b, r.Message...)
		b = append(b, '"')
	} else {
		b = append(b, "time="...)
		// slog's TextHandler: RFC 3339 in milliseconds, three digits kept.
		n := len(b)
		b = r.Time.Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
		const millis = len("2006-01-02T15:04:05.000")
		b = append(b[:n+millis], b[n+millis+1:]...)
		b = append(b, " level="...)
		b = append(b, r.Level.String()...)
		b = append(b, " msg="...)
		b = append(b, r.Message...)
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		if !plainText(a.Key) {
			ok = false
			return false
		}
		if h.json {
			b = append(b, ',', '"')
			b = append(b, a.Key...)
			b = append(b, '"', ':')
		} else {
			b = append(b, ' ')
			b = append(b, a.Key...)
			b = append(b, '=')
		}
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			s := v.String()
			if s != "" && !plainText(s) {
				ok = false
				return false
			}
			if h.json || s == "" {
				b = append(b, '"')
				b = append(b, s...)
				b = append(b, '"')
			} else {
				b = append(b, s...)
			}
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindDuration:
			if h.json {
				b = strconv.AppendInt(b, int64(v.Duration()), 10)
			} else {
				b = append(b, v.Duration().String()...)
			}
		default:
			ok = false
			return false
		}
		return true
	})
	if !ok {
		return b, false
	}
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n'), true
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
