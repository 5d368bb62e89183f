package autodiscover

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// askSOAP posts body to the SOAP endpoint.
func askSOAP(s *Server, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/autodiscover/autodiscover.svc", strings.NewReader(body))
	r.Host = "autodiscover.contoso.com"
	w := httptest.NewRecorder()
	s.HTTPSHandler().ServeHTTP(w, r)
	return w
}

// definedNames is every setting name Exchange defines, sorted.
func definedNames() []string {
	var names []string
	for n := range definedSettings {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// The worst SOAP request the cost model lets through, within the 64 KiB
// body cap: 100 users with the longest addresses, every defined setting
// and the most unknown ones at the longest length. Its answer is within
// maxSOAPAnswer, and is an answer, not an error.
func TestSOAPWorstAnswer(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	var users []string
	for i := range maxSOAPUsers {
		local := strings.Repeat("a", 62) + string(rune('a'+i/26)) + string(rune('a'+i%26))
		users = append(users, local+"@northwind.example") // a domain with every protocol
	}
	names := definedNames()
	for i := range maxUnknownSettings {
		names = append(names, strings.Repeat("X", maxSettingName-2)+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	body := soapBody("GetUserSettings", users, names...)
	if len(body) > maxPOXBody {
		t.Fatalf("the worst request is %d bytes, over the %d-byte body cap", len(body), maxPOXBody)
	}
	w := askSOAP(s, body)
	a, err := clientcheck.ReadSOAP(w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if a.ErrorCode != "NoError" || len(a.Users) != maxSOAPUsers {
		t.Fatalf("the worst request got %s with %d users, want an answer for %d", a.ErrorCode, len(a.Users), maxSOAPUsers)
	}
	t.Logf("worst SOAP answer: %d bytes for a %d-byte request", w.Body.Len(), len(body))
	if w.Body.Len() > maxSOAPAnswer {
		t.Errorf("the worst answer is %d bytes, over maxSOAPAnswer %d", w.Body.Len(), maxSOAPAnswer)
	}
}

// Setting names: repeats are answered once; past maxUnknownSettings names
// nobody defines, or with a name longer than any, the request is
// InvalidRequest, as Exchange answers a request it will not serve.
func TestSOAPSettingNamesBounded(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	settingName := regexp.MustCompile(`<(?:SettingName|Name)>([^<]*)<`)

	var repeated []string
	for range 1500 / 2 { // as many as the 64 KiB body holds
		repeated = append(repeated, "CasVersion", "X")
	}
	w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, repeated...))
	var got []string
	for _, m := range settingName.FindAllStringSubmatch(w.Body.String(), -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"CasVersion", "X"}) {
		t.Errorf("1,500 repeats of two names answered as %d entries: %v", len(got), got)
	}

	invalid := func(what string, names ...string) {
		t.Helper()
		w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, names...))
		a, err := clientcheck.ReadSOAP(w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if a.ErrorCode != "InvalidRequest" || len(a.Users) != 0 {
			t.Errorf("%s: %s with %d users, want InvalidRequest", what, a.ErrorCode, len(a.Users))
		}
	}
	var unknown []string
	for i := range maxUnknownSettings + 1 {
		unknown = append(unknown, "Unknown"+string(rune('A'+i)))
	}
	invalid("one unknown name too many", unknown...)
	invalid("a name longer than any", "UserDisplayName", strings.Repeat("X", maxSettingName+1))
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, append(definedNames(), unknown[:maxUnknownSettings]...)...)); !strings.Contains(w.Body.String(), "<ErrorCode>NoError</ErrorCode>") {
		t.Errorf("every defined name and %d unknown ones: not answered\n%.400s", maxUnknownSettings, w.Body)
	}
}

// Answers share a budget of bytes: while others hold it, a request waits,
// then gets 503 with Retry-After; answers over largeAnswer never take the
// quarter kept for ordinary answers.
func TestAnswerBudget(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	budget := int64(s.Config().Limits.AnswerMemoryBytes)
	b := s.answerMemory

	var large []func()
	for {
		release, ok := b.acquire(soon(t), 2<<20)
		if !ok {
			break
		}
		large = append(large, release)
	}
	if held := int64(len(large)) * 2 << 20; held > budget/4*3 || held < budget/4*3-2<<20 {
		t.Errorf("large answers hold %d of %d bytes, want about three quarters", held, budget)
	}
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName")); w.Code != http.StatusOK {
		t.Errorf("an ordinary answer while large ones hold their share: %d", w.Code)
	}

	var small []func()
	for {
		release, ok := b.acquire(soon(t), largeAnswer)
		if !ok {
			break
		}
		small = append(small, release)
	}
	if held := int64(len(large))*2<<20 + int64(len(small))*largeAnswer; held != budget {
		t.Errorf("%d of %d bytes could be taken in all", held, budget)
	}
	w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName"))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("with the budget full: %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	for _, release := range append(large, small...) {
		release()
	}
	if w := askSOAP(s, soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName")); w.Code != http.StatusOK {
		t.Errorf("after the budget was given back: %d", w.Code)
	}
}

// soon is a context that ends soon: acquire takes what is free now, or
// nothing after a short wait (the result does not depend on its length).
func soon(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// A full limiter table makes room by forgetting the bucket used least
// recently: a new key always gets a bucket, and a key in use keeps its own.
func TestLimiterTableEvictsLeastRecent(t *testing.T) {
	var tb limiterTable
	now := time.Now()
	active := tb.bucket("active", 1.0/3600, 2)
	active.AllowN(now, 2) // spent
	for i := range maxLimiterKeys * 2 {
		tb.bucket(fmt.Sprint("flood", i), 1.0/3600, 2)
		if i%1000 == 0 {
			tb.bucket("active", 1.0/3600, 2) // still in use: moved to the front
		}
	}
	if len(tb.m) != maxLimiterKeys || tb.order.Len() != maxLimiterKeys {
		t.Errorf("the table holds %d keys (list %d), want %d", len(tb.m), tb.order.Len(), maxLimiterKeys)
	}
	if b := tb.bucket("active", 1.0/3600, 2); b != active || b.TokensAt(now) >= 1 {
		t.Error("a key in use lost its spent bucket to the flood")
	}
	if b := tb.bucket("newcomer", 1.0/3600, 2); b.TokensAt(now) != 2 {
		t.Error("a new key in a full table did not get a full bucket")
	}
	if _, ok := tb.m["flood0"]; ok {
		t.Error("the least recently used key was kept")
	}
}

// Relayed sign-ins past a full client table: 12,000 clients (behind a
// trusted proxy) sign in once each, and a new client is relayed within
// its own limit; the server-wide ceiling caps what all of them get,
// whatever their number.
func TestRelayLimitsFailOpenForNewClients(t *testing.T) {
	var mu sync.Mutex
	relayed := map[string]int{}
	f := startUpstreams(t, map[string]http.HandlerFunc{"upstream.example": func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		relayed[r.Header.Get("Authorization")]++
		mu.Unlock()
		w.Header().Add("WWW-Authenticate", "Basic")
		w.WriteHeader(http.StatusUnauthorized)
	}})
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for k, v := range relayed {
			if strings.HasPrefix(k, prefix) {
				n += v
			}
		}
		return n
	}
	// httptest's peer is trusted; the clock stands still, so that no
	// bucket refills while the requests are made.
	trust := func(s *Server) {
		s.Config().TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		s.Now = func() time.Time { return beforeCutoff }
	}
	ip := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

	s := upstreamProxy(t, f, "      relay_auth: true\nlimits: {relay_per_minute: 1000000, relay_per_account_per_hour: 100000}\n", io.Discard)
	trust(s)
	const flood = 12000
	for i := range flood {
		askPOXFrom(s, fmt.Sprintf("user%d@contoso.com", i%500), "Basic flood", ip(i))
	}
	if n := count("Basic flood"); n != flood {
		t.Fatalf("%d of %d first sign-ins from distinct clients were relayed", n, flood)
	}
	for i := range 30 {
		askPOXFrom(s, "jane@contoso.com", fmt.Sprintf("Basic new%d", i), "203.0.113.9")
	}
	if n := count("Basic new"); n != config.DefaultRelayPerClientPerHour {
		t.Errorf("a new client after %d others had %d sign-ins relayed, want its own limit of %d", flood, n, config.DefaultRelayPerClientPerHour)
	}

	s = upstreamProxy(t, f, "      relay_auth: true\nlimits: {relay_per_minute: 50, relay_per_account_per_hour: 100000}\n", io.Discard)
	trust(s)
	for i := range 500 {
		askPOXFrom(s, fmt.Sprintf("user%d@contoso.com", i), "Basic ceiling", ip(i))
	}
	if n := count("Basic ceiling"); n != 50 {
		t.Errorf("500 clients had %d sign-ins relayed in all, want the server-wide 50 a minute", n)
	}
}

// Per-client limits key an IPv6 client by its /64 (client_ipv6_prefix):
// addresses of one /64 share one page limit, another /64 has its own.
func TestIPv6ClientsByPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   int
	}{{"", 30}, {"limits: {client_ipv6_prefix: 128}\n", 60}} {
		cfg, err := config.Parse([]byte(tc.prefix+"trusted_proxies: [192.0.2.0/24]\ndomains:\n  - {name: contoso.com, provider: microsoft365}\n"), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.Log = slog.New(slog.DiscardHandler)
		s.Now = func() time.Time { return beforeCutoff } // no bucket refills meanwhile
		served := func(client string) bool {
			r := httptest.NewRequest("GET", "/setup?email=jane%40contoso.com", nil)
			r.Host = "autodiscover.contoso.com"
			r.Header.Set("X-Forwarded-For", client)
			w := httptest.NewRecorder()
			s.HTTPSHandler().ServeHTTP(w, r)
			return w.Code == http.StatusOK
		}
		n := 0
		for i := range 60 {
			if served(fmt.Sprintf("2001:db8:1:2::%x", i+1)) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%q: %d of 60 pages served to 60 addresses of one /64, want %d", tc.prefix, n, tc.want)
		}
		if !served("2001:db8:1:3::1") {
			t.Errorf("%q: another /64 was refused", tc.prefix)
		}
	}
}

// A request framed with Transfer-Encoding over HTTP/1.1 is answered with
// Connection: close: whatever a front end made of its framing, nothing
// after it on the connection is read as another request (RFC 9112 §6.1).
func TestTransferEncodingClosesConnection(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	smuggled := "GET /mail/config-v1.1.xml?emailaddress=jane@contoso.com HTTP/1.1\r\nHost: autoconfig.contoso.com\r\n\r\n"
	fmt.Fprintf(c, "POST /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.contoso.com\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", 5+len(smuggled), smuggled)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if !resp.Close {
		t.Error("the answer to a request with Transfer-Encoding does not close the connection")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("a second request on the connection was answered: %s", resp.Status)
	}
}

// The item caps: no user or domain, or more than maxSOAPUsers, is
// InvalidRequest; an unknown domain in GetDomainSettings is InvalidDomain.
func TestSOAPItemLimits(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	read := func(body string) *clientcheck.SOAP {
		t.Helper()
		w := askSOAP(s, body)
		a, err := clientcheck.ReadSOAP(w.Code, w.Header().Get("Content-Type"), w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	var users, domains []string
	for i := range maxSOAPUsers + 1 {
		users = append(users, fmt.Sprintf("u%d@contoso.com", i))
		domains = append(domains, "contoso.com")
	}
	for name, body := range map[string]string{
		"no user":        soapBody("GetUserSettings", nil, "UserDisplayName"),
		"101 users":      soapBody("GetUserSettings", users, "UserDisplayName"),
		"no domain":      soapBody("GetDomainSettings", nil, "ExternalEwsUrl"),
		"101 domains":    soapBody("GetDomainSettings", domains, "ExternalEwsUrl"),
		"no setting":     soapBody("GetUserSettings", []string{"jane@contoso.com"}),
		"100 users fine": soapBody("GetUserSettings", users[:maxSOAPUsers], "UserDisplayName"),
	} {
		a := read(body)
		want := "InvalidRequest"
		if name == "100 users fine" {
			want = "NoError"
		}
		if a.ErrorCode != want {
			t.Errorf("%s: %s, want %s", name, a.ErrorCode, want)
		}
	}
	a := read(soapBody("GetDomainSettings", []string{"contoso.com", "unknown.example"}, "ExternalEwsUrl"))
	if len(a.Users) != 2 || a.Users[1].ErrorCode != "InvalidDomain" {
		t.Errorf("an unknown domain: %+v, want InvalidDomain", a.Users)
	}
}
