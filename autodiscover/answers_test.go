package autodiscover

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// variedConfig has domains that differ in every config key that shapes an
// answer, several of each kind, so that some share templates.
const variedConfig = `domains:
  - {name: a.example, provider: microsoft365}
  - {name: b.example, provider: microsoft365, aliases: [b.example.net, b2.example], display_name: B}
  - {name: c.example, provider: microsoft365, outlook_exchange: settings, smtp_password: "on"}
  - {name: d.example, provider: microsoft365, smtp_password: "off", login_name: '%EMAILLOCALPART%'}
  - {name: e.example, provider: microsoft365, smtp: {port: 25, tls: none}, oab: {url: "https://oab.e.example/OAB/"}}
  - {name: f.example, provider: google-workspace}
  - {name: g.example, provider: google-workspace, smtp_password: "off", pop3: {port: 110, tls: starttls}}
  - {name: h.example, provider: exchange, exchange_host: mail.h.example}
  - {name: i.example, provider: exchange, exchange_host: mail.i.example, login_name: 'I\%EMAILLOCALPART%', oab: {url: "https://x.i.example/oab"}}
  - {name: j.example, provider: exchange, exchange_host: mail.j.example, imap: {port: 143, tls: starttls}}
  - name: k.example
    provider: custom
    imap: {host: mail.k.example, port: 993, tls: ssl}
    smtp: {host: mail.k.example, port: 465, tls: ssl}
  - name: l.example
    provider: custom
    imap: {host: mail.l.example, port: 993, tls: ssl}
    pop3: {host: mail.l.example, port: 995, tls: ssl}
    smtp: {host: mail.l.example, port: 587, tls: starttls}
    activesync: {url: "https://mail.l.example/Microsoft-Server-ActiveSync"}
    ews: {url: "https://mail.l.example/EWS/Exchange.asmx"}
  - name: m.example
    provider: custom
    pop3: {host: pop.m.example, port: 995, tls: ssl}
    smtp: {host: smtp.m.example, port: 587, tls: starttls}
    ews: {url: "https://ews.m.example/EWS/Exchange.asmx"}
`

// variedDomains is variedConfig with testdata/config.yaml's domains, in
// one config.
func variedDomains(t *testing.T) *config.Config {
	t.Helper()
	testdata, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(testdata), "domains:\n")
	if !ok {
		t.Fatal("testdata/config.yaml has no domains: line")
	}
	cfg, err := config.Parse([]byte(variedConfig+list), "varied.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// renderAll is every document of a domain's answers, filled with one
// user's parts and the domain's values.
func renderAll(a *answers) []string {
	user := []string{"Jane <&> Doe", "jane@" + a.domain.Name, `DOM\jane`}
	var out []string
	for _, t := range []*xmlschema.Template{a.outlookDesktop, a.mobilesync} {
		if t != nil {
			out = append(out, string(t.Append(nil, user, a.values)))
		}
	}
	for _, p := range a.periods {
		out = append(out, p.from.String()+"\n"+string(p.outlook.Append(nil, user, a.values)),
			p.from.String()+"\n"+string(p.autoconfig.Append(nil, noUser[:], a.values)))
	}
	return append(out, string(a.outlookRedirect))
}

// Templates are shared by shape: each domain's answers, compiled beside
// every other domain (sharing) and alone (fresh), are the same to the
// byte. A field that shapes a document but is not in its shape fails here.
func TestSharedTemplatesMatchFresh(t *testing.T) {
	domains := variedDomains(t).Domains
	shared := newCompiler()
	var all []*answers
	for _, d := range domains {
		a, err := shared.compile(d)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
	}
	if n := len(shared.templates); n >= 4*len(domains) {
		t.Errorf("%d templates for %d domains: nothing is shared", n, len(domains))
	}
	for i, d := range domains {
		fresh, err := newCompiler().compile(d)
		if err != nil {
			t.Fatal(err)
		}
		got, want := renderAll(all[i]), renderAll(fresh)
		if len(got) != len(want) {
			t.Errorf("%s: %d documents shared, %d fresh", d.Name, len(got), len(want))
			continue
		}
		for j := range got {
			if got[j] != want[j] {
				t.Errorf("%s: document %d differs when compiled beside other domains:\n%s\n--- fresh:\n%s", d.Name, j, got[j], want[j])
			}
		}
		for _, doc := range got {
			if strings.ContainsAny(doc, "\uE000\uE001") {
				t.Errorf("%s: a slot mark is left in a document", d.Name)
			}
		}
	}
	// Every domain's documents are its own: no two domains' full sets are
	// equal (each names its own domain).
	seen := map[string]string{}
	for i, a := range all {
		k := fmt.Sprint(renderAll(a))
		if other, ok := seen[k]; ok && !bytes.Equal([]byte(other), []byte(domains[i].Name)) {
			t.Errorf("%s and %s got the same documents", other, domains[i].Name)
		}
		seen[k] = domains[i].Name
	}
}

// Setup pages are shared by shape too: a page made from a kept skeleton
// is the same to the byte as one rendered fresh, for every domain and
// language, whichever pages were made before it.
func TestSharedPagesMatchFresh(t *testing.T) {
	cfg := variedDomains(t)
	server := func() *Server {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.Now = func() time.Time { return beforeCutoff }
		s.Log = slog.New(slog.DiscardHandler)
		s.Config().Limits.PagesPerClientPerMinute = math.MaxInt32
		return s
	}
	page := func(s *Server, d *config.Domain, user, lang string) string {
		r := httptest.NewRequest("GET", "/setup?email="+url.QueryEscape(user+"@"+d.Name)+"&lang="+lang, nil)
		r.Host = "autodiscover." + d.Name
		w := httptest.NewRecorder()
		s.HTTPSHandler().ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s %s: HTTP %d", d.Name, lang, w.Code)
		}
		return w.Body.String()
	}
	shared := server()
	for _, lang := range []string{"en", "de", "fr"} {
		for _, d := range cfg.Domains {
			for _, user := range []string{"jane", "o'brien+x"} {
				if got, want := page(shared, d, user, lang), page(server(), d, user, lang); got != want {
					t.Errorf("%s %s %s: the page from a kept skeleton differs from a fresh one", d.Name, lang, user)
				}
			}
		}
	}
}
