package autodiscover

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
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
	// An untrusted peer claiming https: a redirect to https would loop
	// through the proxy; a clear error instead, and one warning per peer.
	logs.Reset()
	for range 3 {
		if w := post("203.0.113.5:1234", "https"); w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "trust") {
			t.Errorf("untrusted peer claiming https: %d Location %q, want 400 and no redirect", w.Code, w.Header().Get("Location"))
		}
	}
	post("203.0.113.6:1234", "https")
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 || !strings.Contains(logs.String(), "peer=203.0.113.5") || !strings.Contains(logs.String(), "trusted_proxies=[10.0.0.0/8]") || !strings.Contains(logs.String(), "outcome=untrusted_proxy") {
		t.Errorf("want one warning per untrusted peer naming it and trusted_proxies, got %d:\n%s", n, logs.String())
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

// The request line names the host, method, path (never the query) and
// User-Agent, bounded and without control characters; on unknown_domain
// the domain asked for, as an A-label; on an upstream fallback its cause.
func TestRequestLine(t *testing.T) {
	var logs bytes.Buffer
	// httptest's peer, 192.0.2.1, is a trusted proxy; the upstream refuses connections.
	s := serverFor(t, "trusted_proxies: [192.0.2.0/24]\ndomains:\n  - name: contoso.com\n    provider: microsoft365\n  - name: fabrikam.com\n    provider: microsoft365\n    upstream: {url: 'https://127.0.0.1:1/autodiscover/autodiscover.xml'}\n", &logs)
	line := func(e exchange) map[string]string {
		logs.Reset()
		e.serve(s)
		fields := map[string]string{}
		out := strings.TrimSpace(logs.String())
		if strings.Count(out, "\n") != 0 {
			t.Fatalf("%s %s: want one line, got:\n%s", e.method, e.target, out)
		}
		for _, m := range regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`).FindAllStringSubmatch(out, -1) {
			fields[m[1]] = strings.Trim(m[2], `"`)
		}
		return fields
	}
	f := line(exchange{method: "GET", target: "/Mail/config-v1.1.xml?emailaddress=jane@contoso.com&secret=1", host: "autoconfig.contoso.com",
		header: http.Header{"User-Agent": {"Thunderbird\x1b[31m/128\r\nforged=1" + strings.Repeat("x", 500)}, "Authorization": {"Basic c2VjcmV0"}}})
	if f["method"] != "GET" || f["host"] != "autoconfig.contoso.com" || f["path"] != "/Mail/config-v1.1.xml" || f["outcome"] != "settings" || f["dialect"] != "autoconfig" {
		t.Errorf("autoconfig line: %v", f)
	}
	if ua := f["user_agent"]; !strings.HasPrefix(ua, "Thunderbird[31m/128forged=1x") || len(ua) > maxLoggedUserAgent {
		t.Errorf("user_agent %q: control characters kept or not bounded", ua)
	}
	if strings.Contains(logs.String(), "secret") || strings.Contains(logs.String(), "c2VjcmV0") {
		t.Errorf("query or Authorization logged:\n%s", logs.String())
	}

	f = line(exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@B%C3%BCcher.example"})
	if f["outcome"] != "unknown_domain" || f["asked_domain"] != "xn--bcher-kva.example" {
		t.Errorf("unknown domain line: %v", f)
	}
	f = line(exchange{method: "GET", target: "/mail/config-v1.1.xml", host: "autoconfig.nope.example"})
	if f["asked_domain"] != "autoconfig.nope.example" {
		t.Errorf("unknown host line: %v", f)
	}
	f = line(exchange{method: "GET", target: "/mobileconfig/Jane@contoso.com.mobileconfig", host: "autodiscover.contoso.com"})
	if strings.Contains(f["path"], "Jane") || !strings.HasPrefix(f["path"], "/mobileconfig/h:") {
		t.Errorf("address in the path logged: %v", f)
	}

	f = line(exchange{method: "POST", target: "/autodiscover/autodiscover.xml", body: poxBody(reqOutlook, "jane@fabrikam.com", respOutlook)})
	if f["upstream"] != "fallback_connection" || !strings.Contains(f["upstream_error"], "connection refused") || f["outcome"] != "settings" {
		t.Errorf("upstream fallback line: %v", f)
	}
}

// wrappedWriter is a middleware's own ResponseWriter, as a compressing or
// timing middleware would put between observe and a handler.
type wrappedWriter struct{ http.ResponseWriter }

// The report travels in the request's context: a middleware that wraps
// the ResponseWriter between observe and the handler loses none of the
// handler's fields; and http.ResponseController reaches the connection
// through observe's own writer.
func TestRecordSurvivesWrappers(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, beforeCutoff, &logs)
	inner := http.HandlerFunc(s.autoconfig)
	h := s.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("ResponseController through observe's writer: %v", err)
		}
		inner.ServeHTTP(wrappedWriter{w}, r)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/mail/config-v1.1.xml?emailaddress=jane@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, want := range []string{"dialect=autoconfig", "outcome=settings", "domain=contoso.com", "status=200"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log line lacks %s behind a wrapped writer:\n%s", want, logs.String())
		}
	}
}

// Every handler that answers for an address resolves it in one step, and
// records a bad address and an unknown domain alike, whatever its dialect.
func TestResolveRecordsAlike(t *testing.T) {
	for _, tc := range []struct{ email, outcome string }{
		{"not-an-address", "outcome=bad_address"},
		{"jane@unknown.example", "outcome=unknown_domain"},
	} {
		for _, req := range []struct {
			dialect, method, target, body string
		}{
			{"pox", "POST", "/autodiscover/autodiscover.xml", poxBody(reqOutlook, tc.email, respOutlook)},
			{"soap", "POST", "/autodiscover/autodiscover.svc", soapBody("GetUserSettings", []string{tc.email}, "UserDisplayName")},
			{"json", "GET", "/autodiscover/autodiscover.json?Protocol=ActiveSync&Email=" + tc.email, ""},
			{"autoconfig", "GET", "/mail/config-v1.1.xml?emailaddress=" + tc.email, ""},
			{"apple", "GET", "/mobileconfig?email=" + tc.email, ""},
			{"setup", "GET", "/setup?email=" + tc.email, ""},
		} {
			var logs bytes.Buffer
			s := newTestServer(t, beforeCutoff, &logs)
			r := httptest.NewRequest(req.method, req.target, strings.NewReader(req.body))
			r.Host = "autodiscover.contoso.com"
			s.HTTPSHandler().ServeHTTP(httptest.NewRecorder(), r)
			if !strings.Contains(logs.String(), tc.outcome) {
				t.Errorf("%s, %s: want %s in\n%s", req.dialect, tc.email, tc.outcome, logs.String())
			}
		}
	}
}
