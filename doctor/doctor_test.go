package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/autodiscover"
	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/miekg/dns"
)

// Zone is what the loopback DNS server answers.
type Zone []string

// goodZone is contoso.com as the dns command writes it; brokenZone is
// fabrikam.com with the mistakes doctor exists to find.
var (
	goodZone = Zone{
		"autodiscover.contoso.com. 300 IN CNAME proxy.example.net.",
		"autoconfig.contoso.com. 300 IN CNAME proxy.example.net.",
		"_autodiscover._tcp.contoso.com. 300 IN SRV 0 0 443 autodiscover.contoso.com.",
		"_imaps._tcp.contoso.com. 300 IN SRV 0 1 993 outlook.office365.com.",
		"_pop3s._tcp.contoso.com. 300 IN SRV 0 1 995 outlook.office365.com.",
		"_submission._tcp.contoso.com. 300 IN SRV 0 1 587 smtp.office365.com.",
		"contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.",
		"proxy.example.net. 300 IN A 192.0.2.1",
	}
	brokenZone = Zone{
		"autodiscover.fabrikam.com. 300 IN CNAME autodiscover.outlook.com.",
		"_autodiscover._tcp.fabrikam.com. 300 IN SRV 0 0 443 autodiscover.outlook.com.",
		"_pop3s._tcp.fabrikam.com. 300 IN SRV 0 1 110 outlook.office365.com.",
		"_submission._tcp.fabrikam.com. 300 IN SRV 0 1 587 smtp-mail.outlook.com.",
		"fabrikam.com. 300 IN MX 10 fabrikam-com.olc.protection.outlook.com.",
	}
)

// rootZone is what every working resolver answers.
var rootZone = Zone{". 300 IN NS a.root-servers.net."}

// StartDNS serves zones on a loopback UDP port until the test ends and
// returns a resolver for it; with the root zone's name servers, unless
// bare.
func StartDNS(t testing.TB, zones ...Zone) *DNSClient {
	return startDNS(t, append(zones, rootZone)...)
}

func startDNS(t testing.TB, zones ...Zone) *DNSClient {
	t.Helper()
	records := map[string][]dns.RR{}
	for _, z := range zones {
		for _, line := range z {
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatal(err)
			}
			records[strings.ToLower(rr.Header().Name)] = append(records[strings.ToLower(rr.Header().Name)], rr)
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.ToLower(q.Question[0].Name)
		rrs, ok := records[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Question[0].Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return &DNSClient{Server: pc.LocalAddr().String()}
}

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Load("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func findings(fs []Finding, subject string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Subject == subject {
			out = append(out, f)
		}
	}
	return out
}

func TestCheckDNS(t *testing.T) {
	r := StartDNS(t, goodZone, brokenZone)
	cfg := loadConfig(t)
	good, _ := cfg.Lookup("contoso.com")
	broken, _ := cfg.Lookup("fabrikam.com")

	fs := CheckDNS(context.Background(), r, []*config.Domain{good}, "proxy.example.net")
	if len(fs) != 7 {
		t.Errorf("%d findings for contoso.com, want 7", len(fs))
	}
	for _, f := range fs {
		if f.Level != Pass {
			t.Errorf("good zone: %+v", f)
		}
	}

	fs = CheckDNS(context.Background(), r, []*config.Domain{broken}, "proxy.example.net")
	for subject, want := range map[string]struct {
		level Level
		text  string
	}{
		"autodiscover.fabrikam.com":       {Fail, "CNAME to autodiscover.outlook.com.: Outlook and older clients go to Microsoft"},
		"autoconfig.fabrikam.com":         {Fail, "missing"},
		"_autodiscover._tcp.fabrikam.com": {Fail, "points at autodiscover.outlook.com."},
		"_imaps._tcp.fabrikam.com":        {Warn, "missing (RFC 6186)"},
		"_pop3s._tcp.fabrikam.com":        {Fail, "port 110, not outlook.office365.com. port 995"},
		"_submission._tcp.fabrikam.com":   {Fail, "consumer Outlook.com host smtp-mail.outlook.com."},
		"fabrikam.com MX":                 {Fail, "marks the domain as consumer Outlook.com"},
	} {
		got := findings(fs, subject)
		if len(got) != 1 || got[0].Level != want.level || !strings.Contains(got[0].Message, want.text) || got[0].Fix == "" {
			t.Errorf("%s: %+v, want %s %q with a fix", subject, got, want.level, want.text)
		}
	}
	if f := findings(fs, "autodiscover.fabrikam.com"); len(f) == 1 && f[0].Fix != "make autodiscover.fabrikam.com a CNAME to proxy.example.net." {
		t.Errorf("fix %q", f[0].Fix)
	}
}

// The records the dns command writes are exactly what CheckDNS accepts.
func TestRecordsPassCheckDNS(t *testing.T) {
	cfg := loadConfig(t)
	var zone Zone
	for _, r := range Records(cfg, "proxy.example.net") {
		if r.RR != nil {
			zone = append(zone, r.RR.String())
		}
	}
	zone = append(zone,
		"contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.",
		"fabrikam.com. 300 IN MX 0 fabrikam-com.mail.protection.outlook.com.",
		"example.org. 300 IN MX 1 smtp.google.com.")
	r := StartDNS(t, zone)
	for _, f := range CheckDNS(context.Background(), r, cfg.Domains, "proxy.example.net") {
		if f.Level != Pass {
			t.Errorf("%+v", f)
		}
	}
}

func TestCheckHosts(t *testing.T) {
	cfg := loadConfig(t)
	fs := CheckHosts("testdata/hosts-clean", true, cfg.Domains)
	if len(fs) != 1 || fs[0].Level != Pass {
		t.Errorf("clean hosts file: %+v", fs)
	}
	fs = CheckHosts("testdata/hosts-stale", true, cfg.Domains)
	want := map[string]string{
		"outlook.office365.com":    "testdata/hosts-stale:3",
		"smtp.office365.com":       "testdata/hosts-stale:4",
		"autodiscover.outlook.com": "testdata/hosts-stale:4",
		"smtp-mail.outlook.com":    "testdata/hosts-stale:5",
		"autodiscover.contoso.com": "testdata/hosts-stale:6",
	}
	if len(fs) != len(want) {
		t.Errorf("%d findings, want %d: %+v", len(fs), len(want), fs)
	}
	for name, subject := range want {
		found := false
		for _, f := range fs {
			if f.Subject == subject && f.Level == Fail && strings.Contains(f.Message, "pins "+name+" ") && strings.Contains(f.Fix, "KB 972034") {
				found = true
			}
		}
		if !found {
			t.Errorf("no failure for %s at %s", name, subject)
		}
	}
	// The system's hosts file may be missing (a container); one the
	// operator named must be there.
	if fs := CheckHosts("testdata/no-such-file", false, cfg.Domains); len(fs) != 1 || fs[0].Level != Pass {
		t.Errorf("missing system hosts file: %+v", fs)
	}
	if fs := CheckHosts("testdata/no-such-file", true, cfg.Domains); len(fs) != 1 || fs[0].Level != Warn ||
		!strings.Contains(fs[0].Message, "no such file") || !strings.Contains(fs[0].Fix, "-hosts") {
		t.Errorf("missing hosts file given with -hosts: %+v", fs)
	}
}

// liveService runs the responder on a loopback TLS listener with a
// certificate for every host, and returns how to reach and trust it.
func liveService(t *testing.T, cfg *config.Config, h func(*autodiscover.Server) http.Handler) LiveOptions {
	return liveServiceFor(t, cfg, cfg.CertificateHosts(), h)
}

// liveServiceFor is liveService with a certificate for hosts alone: a
// name missing from it cannot be reached.
func liveServiceFor(t *testing.T, cfg *config.Config, hosts []string, h func(*autodiscover.Server) http.Handler) LiveOptions {
	t.Helper()
	cert, err := certs.SelfSigned(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := autodiscover.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Certificates = certs.NewStatic(cert, true)
	ts := httptest.NewUnstartedServer(h(s))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	return LiveOptions{Connect: ts.Listener.Addr().String(), Roots: roots}
}

func TestCheckLive(t *testing.T) {
	cfg := loadConfig(t)
	o := liveService(t, cfg, (*autodiscover.Server).HTTPSHandler)
	fs := CheckLive(context.Background(), cfg.Domains, o)
	// per m365 domain: 2 certificates, outlook soap apple mobilesync json, thunderbird; google without the ActiveSync pair.
	if want := 8 + 8 + 6; len(fs) != want {
		t.Errorf("%d findings, want %d", len(fs), want)
	}
	for _, f := range fs {
		if f.Level != Pass {
			t.Errorf("%+v", f)
		}
	}
	// A certificate near its end is a warning.
	o.Now = time.Now().Add(25 * 24 * time.Hour)
	if f := CheckLive(context.Background(), cfg.Domains[:1], o)[0]; f.Level != Warn || !strings.Contains(f.Message, "days") {
		t.Errorf("expiring certificate: %+v", f)
	}
	// A client that does not trust serve's development certificate fails,
	// and the fix names -insecure-dev.
	o.Roots, o.Now = x509.NewCertPool(), time.Time{}
	if f := CheckLive(context.Background(), cfg.Domains[:1], o)[0]; f.Level != Fail || !strings.Contains(f.Message, "certificate") || !strings.Contains(f.Fix, "-insecure-dev") {
		t.Errorf("untrusted development certificate: %+v", f)
	}
	// With -insecure-dev: the certificate a warning that says so, every
	// answer read.
	o.Insecure = true
	for i, f := range CheckLive(context.Background(), cfg.Domains[:1], o) {
		switch {
		case i == 0 && (f.Level != Warn || !strings.Contains(f.Message, "not verified (-insecure-dev)")):
			t.Errorf("-insecure-dev: %+v", f)
		case i > 0 && f.Level == Fail:
			t.Errorf("-insecure-dev: %+v", f)
		}
	}
}

// A domain that rightly offers no Apple profile (Google Workspace without
// password SMTP) is not failed for it; every probe carries doctor's own
// User-Agent.
func TestCheckLiveOnlyWhatIsOffered(t *testing.T) {
	cfg, err := config.Parse([]byte("domains:\n  - {name: litware.example, provider: google-workspace, smtp_password: \"off\"}\n"), "t.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	agents := map[string]int{}
	o := liveService(t, cfg, func(s *autodiscover.Server) http.Handler {
		h := s.HTTPSHandler()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			agents[r.UserAgent()]++
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	o.UserAgent = "autodiscover-proxy-doctor/test"
	for _, f := range CheckLive(context.Background(), cfg.Domains, o) {
		if f.Level != Pass || strings.HasSuffix(f.Subject, " apple") {
			t.Errorf("%+v", f)
		}
	}
	if len(agents) != 1 || agents["autodiscover-proxy-doctor/test"] == 0 {
		t.Errorf("probes sent User-Agents %v", agents)
	}
}

// Thunderbird's document must be found at autoconfig.<d> or on <d>'s
// /.well-known path; without either, a failure that says why.
func TestCheckLiveAutoconfig(t *testing.T) {
	cfg := loadConfig(t)
	d := cfg.Domains[0]
	var noAutoconfig []string
	for _, h := range cfg.CertificateHosts() {
		if !strings.HasPrefix(h, "autoconfig.") {
			noAutoconfig = append(noAutoconfig, h)
		}
	}
	o := liveServiceFor(t, cfg, noAutoconfig, (*autodiscover.Server).HTTPSHandler)
	fs := CheckLive(context.Background(), []*config.Domain{d}, o)
	var found bool
	for _, f := range fs {
		if f.Subject == "autoconfig."+d.Name {
			found = true
			if f.Level != Fail || !strings.Contains(f.Message, "falls back to Exchange Autodiscover") || !strings.Contains(f.Fix, "autoconfig."+d.Name) {
				t.Errorf("autoconfig missing: %+v", f)
			}
		}
	}
	if !found {
		t.Fatalf("no finding for autoconfig.%s: %+v", d.Name, fs)
	}
	// The apex serving /.well-known is enough.
	o = liveServiceFor(t, cfg, append(noAutoconfig, d.Name), (*autodiscover.Server).HTTPSHandler)
	for _, f := range CheckLive(context.Background(), []*config.Domain{d}, o) {
		if f.Level != Pass {
			t.Errorf("with /.well-known on the apex: %+v", f)
		}
	}
}

func TestCheckConfigPlainText(t *testing.T) {
	cfg, err := config.Parse([]byte("domains:\n  - name: a.example\n    provider: custom\n    imap: {host: mail.a.example, port: 143, tls: none}\n    smtp: {host: mail.a.example, port: 587, tls: starttls}\n"), "t.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	fs := CheckConfig(cfg.Domains)
	if len(fs) != 1 || fs[0].Level != Warn || !strings.Contains(fs[0].Message, "Thunderbird for Android") || !strings.Contains(fs[0].Fix, "tls: starttls") {
		t.Errorf("tls: none: %+v", fs)
	}
	if fs := CheckConfig(loadConfig(t).Domains); len(fs) != 1 || fs[0].Level != Pass {
		t.Errorf("all TLS: %+v", fs)
	}
}

// A service that hands out consumer hosts fails the live check.
func TestCheckLiveConsumerAnswer(t *testing.T) {
	cfg := loadConfig(t)
	o := liveService(t, cfg, func(s *autodiscover.Server) http.Handler {
		h := s.HTTPSHandler()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Content-Length" { // the body changes length
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte("smtp.office365.com"), []byte("smtp-mail.outlook.com")))
		})
	})
	fs := CheckLive(context.Background(), cfg.Domains[:1], o)
	if !Failed(fs) {
		t.Fatal("no failure")
	}
	for _, f := range fs {
		if f.Level == Fail && !strings.Contains(f.Message, "consumer Outlook.com host smtp-mail.outlook.com") {
			t.Errorf("failure for another reason: %+v", f)
		}
	}
}

func TestWriteFindings(t *testing.T) {
	fs := []Finding{{Pass, "dns", "a", "ok", ""}, {Fail, "hosts", "b", "bad", "do this"}}
	var text, js bytes.Buffer
	WriteText(&text, fs)
	if !strings.Contains(text.String(), "FAIL  hosts  b: bad\n             fix: do this\n") || !strings.Contains(text.String(), "1 passed, 0 warnings, 1 failed") {
		t.Errorf("text:\n%s", text.String())
	}
	WriteFindingsJSON(&js, fs)
	var back []Finding
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != 2 || back[1].Fix != "do this" {
		t.Errorf("json %s: %v", js.String(), err)
	}
}

// A resolver that answers nothing, or cannot be reached, is one finding,
// not a failure for every record.
func TestResolverThatAnswersNothing(t *testing.T) {
	cfg := loadConfig(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	for name, r := range map[string]Resolver{
		"resolves nothing": startDNS(t, goodZone),
		"unreachable":      &DNSClient{Server: closed},
	} {
		fs := CheckDNS(context.Background(), r, cfg.Domains, "proxy.example.net")
		if len(fs) != 1 || fs[0].Level != Fail || fs[0].Subject != "resolver" || !strings.Contains(fs[0].Fix, "-resolver") {
			t.Errorf("%s: %d findings %+v, want one about the resolver", name, len(fs), fs)
		}
	}
}

// Without -target, a fix says to pass it instead of naming a placeholder;
// with it, the fix names it.
func TestFixesNameTheTarget(t *testing.T) {
	cfg := loadConfig(t)
	r := StartDNS(t)
	for target, want := range map[string]string{"": "pass it as -target HOST", "proxy.example.net": "CNAME to proxy.example.net."} {
		for _, f := range CheckDNS(context.Background(), r, cfg.Domains[:1], target) {
			if strings.HasPrefix(f.Subject, "autodiscover.") && !strings.Contains(f.Fix, want) {
				t.Errorf("-target %q: fix %q, want %q in it", target, f.Fix, want)
			}
			if strings.Contains(f.Fix, "THIS-SERVICE-HOST") {
				t.Errorf("a placeholder in a fix: %q", f.Fix)
			}
		}
	}
}
