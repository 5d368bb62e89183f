package autodiscover

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const upstreamTimeout = 300 * time.Millisecond

// fakeUpstreams runs TLS servers for upstream.example and other.example on
// loopback, with a certificate the proxy's client verifies.
type fakeUpstreams struct {
	client *http.Client
	url    map[string]string // host -> https://host:port
	hits   map[string]*atomic.Int32
	auth   map[string]*atomic.Value // last Authorization seen per host
}

func startUpstreams(t *testing.T, handlers map[string]http.HandlerFunc) *fakeUpstreams {
	t.Helper()
	cert, err := certs.SelfSigned([]string{"upstream.example", "other.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	f := &fakeUpstreams{url: map[string]string{}, hits: map[string]*atomic.Int32{}, auth: map[string]*atomic.Value{}}
	addrs := map[string]string{}
	for host, h := range handlers {
		hits, auth := &atomic.Int32{}, &atomic.Value{}
		auth.Store("")
		f.hits[host], f.auth[host] = hits, auth
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			auth.Store(r.Header.Get("Authorization"))
			h(w, r)
		}))
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		ts.StartTLS()
		t.Cleanup(ts.Close)
		_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
		f.url[host] = "https://" + host + ":" + port
		addrs[host+":"+port] = ts.Listener.Addr().String()
	}
	c := NewUpstreamClient()
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig.RootCAs = roots
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		real, ok := addrs[addr]
		if !ok {
			return nil, fmt.Errorf("test: no upstream %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, real) // loopback only
	}
	f.client = c
	return f
}

func upstreamProxy(t *testing.T, f *fakeUpstreams, extra string, logs io.Writer) *Server {
	t.Helper()
	y := fmt.Sprintf("domains:\n  - name: contoso.com\n    provider: microsoft365\n    upstream:\n      url: %s/autodiscover/autodiscover.xml\n      timeout: %s\n%s",
		f.url["upstream.example"], upstreamTimeout, extra)
	cfg, err := config.Parse([]byte(y), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.UpstreamClient = f.client
	s.Log = slog.New(slog.NewTextHandler(logs, nil))
	s.Metrics = NewMetrics(prometheus.NewRegistry())
	s.Now = time.Now
	return s
}

func askPOX(s *Server, auth string) (*httptest.ResponseRecorder, time.Duration) {
	return askPOXFrom(s, "jane@contoso.com", auth, "")
}

// askPOXFrom asks for addr with auth; forwardedFor, when set, is the client
// a trusted proxy (httptest's peer, 192.0.2.1) names.
func askPOXFrom(s *Server, addr, auth, forwardedFor string) (*httptest.ResponseRecorder, time.Duration) {
	r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(poxBody(reqOutlook, addr, respOutlook)))
	r.Host = "autodiscover.contoso.com"
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if forwardedFor != "" {
		r.Header.Set("X-Forwarded-For", forwardedFor)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	s.HTTPSHandler().ServeHTTP(w, r)
	return w, time.Since(start)
}

// consumerAnswer is what Outlook.com's autodiscover hands a business user.
func consumerAnswer(addr string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User><DisplayName>Jane</DisplayName><AutoDiscoverSMTPAddress>` + addr + `</AutoDiscoverSMTPAddress></User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol><Type>IMAP</Type><Server>imap-mail.outlook.com</Server><Port>993</Port><LoginName>` + addr + `</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>SSL</Encryption></Protocol>
      <Protocol><Type>POP3</Type><Server>pop-mail.outlook.com</Server><Port>995</Port><LoginName>` + addr + `</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>SSL</Encryption></Protocol>
      <Protocol><Type>SMTP</Type><Server>smtp-mail.outlook.com</Server><Port>587</Port><LoginName>` + addr + `</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>TLS</Encryption></Protocol>
      <Protocol><Type>EXCH</Type><Server>s.outlook.com</Server><EwsUrl>https://s.outlook.com/EWS/Exchange.asmx</EwsUrl><OABUrl>https://m.hotmail.com/OAB/</OABUrl></Protocol>
      <Protocol><Type>EXPR</Type><Server>s.outlook.com</Server><EwsUrl>https://s.outlook.com/EWS/Exchange.asmx</EwsUrl></Protocol>
    </Account>
  </Response>
</Autodiscover>`
}

// answerFor answers each request with answer(the address it asks about),
// as an upstream answers.
func answerFor(answer func(addr string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := xmlschema.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		xmlHandler(answer(req.EMailAddress))(w, r)
	}
}

func xmlHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, body)
	}
}

func redirectTo(url string) http.HandlerFunc {
	return xmlHandler(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><AccountType>email</AccountType><Action>redirectUrl</Action><RedirectUrl>` + url + `</RedirectUrl></Account></Response></Autodiscover>`)
}

// wantLocalAnswer: the client got the proxy's own business answer, fast.
func wantLocalAnswer(t *testing.T, w *httptest.ResponseRecorder, took time.Duration) {
	t.Helper()
	if took > upstreamTimeout+time.Second {
		t.Errorf("answered after %v; the upstream timeout is %v", took, upstreamTimeout)
	}
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	p, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Body)
	}
	if !reflect.DeepEqual(p.Servers, m365("jane@contoso.com")) || p.EwsURL != "" {
		t.Errorf("not the business answer: %+v", p)
	}
}

func upstreamCount(s *Server, res upstreamResult) float64 {
	return testutil.ToFloat64(s.Metrics.upstream.WithLabelValues("contoso.com", string(res)))
}

// Every fault gets the local business answer within the timeout plus a
// margin, and a metric and a log line say what happened.
func TestUpstreamFaults(t *testing.T) {
	hugeBody := `<?xml version="1.0"?><Autodiscover>` + strings.Repeat("<x/>", maxUpstreamBody/4+10) + `</Autodiscover>`
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    upstreamResult
	}{
		{"slower than the timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, upTimeout},
		{"connection reset", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*tls.Conn).NetConn().(*net.TCPConn).SetLinger(0)
			conn.Close()
		}, upConnError},
		{"garbage", xmlHandler("this is not XML <<<"), upNotXML},
		{"body past the cap", xmlHandler(hugeBody), upTooLarge},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, upStatus},
		{"401 without relay", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(401)
		}, upUnauthorized},
		{"upstream error document", xmlHandler(`<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response><Error Time="1" Id="2"><ErrorCode>500</ErrorCode><Message>x</Message></Error></Response></Autodiscover>`), upInvalid},
		{"redirect to a host not allowed", redirectTo("https://evil.example/autodiscover/autodiscover.xml"), upRedirect},
		{"redirect to http", redirectTo("http://upstream.example/autodiscover/autodiscover.xml"), upRedirect},
		{"302 to a host not allowed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example/autodiscover/autodiscover.xml", http.StatusFound)
		}, upRedirect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": tc.handler})
			var logs bytes.Buffer
			s := upstreamProxy(t, f, "", &logs)
			w, took := askPOX(s, "")
			wantLocalAnswer(t, w, took)
			if f.hits["upstream.example"].Load() == 0 {
				t.Error("the upstream was never asked")
			}
			if n := upstreamCount(s, tc.want); n != 1 {
				t.Errorf("metric %s = %v, want 1; log:\n%s", tc.want, n, logs.String())
			}
			if !strings.Contains(logs.String(), "upstream="+string(tc.want)) {
				t.Errorf("log does not say %s:\n%s", tc.want, logs.String())
			}
		})
	}
}

// A redirect loop between two allowed hosts is detected.
func TestUpstreamRedirectLoop(t *testing.T) {
	var f *fakeUpstreams
	f = startUpstreams(t, map[string]http.HandlerFunc{
		"upstream.example": func(w http.ResponseWriter, r *http.Request) {
			redirectTo(f.url["other.example"]+"/autodiscover/autodiscover.xml")(w, r)
		},
		"other.example": func(w http.ResponseWriter, r *http.Request) {
			redirectTo(f.url["upstream.example"]+"/autodiscover/autodiscover.xml")(w, r)
		},
	})
	s := upstreamProxy(t, f, "      redirect_hosts: [other.example]\n", io.Discard)
	w, took := askPOX(s, "")
	wantLocalAnswer(t, w, took)
	if upstreamCount(s, upLoop) != 1 {
		t.Error("loop not counted")
	}
	if h := f.hits["upstream.example"].Load() + f.hits["other.example"].Load(); h > maxUpstreamHops {
		t.Errorf("%d hops for a loop", h)
	}
}

// An answer full of consumer hosts is rewritten to the business endpoints
// and re-validated. Without relay_auth, credentials never go upstream; with
// it, the Authorization header goes to the configured upstream only (not to
// a redirect target on another host), and is never logged; authenticated
// answers are never cached.
func TestUpstreamRewriteAuthAndCache(t *testing.T) {
	var f *fakeUpstreams
	f = startUpstreams(t, map[string]http.HandlerFunc{
		"upstream.example": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				redirectTo(f.url["other.example"]+"/autodiscover/autodiscover.xml")(w, r)
				return
			}
			xmlHandler(consumerAnswer("jane@contoso.com"))(w, r)
		},
		"other.example": xmlHandler(consumerAnswer("jane@contoso.com")),
	})
	var logs bytes.Buffer
	s := upstreamProxy(t, f, "      redirect_hosts: [other.example]\n", &logs)

	for i := range 2 {
		w, _ := askPOX(s, "")
		p, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes())
		if err != nil {
			t.Fatalf("rewritten answer unreadable: %v\n%s", err, w.Body)
		}
		if !reflect.DeepEqual(p.Servers, m365("jane@contoso.com")) || p.EwsURL != "" {
			t.Errorf("request %d: rewritten servers %+v ews %s", i, p.Servers, p.EwsURL)
		}
		if h := consumerHostIn(w.Body.String()); h != "" {
			t.Errorf("consumer host %s left in:\n%s", h, w.Body)
		}
		if !strings.Contains(w.Body.String(), "<DisplayName>Jane</DisplayName>") {
			t.Error("the upstream's own parts were not kept")
		}
	}
	if n := f.hits["upstream.example"].Load(); n != 1 {
		t.Errorf("unauthenticated requests reached the upstream %d times, want 1 (then the cache)", n)
	}
	if upstreamCount(s, upRewritten) != 1 || upstreamCount(s, upCached) != 1 {
		t.Errorf("metrics rewritten %v cached %v", upstreamCount(s, upRewritten), upstreamCount(s, upCached))
	}

	secret := "Basic " + base64.StdEncoding.EncodeToString([]byte("jane@contoso.com:Pa55word!"))
	for range 2 { // relay_auth off: the credentials stay here, the cached answer serves
		if w, _ := askPOX(s, secret); w.Code != 200 || consumerHostIn(w.Body.String()) != "" {
			t.Fatalf("answer with credentials, relay_auth off: %d\n%s", w.Code, w.Body)
		}
	}
	if n, got := f.hits["upstream.example"].Load(), f.auth["upstream.example"].Load(); n != 1 || got != "" {
		t.Errorf("relay_auth off: the upstream was asked %d times in all (want 1) and got Authorization %q", n, got)
	}

	s = upstreamProxy(t, f, "      relay_auth: true\n      redirect_hosts: [other.example]\n", &logs)
	for range 2 {
		w, _ := askPOX(s, secret)
		if w.Code != 200 || consumerHostIn(w.Body.String()) != "" {
			t.Fatalf("authenticated answer %d:\n%s", w.Code, w.Body)
		}
	}
	if n := f.hits["upstream.example"].Load(); n != 3 {
		t.Errorf("authenticated requests reached the upstream %d times in all, want 3: they are never cached", n)
	}
	if got := f.auth["upstream.example"].Load(); got != secret {
		t.Errorf("upstream got Authorization %q", got)
	}
	if got := f.auth["other.example"].Load(); got != "" {
		t.Errorf("the redirect target on another host got Authorization %q", got)
	}
	if strings.Contains(logs.String(), "Pa55word") || strings.Contains(logs.String(), secret[6:]) {
		t.Errorf("Authorization logged:\n%s", logs.String())
	}
}

// With relay_auth, an upstream 401 and its challenge reach the client.
func TestUpstreamRelay401(t *testing.T) {
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("WWW-Authenticate", `Basic realm="autodiscover"`)
		w.Header().Add("WWW-Authenticate", "Negotiate")
		w.WriteHeader(401)
	}})
	s := upstreamProxy(t, f, "      relay_auth: true\n", io.Discard)
	w, _ := askPOX(s, "")
	if w.Code != 401 || !reflect.DeepEqual(w.Header().Values("WWW-Authenticate"), []string{`Basic realm="autodiscover"`, "Negotiate"}) {
		t.Errorf("status %d, WWW-Authenticate %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
}

func TestUpstreamConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"url: http://x.example/a.xml", "not an https URL"},
		{"url: https://x.example/a.xml\n      timeout: 10m", "duration up to"},
		{"url: https://smtp-mail.outlook.com/a.xml", "consumer"},
		{"url: https://x.example/a.xml\n      redirect_hosts: [m.hotmail.com]", "consumer"},
	} {
		_, err := config.Parse([]byte("domains:\n  - name: a.com\n    provider: microsoft365\n    upstream:\n      "+tc.yaml+"\n"), "t", "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// Without relay_auth no credential reaches the upstream, and every answer
// is the same, right password or wrong: no oracle.
func TestUpstreamNoRelayNoOracle(t *testing.T) {
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Basic right" {
			xmlHandler(consumerAnswer("jane@contoso.com"))(w, r)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}})
	s := upstreamProxy(t, f, "", io.Discard)
	var first string
	for i := range 200 {
		auth := fmt.Sprintf("Basic wrong%d", i)
		if i%2 == 0 {
			auth = "Basic right"
		}
		w, _ := askPOX(s, auth)
		body := regexp.MustCompile(`Time="[^"]*"|Id="\d+"`).ReplaceAllString(w.Body.String(), "")
		if i == 0 {
			first = body
		} else if w.Code != 200 || body != first {
			t.Fatalf("answer %d differs from the first (%d):\n%s\nfirst:\n%s", i, w.Code, body, first)
		}
	}
	if got := f.auth["upstream.example"].Load(); got != "" {
		t.Errorf("the upstream got Authorization %q with relay_auth off", got)
	}
}

// With relay_auth, relayed credentials are limited per client IP and per
// address: a spraying client gets its burst through, then the local answer,
// a metric and one log line a minute.
func TestUpstreamRelayLimits(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Authorization")] = true
		mu.Unlock()
		w.Header().Add("WWW-Authenticate", "Basic")
		w.WriteHeader(http.StatusUnauthorized)
	}})
	var logs bytes.Buffer
	s := upstreamProxy(t, f, "      relay_auth: true\n", &logs)
	cfg := s.Config()
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // httptest's peer
	distinct := func() int { mu.Lock(); defer mu.Unlock(); n := len(seen); clear(seen); return n }

	// One client, one address per attempt: the client's bucket holds.
	for i := range 300 {
		w, _ := askPOXFrom(s, fmt.Sprintf("user%d@contoso.com", i), fmt.Sprintf("Basic pw%d", i), "198.51.100.7")
		if w.Code != 401 && w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := distinct(); n != config.DefaultRelayPerClientPerHour {
		t.Errorf("one client had %d distinct credentials relayed, want its burst of %d", n, config.DefaultRelayPerClientPerHour)
	}
	if n := upstreamCount(s, upRateLimited); n != 300-config.DefaultRelayPerClientPerHour {
		t.Errorf("fallback_rate_limited counted %v", n)
	}
	if n := strings.Count(logs.String(), "relayed sign-ins over the limit"); n != 1 {
		t.Errorf("%d log lines about the limit for one client, want 1:\n%s", n, logs.String())
	}

	// Many clients, one address: the address's bucket holds.
	for i := range 300 {
		askPOXFrom(s, "ceo@contoso.com", fmt.Sprintf("Basic guess%d", i), fmt.Sprintf("203.0.113.%d", i%250))
	}
	if n := distinct(); n != config.DefaultRelayPerAccountPerHour {
		t.Errorf("one address had %d distinct credentials relayed, want its burst of %d", n, config.DefaultRelayPerAccountPerHour)
	}
	if strings.Contains(logs.String(), "guess") || strings.Contains(logs.String(), "pw1") {
		t.Errorf("credentials in the log:\n%s", logs.String())
	}
}

// The answer cache is bounded in bytes, and expired entries leave.
func TestUpstreamCacheBounded(t *testing.T) {
	big := func(addr string) string {
		return strings.Replace(consumerAnswer(addr), "<DisplayName>Jane</DisplayName>", "<DisplayName>"+strings.Repeat("J", 64<<10)+"</DisplayName>", 1)
	}
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": answerFor(big)})
	s := upstreamProxy(t, f, "limits: {upstream_cache_mb: 1}\n", io.Discard)
	now := time.Now()
	s.Now = func() time.Time { return now }
	for i := range 24 { // 24 answers of 64 KiB: more than the budget holds
		if w, _ := askPOXFrom(s, fmt.Sprintf("u%d@contoso.com", i), "", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "JJJJ") {
			t.Fatalf("answer %d: %d", i, w.Code)
		}
		if n := s.cache.size(); n > 1<<20 {
			t.Fatalf("the cache holds %d bytes, over its 1 MiB budget", n)
		}
	}
	if s.cache.size() == 0 {
		t.Fatal("nothing was cached")
	}
	// Still cached a moment later; gone after the TTL, at the next use.
	hits := f.hits["upstream.example"].Load()
	askPOXFrom(s, "u23@contoso.com", "", "")
	if f.hits["upstream.example"].Load() != hits {
		t.Error("the newest answer was not served from the cache")
	}
	now = now.Add(upstreamCacheTTL)
	if _, ok := s.cache.get("nobody", now); ok || s.cache.size() != 0 {
		t.Errorf("after the TTL the cache still holds %d bytes", s.cache.size())
	}
}

// Consumer hosts in disguise are found as a client would read them, and
// replaced or refused: never passed on as upstream=ok.
func TestUpstreamDisguisedConsumerHosts(t *testing.T) {
	business := consumerAnswer("jane@contoso.com")
	for _, r := range []string{"imap-mail.outlook.com", "smtp-mail.outlook.com", "pop-mail.outlook.com", "https://s.outlook.com", "https://m.hotmail.com"} {
		business = strings.ReplaceAll(business, r, map[string]string{"imap-mail.outlook.com": "outlook.office365.com", "smtp-mail.outlook.com": "smtp.office365.com",
			"pop-mail.outlook.com": "outlook.office365.com", "https://s.outlook.com": "https://outlook.office365.com", "https://m.hotmail.com": "https://outlook.office365.com"}[r])
	}
	business = strings.ReplaceAll(business, "<Server>s.outlook.com</Server>", "<Server>outlook.office365.com</Server>")
	if h := consumerHostIn(business); h != "" {
		t.Fatalf("the clean answer names %s", h)
	}
	for _, tc := range []struct{ from, to string }{
		{"<Server>outlook.office365.com</Server><Port>993</Port>", "<Server>ｉｍａｐ-mail.outlook.com</Server><Port>993</Port>"},
		{"<Server>smtp.office365.com</Server>", "<Server>smtp-mail%2eoutlook.com</Server>"},
		{"<Server>outlook.office365.com</Server><Port>995</Port>", "<Server>pop-mail.<b/>outlook.com</Server><Port>995</Port>"},
		{"<Type>EXCH</Type><Server>outlook.office365.com</Server>", "<Type>EXCH</Type><Server>s\u2024outlook.com</Server>"},
		{"<EwsUrl>https://outlook.office365.com/EWS/Exchange.asmx</EwsUrl>", "<EwsUrl>https://s%2Eoutlook.com/EWS/Exchange.asmx</EwsUrl>"},
	} {
		answer := strings.Replace(business, tc.from, tc.to, 1)
		if answer == business {
			t.Fatalf("%q is not in the answer", tc.from)
		}
		f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": xmlHandler(answer)})
		var logs bytes.Buffer
		s := upstreamProxy(t, f, "", &logs)
		w, _ := askPOX(s, "")
		body := w.Body.String()
		// Every disguise ends in outlook.com; the business hosts are office365.com.
		if config.MentionsConsumerHost(body) || consumerHostIn(body) != "" || strings.Contains(body, "outlook.com") {
			t.Errorf("%s: passed on:\n%s", tc.to, body)
		}
		if n := upstreamCount(s, upOK); n != 0 {
			t.Errorf("%s: counted upstream=ok", tc.to)
		}
		if p, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil || len(p.Servers) == 0 {
			t.Errorf("%s: the answer is not a usable one: %v\n%s", tc.to, err, body)
		}
	}
}

// What goes upstream is a request built from the parsed fields, never the
// client's body; a request about two addresses is refused before any
// upstream is asked; an answer is served and kept only when it is about
// the address asked.
func TestUpstreamRequestIsOurs(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent = append(sent, string(body))
		mu.Unlock()
		// An upstream that answers for the first address it finds.
		addr := regexp.MustCompile(`<EMailAddress>([^<]*)<`).FindStringSubmatch(string(body))
		answer := consumerAnswer(addr[1])
		switch {
		case strings.HasPrefix(addr[1], "other-answer"):
			answer = consumerAnswer("victim@contoso.com")
		case strings.HasPrefix(addr[1], "nameless"):
			answer = regexp.MustCompile(`<User>.*</User>`).ReplaceAllString(answer, "")
		}
		xmlHandler(answer)(w, r)
	}})
	s := upstreamProxy(t, f, "", io.Discard)
	ask := func(body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(body))
		r.Host = "autodiscover.contoso.com"
		w := httptest.NewRecorder()
		s.HTTPSHandler().ServeHTTP(w, r)
		return w
	}

	twoAddresses := `<?xml version="1.0"?><!DOCTYPE Autodiscover [<!ENTITY x "y">]><Autodiscover xmlns="` + reqOutlook + `"><Request>` +
		`<EMailAddress>victim@contoso.com</EMailAddress><EMailAddress>attacker@contoso.com</EMailAddress>` +
		`<AcceptableResponseSchema>` + respOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`
	twoRequests := `<Autodiscover xmlns="` + reqOutlook + `"><Request><EMailAddress>victim@contoso.com</EMailAddress></Request>` +
		`<Request><EMailAddress>attacker@contoso.com</EMailAddress></Request></Autodiscover>`
	for name, body := range map[string]string{"two addresses": twoAddresses, "two requests": twoRequests} {
		if w := ask(body); !strings.Contains(w.Body.String(), "<ErrorCode>600</ErrorCode>") {
			t.Errorf("%s: not error 600:\n%s", name, w.Body)
		}
	}
	if len(sent) != 0 {
		t.Fatalf("a request about two addresses reached the upstream: %q", sent)
	}

	dressed := `<?xml version="1.0"?><!DOCTYPE Autodiscover [<!ELEMENT Autodiscover ANY>]><?pi data?><!-- note -->` +
		`<Autodiscover xmlns="` + reqOutlook + `"><Request><Extra>x</Extra><EMailAddress>Jane@CONTOSO.com</EMailAddress>` +
		`<AcceptableResponseSchema>` + respOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`
	if w := ask(dressed); !strings.Contains(w.Body.String(), "<AutoDiscoverSMTPAddress>Jane@contoso.com</AutoDiscoverSMTPAddress>") {
		t.Errorf("answer:\n%s", w.Body)
	}
	want, _ := xmlschema.Request{Namespace: reqOutlook, EMailAddress: "Jane@contoso.com", AcceptableResponseSchema: respOutlook}.Document().WriteToBytes()
	if len(sent) != 1 || sent[0] != string(want) {
		t.Errorf("the upstream was sent %q, want only the request built from the parsed fields:\n%s", sent, want)
	}
	if w := ask(dressed); w.Code != 200 || len(sent) != 1 {
		t.Errorf("the same request again was not answered from the cache (%d requests upstream)", len(sent))
	}

	// An answer about another address than the one asked: the local
	// answer, and nothing kept that a later request for either could get.
	other := poxBody(reqOutlook, "other-answer@contoso.com", respOutlook)
	for range 2 {
		w := ask(other)
		if strings.Contains(w.Body.String(), "victim@") || !strings.Contains(w.Body.String(), "other-answer@contoso.com") {
			t.Errorf("an answer about another address reached the client:\n%s", w.Body)
		}
	}
	if len(sent) != 3 || upstreamCount(s, upInvalid) != 2 {
		t.Errorf("%d requests upstream (want 3: the other answer was not kept), fallback_invalid %v", len(sent), upstreamCount(s, upInvalid))
	}

	// An answer that names no address is served, and not kept.
	nameless := poxBody(reqOutlook, "nameless@contoso.com", respOutlook)
	for range 2 {
		if w := ask(nameless); !strings.Contains(w.Body.String(), "outlook.office365.com") || strings.Contains(w.Body.String(), "<User>") {
			t.Errorf("answer that names no address:\n%s", w.Body)
		}
	}
	if len(sent) != 5 {
		t.Errorf("%d requests upstream, want 5: an answer that names no address is not kept", len(sent))
	}
}

// Redirects are followed under the proxy's own rules: redirectAddr asks
// again about the new address (and its answer is about that address), an
// HTTP 302 and a redirectUrl to an allowed host are followed, and past
// maxUpstreamHops distinct hops the local answer is served.
func TestUpstreamRedirectsAndHopLimit(t *testing.T) {
	var f *fakeUpstreams
	var mu sync.Mutex
	var asked []string
	f = startUpstreams(t, map[string]http.HandlerFunc{
		"upstream.example": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			req, _ := xmlschema.ParseRequest(body)
			mu.Lock()
			asked = append(asked, req.EMailAddress)
			mu.Unlock()
			switch {
			case req.EMailAddress == "jane@contoso.com":
				xmlHandler(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><AccountType>email</AccountType><Action>redirectAddr</Action><RedirectAddr>jane.doe@contoso.com</RedirectAddr></Account></Response></Autodiscover>`)(w, r)
			case strings.HasPrefix(req.EMailAddress, "hop"):
				// A new target every time: never a loop, always one more hop.
				http.Redirect(w, r, fmt.Sprintf("%s/hop%d", f.url["other.example"], len(asked)), http.StatusFound)
			default:
				xmlHandler(consumerAnswer(req.EMailAddress))(w, r)
			}
		},
		"other.example": func(w http.ResponseWriter, r *http.Request) {
			redirectTo(f.url["upstream.example"]+"/autodiscover/autodiscover.xml?"+r.URL.Path[1:])(w, r)
		},
	})
	s := upstreamProxy(t, f, "      redirect_hosts: [other.example]\n", io.Discard)

	w, _ := askPOX(s, "")
	if !strings.Contains(w.Body.String(), "<AutoDiscoverSMTPAddress>jane.doe@contoso.com</AutoDiscoverSMTPAddress>") || upstreamCount(s, upRewritten) != 1 {
		t.Errorf("redirectAddr was not followed to the new address (asked %v):\n%s", asked, w.Body)
	}

	w, _ = askPOXFrom(s, "hop@contoso.com", "", "")
	if p, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil || !reflect.DeepEqual(p.Servers, m365("hop@contoso.com")) {
		t.Errorf("past the hops, not the local answer (%v):\n%s", err, w.Body)
	}
	if upstreamCount(s, upLoop) != 1 {
		t.Errorf("past %d hops: fallback_loop %v (asked %v)", maxUpstreamHops, upstreamCount(s, upLoop), asked)
	}
}
