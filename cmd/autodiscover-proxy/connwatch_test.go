package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/testpki"
)

// watching reports how many connections are watched.
func (w *connWatch) watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// watchedServer serves h as serve does (newHTTPServer, the watch's
// listener; over TLS when tlsConf is set), with the watch's clock ticking
// every 20 ms.
func watchedServer(t *testing.T, read, write, idle time.Duration, tlsConf *tls.Config, h http.Handler) (string, *connWatch) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	watch := newConnWatch(read, write, idle, 20*time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	go watch.Run(ctx)
	s := newHTTPServer(h, slog.New(slog.DiscardHandler), watch)
	if tlsConf != nil {
		s.TLSConfig = tlsConf
		go s.ServeTLS(watch.Listener(ln), "", "")
	} else {
		go s.Serve(watch.Listener(ln))
	}
	t.Cleanup(func() { s.Close(); stop() })
	return ln.Addr().String(), watch
}

func getOn(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// A keep-alive connection that waits for its next request longer than the
// idle timeout is closed; one that keeps asking is not, and a closed
// connection is no longer watched.
func TestConnWatchIdle(t *testing.T) {
	t.Parallel()
	const idle = 500 * time.Millisecond
	addr, watch := watchedServer(t, time.Minute, 5*time.Second, idle, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyR := bufio.NewReader(busy)
	quiet, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	getOn(t, quiet, bufio.NewReader(quiet))
	start := time.Now()
	for range 10 { // 2 s of requests, each well within the idle timeout
		getOn(t, busy, busyR)
		time.Sleep(idle / 3)
	}
	quiet.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := quiet.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection after %v: read %d, %v; want closed (EOF)", time.Since(start), n, err)
	}
	getOn(t, busy, busyR) // still open

	busy.Close()
	deadline := time.Now().Add(5 * time.Second)
	for watch.watching() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := watch.watching(); n != 0 {
		t.Errorf("%d connections still watched after all closed", n)
	}
}

// A client that sends requests and reads no answer cannot hold the
// connection: the server's write fails within the write timeout, on a new
// connection and on one that has had a request answered (net/http clears
// the write deadline after every request).
func TestConnWatchWrite(t *testing.T) {
	t.Parallel()
	const write = time.Second
	failed := make(chan time.Time, 2)
	big := strings.Repeat("x", 1<<20)
	addr, _ := watchedServer(t, time.Minute, write, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			return
		}
		for range 64 { // 64 MB: more than any socket buffer takes
			if _, err := io.WriteString(w, big); err != nil {
				failed <- time.Now()
				return
			}
		}
	}))
	for _, answered := range []int{0, 3} {
		t.Run(fmt.Sprintf("after %d answers", answered), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for range answered {
				getOn(t, c, br)
			}
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			start := time.Now()
			select {
			case at := <-failed:
				if d := at.Sub(start); d > 3*write {
					t.Errorf("write failed after %v, want within about %v", d, write)
				}
			case <-time.After(10 * write):
				t.Fatal("the server still writes to a client that reads nothing")
			}
		})
	}
}

// The read timeout runs from a request's first byte to the end of its
// body (and over a TLS handshake): a client slower than that is cut off, no
// earlier than the timeout and about a tick after it; a complete request
// is answered.
func TestConnWatchRead(t *testing.T) {
	t.Parallel()
	const read = 500 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	addr, _ := watchedServer(t, read, 5*time.Second, time.Minute, nil, h)
	chain := testpki.New(t, "localhost")
	tlsAddr, _ := watchedServer(t, read, 5*time.Second, time.Minute, &tls.Config{Certificates: []tls.Certificate{*chain.Cert}}, h)
	for _, tc := range []struct{ name, addr, send string }{
		{"header", addr, "POST / HTTP/1.1\r\nHost: x\r\n"},
		{"body", addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf"},
		{"TLS handshake", tlsAddr, "\x16\x03\x01"}, // the start of a ClientHello
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			c.Write([]byte(tc.send))
			c.SetReadDeadline(time.Now().Add(10 * read))
			if _, err := io.Copy(io.Discard, c); err != nil { // nil: the server closed
				t.Fatalf("server kept the connection open: %v", err)
			}
			if d := time.Since(start); d < read || d > read+300*time.Millisecond {
				t.Errorf("connection closed after %v, want after the read timeout (%v) and within a few ticks of it", d, read)
			}
		})
	}
	t.Run("slow but in time", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n")
		time.Sleep(read / 2)
		io.WriteString(c, "Content-Length: 5\r\n\r\nwhole")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

// The read timeout bounds reading a request, not answering it, nor waiting
// for the next one: a handler that takes longer than the read timeout
// finishes with its context alive, and a keep-alive connection that waits
// longer than the read timeout (within the idle timeout) still serves.
func TestConnWatchReadNotAnswer(t *testing.T) {
	t.Parallel()
	const read = 300 * time.Millisecond
	addr, _ := watchedServer(t, read, 5*time.Second, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(3 * read)
			if err := r.Context().Err(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, path := range []string{"/slow", "/", "/slow"} {
		if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
		}
		time.Sleep(3 * read) // waits for the next request
	}
}

// Deadlines on the watch's clock round up, so they never pass early, and
// stay in order at the far ends of time.
func TestConnWatchTicks(t *testing.T) {
	w := newConnWatch(time.Second, time.Second, time.Second, time.Second)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{w.start, 0},
		{w.start.Add(time.Nanosecond), 1},
		{w.start.Add(time.Second), 1},
		{w.start.Add(1500 * time.Millisecond), 2},
		{w.start.Add(-1500 * time.Millisecond), -1},
		{w.start.AddDate(1000, 0, 0), int64(time.Duration(math.MaxInt64)/time.Second) + 1},
	} {
		if got := w.ticks(tc.at); got != tc.want {
			t.Errorf("ticks(start%+v) = %d, want %d", tc.at.Sub(w.start), got, tc.want)
		}
	}
	if got := w.ticks(time.Unix(1, 0)); got >= 0 {
		t.Errorf("a deadline in 1970 is tick %d, want before the start", got)
	}
}
