package autodiscover

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/beevik/etree"
)

// everyDialect asks every dialect for addr's settings.
func everyDialect(addr string) []exchange {
	ok := http.StatusOK
	return []exchange{
		{method: "POST", target: "/autodiscover/autodiscover.xml", body: poxBody(reqOutlook, addr, respOutlook), status: ok},
		{method: "POST", target: "/autodiscover/autodiscover.xml", body: poxBody(reqOutlook, addr, respOutlook), status: ok,
			header: http.Header{outlookHeader: {"1"}, "X-ClientCanHandle": {"Negotiate,ExHttpInfo"}}},
		{method: "POST", target: "/autodiscover/autodiscover.xml", body: poxBody(reqMobile, addr, respMobile), status: ok},
		{method: "GET", target: "/autodiscover/autodiscover.json?Protocol=ActiveSync&Email=" + addr},
		{method: "GET", target: "/autodiscover/autodiscover.json?Protocol=Ews&Email=" + addr},
		{method: "GET", target: "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1&Email=" + addr},
		{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=" + addr, status: ok},
		{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=" + addr, status: ok, now: afterCutoff},
		{method: "POST", target: "/autodiscover/autodiscover.svc", status: ok, body: soapBody("GetUserSettings", []string{addr}, "ExternalEwsUrl",
			"ExternalImap4Connections", "ExternalPop3Connections", "ExternalSmtpConnections", "UserDisplayName")},
		{method: "POST", target: "/autodiscover/autodiscover.svc", status: ok, body: soapBody("GetDomainSettings", []string{addr[strings.IndexByte(addr, '@')+1:]}, "ExternalEwsUrl")},
	}
}

var hostToken = regexp.MustCompile(`(?i)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+`)

// consumerHostIn returns the first consumer Outlook.com/Hotmail host name
// in body: whole host names only (autodiscover-s.outlook.com is business,
// s.outlook.com consumer).
func consumerHostIn(body string) string {
	for _, tok := range hostToken.FindAllString(body, -1) {
		h := strings.ToLower(tok)
		if slices.Contains(config.ConsumerHosts(), h) {
			return h
		}
		for _, suffix := range []string{"hotmail.com", "live.com", "olc.protection.outlook.com"} {
			if h == suffix || strings.HasSuffix(h, "."+suffix) {
				return h
			}
		}
	}
	return ""
}

// The product's promise: no answer for a business domain, in any dialect,
// names a consumer Outlook.com/Hotmail host.
func TestNoConsumerHostInAnyAnswer(t *testing.T) {
	for _, bad := range []string{"<Server>smtp-mail.outlook.com</Server>", "https://s.outlook.com/x", "<hostname>pop3.live.com</hostname>", "x.olc.protection.outlook.com"} {
		if consumerHostIn(bad) == "" {
			t.Fatalf("consumerHostIn misses %s: the check below would prove nothing", bad)
		}
	}
	if h := consumerHostIn("https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml"); h != "" {
		t.Fatalf("consumerHostIn flags the business host autodiscover-s.outlook.com as %s", h)
	}
	s := newTestServer(t, beforeCutoff, io.Discard)
	for _, d := range s.Config().Domains {
		for _, name := range d.Names() {
			for _, e := range everyDialect("user@" + name) {
				if !e.now.IsZero() {
					s.Now = func() time.Time { return e.now }
				}
				w := e.serve(s)
				s.Now = func() time.Time { return beforeCutoff }
				if e.status != 0 && w.Code != e.status {
					t.Errorf("%s %s: status %d", e.method, e.target, w.Code)
				}
				if h := consumerHostIn(w.Body.String()); h != "" {
					t.Errorf("%s %s (%s) answers consumer host %s:\n%s", e.method, e.target, d.Provider.Name, h, w.Body)
				}
			}
		}
	}
}

// Presets themselves carry no consumer host, whatever the tests' config.
func TestPresetsHaveNoConsumerHost(t *testing.T) {
	for _, name := range []string{config.ProviderMicrosoft365, config.ProviderGoogleWorkspace} {
		p, _ := config.LookupPreset(name)
		for _, s := range []*config.Server{p.IMAP, p.POP3, p.SMTP} {
			if config.IsConsumerHost(s.Host) {
				t.Errorf("%s preset hands out consumer host %s", name, s.Host)
			}
		}
		for _, u := range []string{p.ActiveSyncURL, p.EWSURL, p.OutlookRedirectURL} {
			if h := consumerHostIn(u); h != "" {
				t.Errorf("%s preset URL %s is a consumer host", name, u)
			}
		}
	}
}

// Credentials and addresses never reach the log: requests carry a Basic
// password (as Thunderbird sends unasked), a bearer token and a cookie.
func TestCredentialsNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, beforeCutoff, &logs)
	const password = "Sup3r-Secret-Passw0rd"
	basic := base64.StdEncoding.EncodeToString([]byte("jane@contoso.com:" + password))
	secrets := []string{password, basic, "bearer-token-value", "session-cookie-value", "jane@contoso.com", "jane%40contoso.com"}
	for _, e := range append(everyDialect("jane@contoso.com"), exchanges()...) {
		e.header = http.Header{
			"Authorization": {"Basic " + basic},
			"Cookie":        {"session=session-cookie-value"},
			"X-Auth":        {"Bearer bearer-token-value"},
		}
		e.serve(s)
		e.http = true
		e.serve(s)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the search below would prove nothing")
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, sec := range secrets {
			if strings.Contains(line, sec) {
				t.Errorf("log line contains %q: %s", sec, line)
			}
		}
	}
	if !strings.Contains(logs.String(), "domain=contoso.com") || !strings.Contains(logs.String(), "outcome=settings") {
		t.Errorf("request lines lack domain and outcome:\n%.500s", logs.String())
	}
}

// Addresses with XML-special characters come back escaped, and clients read
// back exactly the address asked for.
func TestAddressIsEscaped(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	for _, local := range []string{"o'brien&co", `a"b`, "x<y>z", "ünïcode"} {
		escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(local)
		if _, err := config.ParseAddress(local + "@contoso.com"); err != nil {
			continue // not an address we accept: covered by the bad-address cases
		}
		for _, body := range []string{poxBody(reqOutlook, escaped+"@contoso.com", respOutlook), poxBody(reqMobile, escaped+"@contoso.com", respMobile)} {
			e := exchange{method: "POST", target: "/autodiscover/autodiscover.xml", body: body}
			w := e.serve(s)
			p, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes())
			if err != nil {
				t.Fatalf("%q: %v\n%s", local, err, w.Body)
			}
			if p.Address != local+"@contoso.com" {
				t.Errorf("clients read address %q, want %q", p.Address, local+"@contoso.com")
			}
		}
	}
}

// A reload swaps the whole config at once: every answer during concurrent
// reloads is byte-identical to one config's answer, never a mix.
func TestLoadIsAtomic(t *testing.T) {
	parse := func(display string) *config.Config {
		c, err := config.Parse([]byte("domains:\n  - name: contoso.com\n    provider: microsoft365\n    display_name: "+display+"\n"), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := parse("Config A"), parse("Config B")
	s, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Now = func() time.Time { return beforeCutoff }
	e := exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@contoso.com"}
	bodyA := e.serve(s).Body.String()
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	bodyB := e.serve(s).Body.String()
	if bodyA == bodyB {
		t.Fatal("the two configs answer the same: the test would prove nothing")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Load([]*config.Config{a, b}[i%2])
		}
	}()
	for range 2000 {
		if got := e.serve(s).Body.String(); got != bodyA && got != bodyB {
			t.Fatalf("answer mixes configs:\n%s", got)
		}
	}
	close(stop)
	wg.Wait()
}

// Methods a route does not take get 405, never a 500.
func TestMethodNotAllowed(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	for _, m := range []string{"PUT", "DELETE", "PATCH"} {
		for _, target := range []string{"/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.json", "/mail/config-v1.1.xml"} {
			w := exchange{method: m, target: target, host: "autodiscover.contoso.com"}.serve(s)
			if w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, target, w.Code)
			}
		}
	}
}

// Paths match case-insensitively; a path that would need cleaning matches
// nothing (no redirect built from the request line).
func TestRoutingPaths(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/mail/config-v1.1.xml?emailaddress=jane@contoso.com", http.StatusOK},
		{"GET", "/MAIL/Config-v1.1.xml?emailaddress=jane@contoso.com", http.StatusOK},
		{"POST", "/Autodiscover/Autodiscover.xml", http.StatusOK}, // exchangelib's spelling
		{"GET", "/AutoDiscover/AutoDiscover.json/V1.0/jane@contoso.com?Protocol=ActiveSync", http.StatusOK},
		{"GET", "/mail//config-v1.1.xml?emailaddress=jane@contoso.com", http.StatusNotFound},
		{"GET", "/mail/./config-v1.1.xml", http.StatusNotFound},
		{"GET", "/x/../setup", http.StatusNotFound},
		{"GET", "/no-such-page", http.StatusNotFound},
		{"GET", "/mail/", http.StatusNotFound},
		{"DELETE", "/setup", http.StatusMethodNotAllowed},
	} {
		w := exchange{method: tc.method, target: tc.target, host: "autodiscover.contoso.com"}.serve(s)
		if w.Code != tc.status || w.Header().Get("Location") != "" {
			t.Errorf("%s %s: %d Location %q, want %d and none", tc.method, tc.target, w.Code, w.Header().Get("Location"), tc.status)
		}
	}
}

// Routing lower-cases the path but an address in its last segment.
func TestRoutingPath(t *testing.T) {
	for in, want := range map[string]string{
		"/Autodiscover/Autodiscover.xml":                        "/autodiscover/autodiscover.xml",
		"/MobileConfig/Jane.Doe@Contoso.com.mobileconfig":       "/mobileconfig/Jane.Doe@Contoso.com.mobileconfig",
		"/autodiscover/autodiscover.JSON/v1.0/Jane@Contoso.com": "/autodiscover/autodiscover.json/v1.0/Jane@Contoso.com",
		"": "",
	} {
		if got := routingPath(in); got != want {
			t.Errorf("routingPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzPOX: whatever the body, the answer is HTTP 200 with a document the
// clients can read.
func FuzzPOX(f *testing.F) {
	for _, e := range exchanges() {
		if e.method == "POST" && len(e.body) < 4096 {
			f.Add([]byte(e.body))
		}
	}
	f.Add([]byte(poxBody(reqOutlook, "a@b.c\x00", respOutlook)))
	f.Add([]byte(`<a:Autodiscover xmlns:a="` + reqOutlook + `"><a:Request><a:EMailAddress>jane@contoso.com</a:EMailAddress></a:Request></a:Autodiscover>`))
	s := newTestServer(f, beforeCutoff, io.Discard)
	h := s.HTTPSHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if _, err := clientcheck.ReadPOX(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil {
			t.Fatalf("answer to %q unreadable: %v\n%s", body, err, w.Body)
		}
	})
}

// FuzzSOAP: whatever the body, the answer is an EWS client can read: 200
// with settings, 500 with a SOAP Fault (WS-I BP 1.1 R1126), or, for a body
// that is not XML, a plain-text 400.
func FuzzSOAP(f *testing.F) {
	for _, e := range exchanges() {
		if strings.HasSuffix(e.target, ".svc") {
			f.Add([]byte(e.body))
		}
	}
	s := newTestServer(f, beforeCutoff, io.Discard)
	h := s.HTTPSHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/autodiscover/autodiscover.svc", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		ct := w.Header().Get("Content-Type")
		if w.Code == http.StatusBadRequest {
			if !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("400 for %q is %s, want a plain-text reason", body, ct)
			}
			return
		}
		if w.Code != http.StatusOK && w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		// ReadSOAP takes a Fault only with 500 and an answer only with 200.
		if _, err := clientcheck.ReadSOAP(w.Code, ct, w.Body.Bytes()); err != nil {
			t.Fatalf("answer to %q unreadable: %v\n%s", body, err, w.Body)
		}
	})
}

// FuzzQueryParam: where url.ParseQuery has non-empty values for exactly
// the key, queryParam returns the first of them.
func FuzzQueryParam(f *testing.F) {
	for _, q := range []string{"Email=a%40b.c&Protocol=Ews", "email=x&Email=", "Email=&Email=y", "a=1;b=2&Email=z", "Email=%zz&Email=ok", "EMAIL=fold"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		vals, _ := url.ParseQuery(q)
		var want string
		for _, v := range vals["Email"] {
			if v != "" {
				want = v
				break
			}
		}
		if want == "" {
			return
		}
		if got := queryParam(q, "Email"); got != want {
			t.Fatalf("queryParam(%q) = %q, ParseQuery's first value is %q", q, got, want)
		}
	})
}

// Protocol names match case-insensitively, with Unicode case folding.
func TestV2Protocol(t *testing.T) {
	for _, tc := range []struct{ in, key, name string }{
		{"ActiveSync", protoActiveSync, "ActiveSync"},
		{"EWS", protoEws, "Ews"},
		{"autodiscoverv1", protoAutodiscoverV1, "AutodiscoverV1"},
		{"Active\u017Fync", protoActiveSync, "ActiveSync"}, // long s folds to s
		{"Rest", "", ""},
		{"", "", ""},
	} {
		key, name, ok := v2Protocol(tc.in)
		if key != tc.key || name != tc.name || ok != (tc.key != "") {
			t.Errorf("v2Protocol(%q) = %q %q %v, want %q %q", tc.in, key, name, ok, tc.key, tc.name)
		}
	}
}

// A domain's values are escaped once, at load: Thunderbird reads back the
// domain's display name exactly (autoconfig is the dialect that carries it).
func TestDomainValuesEscapedOnce(t *testing.T) {
	const display = `Smith & Sons "Mail" <Office> 'HQ'`
	s := serverFor(t, "domains:\n  - name: contoso.com\n    provider: microsoft365\n    display_name: '"+strings.ReplaceAll(display, "'", "''")+"'\n", &bytes.Buffer{})
	w := exchange{method: "GET", target: "/mail/config-v1.1.xml?emailaddress=jane@contoso.com"}.serve(s)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(w.Body.Bytes()); err != nil {
		t.Fatalf("%v\n%s", err, w.Body)
	}
	for _, path := range []string{"//displayName", "//displayShortName"} {
		if el := doc.FindElement(path); el == nil || el.Text() != display {
			t.Errorf("%s does not read %q:\n%s", path, display, w.Body)
		}
	}
}

// Setup pages and profiles are limited per client: past the budget, a page
// that says to wait; other clients are not held back.
func TestPageLimit(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	s.site.Load().cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // httptest's peer
	from := func(client, target string) *httptest.ResponseRecorder {
		return exchange{method: "GET", target: target, host: "autodiscover.contoso.com", header: http.Header{"X-Forwarded-For": {client}}}.serve(s)
	}
	budget := config.DefaultPagesPerClientPerMinute
	for i := range budget {
		target := "/setup?email=jane%40contoso.com"
		if i%2 == 1 {
			target = "/mobileconfig?email=jane%40contoso.com"
		}
		if w := from("198.51.100.1", target); w.Code != http.StatusOK {
			t.Fatalf("request %d of the budget: %d", i, w.Code)
		}
	}
	for _, target := range []string{"/setup?email=jane%40contoso.com", "/mobileconfig?email=jane%40contoso.com", "/"} {
		w := from("198.51.100.1", target)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "wait a minute") {
			t.Errorf("%s past the budget: %d Retry-After %q\n%s", target, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	// In the person's language, under the organisation's name.
	w := exchange{method: "GET", target: "/setup", host: "autodiscover.contoso.com",
		header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Accept-Language": {"fr-CA"}}}.serve(s)
	if b := w.Body.String(); w.Code != http.StatusTooManyRequests || !strings.Contains(b, `lang="fr"`) || !strings.Contains(b, "Veuillez patienter") ||
		!strings.Contains(b, "Contoso Ltd") || w.Header().Get("Content-Language") != "fr" {
		t.Errorf("the page past the limit in French: %d\n%s", w.Code, b)
	}
	if w := from("198.51.100.2", "/setup?email=jane%40contoso.com"); w.Code != http.StatusOK {
		t.Errorf("another client: %d", w.Code)
	}
	// The API answers are not the pages' budget.
	if w := from("198.51.100.1", "/autodiscover/autodiscover.json?Email=jane@contoso.com&Protocol=ActiveSync"); w.Code != http.StatusOK {
		t.Errorf("JSON from the limited client: %d", w.Code)
	}
}
