package main

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
)

// "version" and -h say which build runs.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-h"}} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), args, &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if want := "autodiscover-proxy " + readBuildInfo().version + " (commit "; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), runtime.Version()) {
			t.Errorf("%v printed %q, want %q and the Go version", args, out.String(), want)
		}
	}
	var errs bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, &bytes.Buffer{}, &errs); code != 2 {
		t.Errorf("version with an argument: exit %d, want 2", code)
	}
}

// Redirects and links name the public HTTPS port: 443 behind a port
// mapping or a load balancer, the listener's own in development on loopback.
func TestPublicHTTPSPort(t *testing.T) {
	for _, tc := range []struct {
		given int
		ln    string
		want  int
	}{
		{0, "0.0.0.0:8443", 443},    // a container: published as 443
		{0, "[::]:8443", 443},       // likewise
		{0, "127.0.0.1:8443", 8443}, // development
		{0, "[::1]:9443", 9443},
		{8443, "0.0.0.0:8443", 8443}, // the operator's word
		{443, "127.0.0.1:8443", 443},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.ln)
		if err != nil {
			t.Fatal(err)
		}
		if got := publicHTTPSPort(tc.given, a); got != tc.want {
			t.Errorf("publicHTTPSPort(%d, %s) = %d, want %d", tc.given, tc.ln, got, tc.want)
		}
	}
}
