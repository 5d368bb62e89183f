package autodiscover

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.7:5555", "", "203.0.113.7"},
		{"203.0.113.7:5555", "198.51.100.1", "203.0.113.7"}, // untrusted peer: header ignored
		{"10.1.2.3:5555", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:5555", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // spoofed left part ignored
		{"[::1]:5555", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:5555", "not-an-ip, 10.9.9.9", "10.9.9.9"},
		{"10.1.2.3:5555", "", "10.1.2.3"},
		{"[::ffff:203.0.113.7]:5555", "", "203.0.113.7"},                       // IPv4-mapped: written as IPv4
		{"10.1.2.3:5555", "2001:DB8:0::1", "2001:db8::1"},                      // written the canonical way
		{"10.1.2.3:5555", "198.51.100.1:4711", "198.51.100.1"},                 // a proxy that adds the port
		{"10.1.2.3:5555", "198.51.100.1\n10.9.9.9", "198.51.100.1"},            // two header lines are one list
		{"10.1.2.3:5555", "198.51.100.1\n", "10.1.2.3"},                        // an empty last value stops the walk
		{"10.1.2.3:5555", "198.51.100.1,\t10.9.9.9 ,10.8.8.8", "198.51.100.1"}, // spaces around items
		{"garbage", "", "invalid IP"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			for _, v := range strings.Split(tc.xff, "\n") {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		if got := clientIP(r, trusted); got != tc.want {
			t.Errorf("remote %s xff %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// The log line runs clientIP on every request: the common cases (a direct
// client, one forwarded address) return a substring of the request.
func TestClientIPAllocations(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	direct := httptest.NewRequest("GET", "/", nil)
	direct.RemoteAddr = "203.0.113.7:5555"
	proxied := httptest.NewRequest("GET", "/", nil)
	proxied.RemoteAddr = "10.1.2.3:5555"
	proxied.Header.Set("X-Forwarded-For", "198.51.100.1, 10.9.9.9")
	for name, r := range map[string]*http.Request{"direct": direct, "proxied": proxied} {
		if n := testing.AllocsPerRun(100, func() { clientIP(r, trusted) }); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func serverFor(t *testing.T, yaml string, log *bytes.Buffer) *Server {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Log = slog.New(slog.NewTextHandler(log, nil))
	s.Now = func() time.Time { return beforeCutoff }
	return s
}

// Behind an ingress: the HTTP listener answers the HTTPS routes only for a
// trusted proxy that says the client used https.
func TestForwardedProto(t *testing.T) {
	var logs bytes.Buffer
	s := serverFor(t, "trusted_proxies: [10.0.0.0/8]\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n", &logs)
	h := s.HTTPHandler()
	post := func(remote, proto string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(poxBody(reqOutlook, "jane@contoso.com", respOutlook)))
		r.Host = "autodiscover.contoso.com"
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-Proto", proto)
		r.Header.Set("X-Forwarded-For", "198.51.100.9")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := post("10.0.0.5:1234", "https"); w.Code != 200 || !strings.Contains(w.Body.String(), "<Action>settings</Action>") {
		t.Errorf("trusted proxy, https: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "client=198.51.100.9") {
		t.Errorf("client IP from X-Forwarded-For not logged:\n%s", logs.String())
	}
	if w := post("203.0.113.5:1234", "https"); w.Code != http.StatusPermanentRedirect {
		t.Errorf("untrusted peer claiming https: %d, want 308 to https", w.Code)
	}
	if w := post("10.0.0.5:1234", "http"); w.Code != http.StatusPermanentRedirect {
		t.Errorf("trusted proxy, http: %d, want 308", w.Code)
	}
}

func TestAddressLogging(t *testing.T) {
	var hashed, plain bytes.Buffer
	hs := serverFor(t, "domains:\n  - name: contoso.com\n    provider: microsoft365\n", &hashed)
	ps := serverFor(t, "log: {addresses: plain}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n", &plain)
	for _, s := range []*Server{hs, ps} {
		for range 2 {
			exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=Jane@contoso.com"}.serve(s)
		}
	}
	if strings.Contains(hashed.String(), "Jane@contoso.com") || !strings.Contains(hashed.String(), "address=h:") {
		t.Errorf("default log:\n%s", hashed.String())
	}
	lines := strings.Split(strings.TrimSpace(hashed.String()), "\n")
	h1 := lines[0][strings.Index(lines[0], "address="):]
	h2 := lines[1][strings.Index(lines[1], "address="):]
	if h1 != h2 {
		t.Errorf("the same address hashes differently: %s / %s", h1, h2)
	}
	if !strings.Contains(plain.String(), "address=Jane@contoso.com") {
		t.Errorf("log.addresses plain:\n%s", plain.String())
	}
}

func TestMetricsCount(t *testing.T) {
	var logs bytes.Buffer
	s := serverFor(t, "domains:\n  - name: contoso.com\n    provider: microsoft365\n", &logs)
	reg := prometheus.NewRegistry()
	s.Metrics = NewMetrics(reg)
	exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@contoso.com"}.serve(s)
	exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@contoso.com"}.serve(s)
	exchange{method: "POST", target: "/autodiscover/autodiscover.xml", body: "junk"}.serve(s)
	const want = `
# HELP autodiscover_requests_total Requests answered, by client dialect, outcome and configured domain (empty when none matched).
# TYPE autodiscover_requests_total counter
autodiscover_requests_total{dialect="autoconfig",domain="contoso.com",outcome="settings"} 2
autodiscover_requests_total{dialect="pox",domain="",outcome="bad_request"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "autodiscover_requests_total"); err != nil {
		t.Error(err)
	}
	if c, err := testutil.GatherAndCount(reg, "autodiscover_request_duration_seconds"); c != 2 {
		t.Errorf("latency series %d (%v), want 2 (autoconfig, pox)", c, err)
	}
}

// fieldLogger is a RequestLogger that keeps the lines it is handed and
// writes each as its Record.
type fieldLogger struct {
	slog.Handler
	lines []RequestLine
}

func (h *fieldLogger) HandleRequest(ctx context.Context, l RequestLine) error {
	h.lines = append(h.lines, l)
	return h.Handler.Handle(ctx, l.Record())
}

// A logger whose handler is a RequestLogger gets each request line as
// fields, the same line a plain handler gets as a record.
func TestRequestLogger(t *testing.T) {
	// httptest's peer, 192.0.2.1, is a trusted proxy; the upstream refuses
	// connections (the line says so).
	const cfg = "trusted_proxies: [192.0.2.0/24]\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n    upstream: {url: 'https://127.0.0.1:1/autodiscover/autodiscover.xml'}\n"
	var viaRecord, viaFields, unused bytes.Buffer
	rs := serverFor(t, cfg, &viaRecord)
	fs := serverFor(t, cfg, &unused)
	fl := &fieldLogger{Handler: slog.NewTextHandler(&viaFields, nil)}
	fs.Log = slog.New(fl)
	for _, s := range []*Server{rs, fs} {
		exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=Jane@contoso.com"}.serve(s)
		exchange{method: "POST", target: "/autodiscover/autodiscover.xml", body: poxBody(reqOutlook, "jane@contoso.com", respOutlook),
			header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}}.serve(s)
	}
	if len(fl.lines) != 2 {
		t.Fatalf("HandleRequest called %d times, want 2", len(fl.lines))
	}
	if l := fl.lines[1]; l.Dialect != "pox" || l.Upstream == "" || l.Client != "198.51.100.9" || !strings.HasPrefix(l.Address, "h:") || l.Status != 200 {
		t.Errorf("POX line: %+v", l)
	}
	// The same lines but for time, duration and the address hash (each
	// server has its own key).
	varying := regexp.MustCompile(`time=\S+|duration=\S+|address=h:\S+`)
	if got, want := varying.ReplaceAllString(viaFields.String(), ""), varying.ReplaceAllString(viaRecord.String(), ""); got != want {
		t.Errorf("as fields:\n%s\nas a record:\n%s", got, want)
	}
}

type discardRequests struct{ slog.Handler }

func (discardRequests) HandleRequest(context.Context, RequestLine) error { return nil }

// Handing the line over as fields allocates nothing: a request costs as
// many allocations as with the log off.
func TestRequestLoggerAllocations(t *testing.T) {
	var unused bytes.Buffer
	s := serverFor(t, "log: {addresses: plain}\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n", &unused)
	e := exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@contoso.com"}
	s.Log = slog.New(slog.DiscardHandler) // not enabled: no line
	logOff := meanAllocs(func() { e.serve(s) })
	s.Log = slog.New(discardRequests{slog.NewJSONHandler(io.Discard, nil)})
	if n := meanAllocs(func() { e.serve(s) }); n > logOff+0.5 {
		t.Errorf("%.2f allocations per request with a RequestLogger, %.2f with the log off", n, logOff)
	}
}

// meanAllocs is f's mean allocations per call, unrounded: under the race
// detector sync.Pool drops some of what it is given at random, which adds
// a fraction of an allocation per call to every measurement alike.
func meanAllocs(f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	const runs = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs
}
