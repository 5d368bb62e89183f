package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// requestRecord is the shape of autodiscover's request line.
func requestRecord(t time.Time, domain, address string) slog.Record {
	r := slog.NewRecord(t, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("dialect", "pox"), slog.String("domain", domain), slog.String("outcome", "settings"),
		slog.Int("status", 200), slog.Duration("duration", 2846*time.Nanosecond), slog.String("client", "2001:db8::1"),
		slog.String("address", address))
	return r
}

// handleBoth writes r with lineHandler and with slog's own handler.
func handleBoth(t *testing.T, json bool, r slog.Record) (fast, std string, tookFast bool) {
	t.Helper()
	var a, b bytes.Buffer
	h := newLineHandler(&a, json)
	_, tookFast = h.appendLine(nil, r)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var sh slog.Handler = slog.NewTextHandler(&b, nil)
	if json {
		sh = slog.NewJSONHandler(&b, nil)
	}
	if err := sh.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return a.String(), b.String(), tookFast
}

// The request line takes the fast path and reads exactly as slog writes it.
func TestLineHandlerRequestLine(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 19, 7, 824410771, time.UTC)
	for _, json := range []bool{false, true} {
		for _, r := range []slog.Record{requestRecord(at, "contoso.com", "h:0123456789abcdef"), requestRecord(at, "", "")} {
			fast, std, took := handleBoth(t, json, r)
			if !took {
				t.Errorf("json=%v: the request line does not take the fast path", json)
			}
			if fast != std {
				t.Errorf("json=%v:\n got %s want %s", json, fast, std)
			}
		}
	}
	// A derived handler is slog's own, and still writes correctly.
	var buf bytes.Buffer
	slog.New(newLineHandler(&buf, true)).With("listener", "https").Info("started", "n", 1)
	if want := `"listener":"https","n":1}`; !bytes.Contains(buf.Bytes(), []byte(want)) {
		t.Errorf("derived handler wrote %s", buf.String())
	}
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
