package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
)

// requestLine is a typical line of autodiscover's request log.
func requestLine(t time.Time, domain, upstream, address string) *autodiscover.RequestLine {
	return &autodiscover.RequestLine{Time: t, Dialect: "pox", Domain: domain, Outcome: "settings", Status: 200,
		Duration: 2846 * time.Nanosecond, Client: "2001:db8::1", Upstream: upstream, Address: address}
}

// slogWrites is r as slog's own handler writes it.
func slogWrites(t *testing.T, json bool, r slog.Record) string {
	t.Helper()
	var b bytes.Buffer
	var sh slog.Handler = slog.NewTextHandler(&b, nil)
	if json {
		sh = slog.NewJSONHandler(&b, nil)
	}
	if err := sh.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// handleBoth writes r with lineHandler and with slog's own handler.
func handleBoth(t *testing.T, json bool, r slog.Record) (fast, std string, tookFast bool) {
	t.Helper()
	var a bytes.Buffer
	h := newLineHandler(&a, json)
	_, tookFast = h.appendLine(nil, r)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return a.String(), slogWrites(t, json, r), tookFast
}

// handleRequest writes l with HandleRequest, and its Record with slog's own
// handler.
func handleRequest(t *testing.T, json bool, l *autodiscover.RequestLine) (fast, std string, tookFast bool) {
	t.Helper()
	var a bytes.Buffer
	h := newLineHandler(&a, json)
	_, tookFast = h.appendRequest(nil, l)
	if err := h.HandleRequest(context.Background(), *l); err != nil {
		t.Fatal(err)
	}
	return a.String(), slogWrites(t, json, l.Record()), tookFast
}

// The request line takes the fast path, from its fields (HandleRequest)
// or as a record (Handle), and reads exactly as slog writes it; a line
// slog would quote still reads as slog writes it.
func TestLineHandlerRequestLine(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 19, 7, 824410771, time.UTC)
	plain := []*autodiscover.RequestLine{
		requestLine(at, "contoso.com", "", "h:0123456789abcdef"),
		requestLine(at, "", "", ""),
		requestLine(at, "contoso.com", "fallback_timeout", "jane@contoso.com"),
	}
	for _, json := range []bool{false, true} {
		for _, l := range plain {
			fast, std, took := handleRequest(t, json, l)
			if !took {
				t.Errorf("json=%v: the request line does not take the fast path", json)
			}
			if fast != std {
				t.Errorf("json=%v:\n got %s want %s", json, fast, std)
			}
			fast, std, took = handleBoth(t, json, l.Record())
			if !took || fast != std {
				t.Errorf("json=%v, as a record (fast path: %v):\n got %s want %s", json, took, fast, std)
			}
		}
		quoted := requestLine(at, "contoso.com", "", `"jane doe"@contoso.com`)
		if fast, std, took := handleRequest(t, json, quoted); took || fast != std {
			t.Errorf("json=%v, quoted address (fast path: %v):\n got %s want %s", json, took, fast, std)
		}
	}
	// A derived handler is slog's own, and still writes correctly.
	var buf bytes.Buffer
	slog.New(newLineHandler(&buf, true)).With("listener", "https").Info("started", "n", 1)
	if want := `"listener":"https","n":1}`; !bytes.Contains(buf.Bytes(), []byte(want)) {
		t.Errorf("derived handler wrote %s", buf.String())
	}
}

// FuzzRequestLine: for any request line, HandleRequest writes what slog
// writes for its Record, byte for byte.
func FuzzRequestLine(f *testing.F) {
	f.Add("pox", "contoso.com", "settings", 200, int64(2846), "192.0.2.1", "", "h:0123456789abcdef", int64(1795342747824410771), false)
	f.Add("", "", "", 0, int64(0), "", "ok", "", int64(0), true)
	f.Add("a b", "k=v", "x\"y", -1, int64(3600e9), "ünï", "\n", "a\\b", int64(-1<<62), false)
	f.Fuzz(func(t *testing.T, dialect, domain, outcome string, status int, d int64, client, upstream, address string, unixNano int64, json bool) {
		l := &autodiscover.RequestLine{Time: time.Unix(0, unixNano).UTC(), Dialect: dialect, Domain: domain, Outcome: outcome,
			Status: status, Duration: time.Duration(d), Client: client, Upstream: upstream, Address: address}
		if fast, std, _ := handleRequest(t, json, l); fast != std {
			t.Errorf("json=%v:\n got %q\nwant %q", json, fast, std)
		}
	})
}

// FuzzLineHandler: for any record, the output is slog's, byte for byte.
func FuzzLineHandler(f *testing.F) {
	f.Add("request", "dialect", "pox", int64(200), int64(2846), int64(1795342747824410771), false)
	f.Add("request", "domain", "", int64(-1), int64(0), int64(0), true)
	f.Add("a b", "k=v", "x\"y", int64(0), int64(1), int64(1), false)
	f.Add("m", "k", "ünï", int64(0), int64(3600e9), int64(-1<<62), true)
	f.Fuzz(func(t *testing.T, msg, key, val string, n, d, unixNano int64, json bool) {
		r := slog.NewRecord(time.Unix(0, unixNano).UTC(), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int64("n", n), slog.Duration("d", time.Duration(d)), slog.String("s", val))
		if fast, std, _ := handleBoth(t, json, r); fast != std {
			t.Errorf("json=%v:\n got %q\nwant %q", json, fast, std)
		}
	})
}

// Over serve's buffered log, request lines go to the per-CPU buffers and
// every other line is written at once, after them.
func TestLineHandlerBufferedLog(t *testing.T) {
	var out syncBuffer
	b := newBufferedLog(&out)
	defer b.Close(context.Background())
	h := newLineHandler(b, true)
	l := requestLine(time.Date(2026, 11, 22, 10, 19, 7, 0, time.UTC), "contoso.com", "", "h:0123456789abcdef")
	h.HandleRequest(context.Background(), *l)
	if got := out.String(); got != "" {
		t.Fatalf("request line written at once: %s", got)
	}
	slog.New(h).Info("reloaded")
	want := slogWrites(t, true, l.Record())
	if got := out.String(); !strings.HasPrefix(got, want) || !strings.Contains(got[len(want):], `"msg":"reloaded"`) {
		t.Errorf("got %s\nwant the request line, then \"reloaded\"", got)
	}
}
