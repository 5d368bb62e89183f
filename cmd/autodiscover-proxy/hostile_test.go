package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// withTimeouts serves with t's timeouts for the rest of the test.
func withTimeouts(tb testing.TB, t timeouts) {
	old := serverTimeouts
	serverTimeouts = t
	tb.Cleanup(func() { serverTimeouts = old })
}

// Every listener has each of http.Server's timeouts.
func TestServerTimeoutsSet(t *testing.T) {
	s := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), serverTimeouts)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Errorf("a timeout or limit is unset: %+v", serverTimeouts)
	}
}

// closedByServer waits (at most a minute: a bound on the test, not on the
// server) until the server closes c, and fails if it does not.
func closedByServer(t *testing.T, what string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: the server kept the connection open", what)
	}
}

// Slow and idle clients (slowloris) are cut off on every listener: a TLS
// handshake never finished, a header or a body sent a byte at a time, a
// kept-alive connection left idle.
func TestSlowClientsAreCut(t *testing.T) {
	withTimeouts(t, timeouts{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond, write: 600 * time.Millisecond, idle: 300 * time.Millisecond})
	r := startServe(t)
	dial := func(addr string, useTLS bool) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if useTLS {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.example.com"})
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			return tc
		}
		return c
	}
	// trickle writes s a byte at a time until the server stops taking it.
	trickle := func(c net.Conn, s string) {
		for i := 0; ; i = (i + 1) % len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"https", r.https, true}, {"http", r.http, false}, {"admin", r.admin, false}} {
		if l.tls {
			raw, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			raw.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then nothing
			closedByServer(t, l.name+": TLS handshake never finished", raw)
			raw.Close()
		}

		c := dial(l.addr, l.tls)
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: autodiscover.example.com\r\n"))
		go trickle(c, "X-Slow: aaaaaaaa\r\n")
		closedByServer(t, l.name+": header sent a byte at a time", c)

		c = dial(l.addr, l.tls)
		c.Write([]byte("POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.com\r\nContent-Type: text/xml\r\nContent-Length: 60000\r\n\r\n<Autodiscover>"))
		go trickle(c, "<a/>")
		closedByServer(t, l.name+": body sent a byte at a time", c)

		c = dial(l.addr, l.tls)
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: autodiscover.example.com\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedByServer(t, l.name+": kept-alive connection left idle", c)
	}
	// And the service still answers.
	if code, _ := get(t, http.DefaultClient, "http://"+r.admin+"/healthz"); code != 200 {
		t.Errorf("healthz after the slow clients: %d", code)
	}
}

// A request line in absolute form names its own host, and CONNECT names
// one too; whatever it says, an answer redirects only to a configured
// host name, on both listeners.
func TestRedirectsNameOnlyOwnHosts(t *testing.T) {
	r := startServe(t)
	own := map[string]bool{"autodiscover.example.com": true, "autoconfig.example.com": true, "example.com": true}
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"https", r.https, true}, {"http", r.http, false}} {
		for _, line := range []string{
			"GET https://evil.test//x HTTP/1.1",
			"GET http://evil.test/a/../b HTTP/1.1",
			"CONNECT evil.test:443 HTTP/1.1",
			"GET //evil.test/x HTTP/1.1",
			"GET /a/../autodiscover/autodiscover.xml HTTP/1.1",
			"GET http://autodiscover.example.com//x HTTP/1.1", // ours: may redirect, to us
		} {
			c, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			if l.tls {
				c = tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "autodiscover.example.com"})
			}
			c.SetDeadline(time.Now().Add(time.Minute))
			io.WriteString(c, line+"\r\nHost: autodiscover.example.com\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err != nil {
				t.Fatalf("%s %q: %v", l.name, line, err)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				if err != nil || !own[u.Hostname()] || u.Scheme != "https" {
					t.Errorf("%s %q: %d Location %q: not one of our own https hosts", l.name, line, resp.StatusCode, loc)
				}
			} else if resp.StatusCode/100 == 3 {
				t.Errorf("%s %q: %d without Location", l.name, line, resp.StatusCode)
			}
		}
	}
}

// The log writer keeps lines whole and in order from many goroutines, and
// has written every one by Close.
func TestLogWriterOrderAndClose(t *testing.T) {
	var out syncBuffer
	l := newLogWriter(&out)
	log := slog.New(slog.NewTextHandler(l, nil))
	done := make(chan bool)
	for g := range 4 {
		go func() {
			for i := range 500 {
				log.Info("line", "g", g, "i", i, "pad", strings.Repeat("x", i%200+1))
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	l.Close()
	last := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	whole := regexp.MustCompile(`^time=\S+ level=INFO msg=line g=(\d) i=(\d+) pad=(x+)$`)
	for _, line := range lines {
		m := whole.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line not whole: %q", line)
		}
		g, i := m[1], 0
		fmt.Sscan(m[2], &i)
		if len(m[3]) != i%200+1 {
			t.Fatalf("line cut: %q", line)
		}
		if prev, ok := last[g]; ok && i != prev+1 {
			t.Fatalf("goroutine %s: line %d after %d", g, i, prev)
		}
		last[g] = i
	}
	if len(lines) != 2000 {
		t.Errorf("%d lines after Close, want 2000", len(lines))
	}
}

// The soft memory limit is 90% of the container's, unless GOMEMLIMIT is set.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "") // present: set by the operator ...
	os.Unsetenv("GOMEMLIMIT")  // ... and now absent, restored by Setenv at the end
	setMemoryLimit(slog.New(slog.DiscardHandler), memlimit.Limit(200<<20))
	if got, want := debug.SetMemoryLimit(-1), int64(180<<20); got != want {
		t.Errorf("limit %d, want %d (90%% of the container's 200 MiB)", got, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "100MiB")
	setMemoryLimit(slog.New(slog.DiscardHandler), memlimit.Limit(200<<20))
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d: the operator's GOMEMLIMIT was overridden", got)
	}
}

// Connections beyond a listener's cap wait their turn, idle kept-alive ones
// are closed near it, and connections that say nothing are cut: a new
// client is always answered.
func TestConnectionCap(t *testing.T) {
	// Idle connections would stay 10 minutes: a client served within the
	// minute was served because idle ones were closed near the cap.
	withTimeouts(t, timeouts{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond, write: 600 * time.Millisecond, idle: 10 * time.Minute})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("limits: {connections_per_listener: 20}\ndomains:\n  - name: example.com\n    provider: microsoft365\n"), 0o600)
	r := startServe(t, "-config", cfg)
	url := "http://" + r.http + "/mail/config-v1.1.xml?emailaddress=a@example.com"

	// 30 clients that keep their connection open after one answer: more
	// than the cap, yet every one is answered.
	var kept []*http.Client
	for i := range 30 {
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		kept = append(kept, c)
		if code, _ := get(t, c, url); code != 200 {
			t.Fatalf("keep-alive client %d: %d", i, code)
		}
	}
	// 200 connections beyond the cap that never say a word.
	for range 200 {
		c, err := net.DialTimeout("tcp", r.http, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// A new client is still answered (once the silent ones are cut at the
	// read-header timeout), and so are the kept-alive ones.
	fresh := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	if code, _ := get(t, fresh, url); code != 200 {
		t.Errorf("a new client beyond the cap: %d", code)
	}
	if code, _ := get(t, kept[0], url); code != 200 {
		t.Errorf("a kept-alive client: %d", code)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+r.admin+"/healthz"); code != 200 {
		t.Errorf("admin: %d", code)
	}
}
