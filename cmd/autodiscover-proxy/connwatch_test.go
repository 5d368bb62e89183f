package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// watching reports how many connections are watched.
func (w *connWatch) watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// watchedServer serves h as serve does (newHTTPServer, the watch's
// listener), with the watch's clock ticking every 20 ms.
func watchedServer(t *testing.T, idle, write time.Duration, h http.Handler) (string, *connWatch) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	watch := newConnWatch(idle, write, 20*time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	go watch.Run(ctx)
	s := newHTTPServer(h, slog.New(slog.DiscardHandler), watch)
	go s.Serve(watch.Listener(ln))
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
	addr, watch := watchedServer(t, idle, 5*time.Second, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

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
// connection: the server's write fails within the write timeout.
func TestConnWatchWrite(t *testing.T) {
	t.Parallel()
	const write = time.Second
	failed := make(chan time.Time, 1)
	big := strings.Repeat("x", 1<<20)
	addr, _ := watchedServer(t, time.Minute, write, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 64 { // 64 MB: more than any socket buffer takes
			if _, err := io.WriteString(w, big); err != nil {
				failed <- time.Now()
				return
			}
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	start := time.Now()
	select {
	case at := <-failed:
		if d := at.Sub(start); d > 3*write {
			t.Errorf("write failed after %v, want within about %v", d, write)
		}
	case <-time.After(10 * write):
		t.Fatal("the server still writes to a client that reads nothing")
	}
}
