package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	d, ok := c.Lookup("EXAMPLE.com.")
	if !ok || d.Provider.Name != ProviderMicrosoft365 {
		t.Fatalf("default config does not serve example.com on microsoft365: %+v", c.Domains)
	}
	if d.IMAP.Host != "outlook.office365.com" || d.IMAP.Port != 993 || d.SMTP.Host != "smtp.office365.com" || d.SMTP.Port != 587 {
		t.Errorf("default endpoints: imap %+v smtp %+v", d.IMAP, d.SMTP)
	}
	if d.OutlookExchange != OutlookRedirect || d.LoginName != LoginEmailAddress {
		t.Errorf("default policy %q login %q", d.OutlookExchange, d.LoginName)
	}
	if _, ok := c.Lookup("example.net"); ok {
		t.Error("default config answers for example.net")
	}
	if l := c.Limits; l.AnswerMemoryBytes != 32<<20 || l.RelayPerMinute != 120 || l.ClientIPv6Prefix != 64 {
		t.Errorf("default cost limits: %+v", l)
	}
}

func TestParseValid(t *testing.T) {
	c, err := Parse([]byte(`
tls:
  cert_file: certs/fullchain.pem
  key_file: /etc/keys/key.pem
domains:
  - name: Contoso.COM
    aliases: [contoso.net, "Bücher.Example"]
    provider: microsoft365
    smtp: {port: 25}
  - name: tailspin.example
    provider: custom
    login_name: 'CORP\%EMAILLOCALPART%'
    outlook_exchange: settings
    imap: {host: Mail.Tailspin.Example., port: 143, tls: starttls}
    smtp: {host: mail.tailspin.example, port: 465, tls: ssl}
`), "test.yaml", "/etc/adp")
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != "/etc/adp/certs/fullchain.pem" || c.TLS.KeyFile != "/etc/keys/key.pem" {
		t.Errorf("tls files resolved to %+v", c.TLS)
	}
	for _, name := range []string{"contoso.com", "CONTOSO.NET", "bücher.example", "xn--bcher-kva.example", "BÜCHER.example."} {
		d, ok := c.Lookup(name)
		if !ok || d.Name != "contoso.com" {
			t.Errorf("Lookup(%q) = %v, %v", name, d, ok)
		}
	}
	d, _ := c.Lookup("contoso.com")
	if !reflect.DeepEqual(d.Aliases, []string{"contoso.net", "xn--bcher-kva.example"}) {
		t.Errorf("aliases %v", d.Aliases)
	}
	// Override merges field by field onto the preset.
	if *d.SMTP != (Server{Host: "smtp.office365.com", Port: 25, Security: SecurityStartTLS}) {
		t.Errorf("smtp override %+v", d.SMTP)
	}
	cu, _ := c.Lookup("tailspin.example")
	if cu.IMAP.Host != "mail.tailspin.example" || cu.POP3 != nil || cu.ActiveSyncURL != "" {
		t.Errorf("custom domain %+v imap %+v", cu, cu.IMAP)
	}
	if got := cu.LoginFor(Address{Local: "bob", Domain: "tailspin.example"}); got != `CORP\bob` {
		t.Errorf("login %q", got)
	}
	if got := d.LoginFor(Address{Local: "Bob", Domain: "contoso.com"}); got != "Bob@contoso.com" {
		t.Errorf("login %q", got)
	}
}

// TestExchangeProvider: every endpoint comes from exchange_host, on
// Exchange's default paths; overrides merge onto them field by field.
func TestExchangeProvider(t *testing.T) {
	c, err := Parse([]byte(`
domains:
  - name: fabrikam.example
    provider: exchange
    exchange_host: Mail.Fabrikam.Example
    smtp: {port: 465, tls: ssl}
    oab: {url: "https://oab.fabrikam.example/OAB/"}
  - name: tailspin.example
    provider: exchange
    exchange_host: owa.tailspin.example
`), "test.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.Lookup("fabrikam.example")
	want := []*Server{{"mail.fabrikam.example", 993, SecuritySSL}, {"mail.fabrikam.example", 995, SecuritySSL}, {"mail.fabrikam.example", 465, SecuritySSL}}
	if got := []*Server{d.IMAP, d.POP3, d.SMTP}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers %+v %+v %+v", *got[0], *got[1], *got[2])
	}
	if d.ActiveSyncURL != "https://mail.fabrikam.example/Microsoft-Server-ActiveSync" || d.EWSURL != "https://mail.fabrikam.example/EWS/Exchange.asmx" ||
		d.OABURL != "https://oab.fabrikam.example/OAB/" {
		t.Errorf("urls %q %q %q", d.ActiveSyncURL, d.EWSURL, d.OABURL)
	}
	if d.OutlookExchange != OutlookSettings || !reflect.DeepEqual(d.Provider.IncomingAuth, []string{AuthPasswordCleartext}) ||
		!reflect.DeepEqual(d.SMTPAuth(time.Now()), []string{AuthPasswordCleartext}) || d.EWSAt(time.Now()) != d.EWSURL {
		t.Errorf("policy %q auth %v / %v, ews %q", d.OutlookExchange, d.Provider.IncomingAuth, d.SMTPAuth(time.Now()), d.EWSAt(time.Now()))
	}
	d2, _ := c.Lookup("tailspin.example")
	if d2.IMAP.Host != "owa.tailspin.example" || d2.OABURL != "https://owa.tailspin.example/OAB/" || d.ExchangeHost != "mail.fabrikam.example" {
		t.Errorf("second domain %+v %q; first host %q", d2.IMAP, d2.OABURL, d.ExchangeHost)
	}
	if p, _ := LookupPreset(ProviderExchange); p.IMAP.Host != "" {
		t.Errorf("a domain's exchange_host leaked into the shared preset: %q", p.IMAP.Host)
	}
}

// smtp_password: auto follows the preset's date, on keeps password SMTP
// past it, off never offers it; off is refused where it would leave no
// SMTP sign-in at all.
func TestSMTPPasswordPolicy(t *testing.T) {
	c, err := Parse([]byte(`
domains:
  - {name: auto.example, provider: microsoft365}
  - {name: on.example, provider: microsoft365, smtp_password: "on"}
  - {name: off.example, provider: microsoft365, smtp_password: "off"}
  - {name: google.example, provider: google-workspace, smtp_password: "off"}
`), "test.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	before, after := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		domain        string
		before, after []string
		changes       int
	}{
		// The SMTP date, and Exchange Online's two EWS dates.
		{"auto.example", []string{AuthOAuth2, AuthPasswordCleartext}, []string{AuthOAuth2}, 3},
		{"on.example", []string{AuthOAuth2, AuthPasswordCleartext}, []string{AuthOAuth2, AuthPasswordCleartext}, 2},
		{"off.example", []string{AuthOAuth2}, []string{AuthOAuth2}, 2},
		{"google.example", []string{AuthOAuth2}, []string{AuthOAuth2}, 0},
	} {
		d, _ := c.Lookup(tc.domain)
		if got := d.SMTPAuth(before); !reflect.DeepEqual(got, tc.before) {
			t.Errorf("%s before the date: %v, want %v", tc.domain, got, tc.before)
		}
		if got := d.SMTPAuth(after); !reflect.DeepEqual(got, tc.after) {
			t.Errorf("%s after the date: %v, want %v", tc.domain, got, tc.after)
		}
		if n := len(d.Changes()); n != tc.changes {
			t.Errorf("%s: %d dates on which its answers change, want %d", tc.domain, n, tc.changes)
		}
	}
	for body, want := range map[string]string{
		"domains:\n  - {name: a.com, provider: custom, imap: {host: m.a.com, port: 993, tls: ssl}, smtp: {host: m.a.com, port: 587, tls: starttls}, smtp_password: \"off\"}\n": "off would leave SMTP with no sign-in method",
		"domains:\n  - {name: a.com, provider: microsoft365, smtp_password: yes}\n":                                                                                            `"yes": use auto`,
	} {
		if _, err := Parse([]byte(body), "test.yaml", ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func TestSMTPPasswordWindow(t *testing.T) {
	d, _ := Default().Lookup("example.com")
	before := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	after := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := d.SMTPAuth(before); !reflect.DeepEqual(got, []string{AuthOAuth2, AuthPasswordCleartext}) {
		t.Errorf("before cutoff: %v", got)
	}
	if got := d.SMTPAuth(after); !reflect.DeepEqual(got, []string{AuthOAuth2}) {
		t.Errorf("after cutoff: %v", got)
	}
}

// Each bad config names the file, the line and what to do.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings, each expected in the error
	}{
		{"unknown top key", "domain:\n  - name: a.com\n", []string{"test.yaml:1: domain: unknown key: did you mean domains? The keys here are tls, log, trusted_proxies, limits, include, domains"}},
		{"unknown domain key", "domains:\n  - name: a.com\n    provider: microsoft365\n    imap_host: x\n", []string{"test.yaml:4: domains[0].imap_host: unknown key", "imap, pop3, smtp"}},
		{"unknown nested keys", "tls:\n  acme: {mail: x@y.com}\ndomains:\n  - name: a.com\n    provider: microsoft365\n    upstream: {url: 'https://x.com/a', relay: true}\n",
			[]string{"test.yaml:2: tls.acme.mail: unknown key: did you mean email? The keys here are email, store, cache_dir, directory_url", "test.yaml:6: domains[0].upstream.relay: unknown key"}},
		{"empty", "", []string{"empty config"}},
		{"bad limits", "limits: {relay_per_client_per_hour: 0, upstream_cache_mb: 99999}\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
			[]string{"test.yaml:1: limits.relay_per_client_per_hour: 0: use 1 to 100000", "limits.upstream_cache_mb: 99999: use 1 to 4096"}},
		{"bad cost limits", "limits: {answer_memory_mb: 4, relay_per_minute: 0, client_ipv6_prefix: 16}\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
			[]string{"limits.answer_memory_mb: 4: use 8 to 65536", "limits.relay_per_minute: 0: use 1 to 1000000", "limits.client_ipv6_prefix: 16: use 32 to 128"}},
		{"no domains", "tls: {}\n", []string{"no domains configured"}},
		{"bad port", "domains:\n  - name: a.com\n    provider: microsoft365\n    imap:\n      port: 99999\n", []string{"test.yaml:5: domains[0].imap.port: 99999 is not a TCP port"}},
		{"port not a number", "domains:\n  - name: a.com\n    provider: microsoft365\n    imap: {port: abc}\n", []string{`test.yaml:4: domains[0].imap.port: "abc" is not a whole number here`}},
		{"list where a value belongs", "domains:\n  - name: [a.com]\n    provider: microsoft365\n", []string{`test.yaml:2: domains[0].name: a list is not a single value (text) here`}},
		{"mapping where a list belongs", "domains:\n  name: a.com\n", []string{`test.yaml:2: domains: a mapping is not a list here`}},
		{"yaml indentation", "domains:\n  - name: a.com\n    provider: microsoft365\n   display_name: X\n", []string{"test.yaml:4: YAML syntax: did not find expected '-' indicator: check this line's indentation"}},
		{"yaml unclosed bracket", "domains:\n  - name: a.com\n    aliases: [a.net\n    provider: microsoft365\n", []string{"test.yaml:3: YAML syntax"}},
		{"the file is a list", "- name: a.com\n  provider: microsoft365\n", []string{"test.yaml:1: the file is a list; it must be a mapping of keys, with the domains as a list under domains:"}},
		{"the file is a word", "contoso.com\n", []string{"test.yaml:1: the file is a single value"}},
		{"url as domain", "domains:\n  - name: https://contoso.com/\n    provider: microsoft365\n", []string{`domains[0].name: "https://contoso.com/" is a URL, not a domain name: write the name alone, such as contoso.com`}},
		{"address as domain", "domains:\n  - name: jane@contoso.com\n    provider: microsoft365\n", []string{`"jane@contoso.com" is an e-mail address, not a domain name: write the part after @, contoso.com`}},
		{"host with port as server", "domains:\n  - name: a.com\n    provider: custom\n    imap: {host: 'mail.a.com:993', port: 993, tls: ssl}\n    smtp: {host: mail.a.com, port: 587, tls: starttls}\n",
			[]string{`domains[0].imap.host: not a host name: "mail.a.com:993" has a port: write the name alone, mail.a.com`}},
		{"duplicate key", "domains:\n  - name: a.com\n    provider: microsoft365\n    name: b.com\n", []string{"test.yaml:4: domains[0].name: given twice (first on line 2)"}},
		{"bad tls mode", "domains:\n  - name: a.com\n    provider: microsoft365\n    smtp: {tls: tls}\n", []string{":4: domains[0].smtp.tls", "use ssl (implicit TLS), starttls or none"}},
		{"unknown provider", "domains:\n  - name: a.com\n    provider: zimbra\n", []string{":3: domains[0].provider", "unknown provider \"zimbra\"", "exchange"}},
		{"exchange without host", "domains:\n  - name: a.com\n    provider: exchange\n", []string{":2: domains[0].exchange_host: provider exchange needs exchange_host"}},
		{"exchange host on another provider", "domains:\n  - name: a.com\n    provider: microsoft365\n    exchange_host: mail.a.com\n",
			[]string{":4: domains[0].exchange_host: only provider exchange takes exchange_host"}},
		{"exchange host consumer", "domains:\n  - name: a.com\n    provider: exchange\n    exchange_host: \"ｍ.hotmail.com\"\n",
			[]string{":4: domains[0].exchange_host: m.hotmail.com is a consumer Outlook.com/Hotmail endpoint"}},
		{"bad oab url", "domains:\n  - name: a.com\n    provider: exchange\n    exchange_host: mail.a.com\n    oab: {url: 'http://mail.a.com/OAB/'}\n",
			[]string{":5: domains[0].oab.url", "is not an https URL"}},
		{"duplicate domain", "domains:\n  - name: a.com\n    provider: microsoft365\n  - name: A.COM\n    provider: google-workspace\n",
			[]string{":4: domains[1].name: a.com is already configured at domains[0].name (line 2)"}},
		{"duplicate alias", "domains:\n  - name: a.com\n    provider: microsoft365\n  - name: b.com\n    aliases: [c.com, a.com]\n    provider: microsoft365\n",
			[]string{":5: domains[1].aliases[1]: a.com is already configured"}},
		{"consumer smtp host", "domains:\n  - name: a.com\n    provider: microsoft365\n    smtp:\n      host: smtp-mail.outlook.com\n",
			[]string{":5: domains[0].smtp.host: smtp-mail.outlook.com is a consumer Outlook.com/Hotmail endpoint", "share the outlook.com namespace", "smtp.office365.com"}},
		{"consumer host, other case and trailing dot", "domains:\n  - name: a.com\n    provider: google-workspace\n    imap: {host: IMAP-MAIL.Outlook.com.}\n",
			[]string{"imap-mail.outlook.com is a consumer"}},
		{"consumer hotmail suffix", "domains:\n  - name: a.com\n    provider: microsoft365\n    pop3: {host: pop3.live.com}\n", []string{"pop3.live.com is a consumer"}},
		{"consumer activesync url", "domains:\n  - name: a.com\n    provider: microsoft365\n    activesync: {url: 'https://m.hotmail.com/Microsoft-Server-ActiveSync'}\n",
			[]string{"domains[0].activesync.url: m.hotmail.com is a consumer"}},
		{"custom without servers", "domains:\n  - name: a.com\n    provider: custom\n", []string{"no incoming server", "no outgoing server"}},
		{"custom server without port", "domains:\n  - name: a.com\n    provider: custom\n    imap: {host: mail.a.com, tls: ssl}\n    smtp: {host: mail.a.com, port: 587, tls: starttls}\n",
			[]string{"domains[0].imap.port: missing: give the port"}},
		{"custom server without tls", "domains:\n  - name: a.com\n    provider: custom\n    imap: {host: mail.a.com, port: 993}\n    smtp: {host: mail.a.com, port: 587, tls: starttls}\n",
			[]string{"domains[0].imap.tls: missing: use ssl"}},
		{"misspelt provider, and the domain's other problems", "domains:\n  - name: a.com\n    provider: microsft365\n    display_name: \"A\\u0007\"\n    smtp: {port: 99999}\n",
			[]string{`:3: domains[0].provider: unknown provider "microsft365": did you mean microsoft365?`, ":4: domains[0].display_name", ":5: domains[0].smtp.port: 99999 is not a TCP port"}},
		{"no provider", "domains:\n  - name: a.com\n", []string{"domains[0].provider: missing: use custom, exchange, google-workspace or microsoft365"}},
		{"a value where a list belongs", "domains: contoso.com\n", []string{`test.yaml:1: domains: "contoso.com" is not a list here`}},
		{"http url", "domains:\n  - name: a.com\n    provider: microsoft365\n    ews: {url: 'http://x.a.com/EWS/Exchange.asmx'}\n", []string{"domains[0].ews.url", "not an https URL"}},
		{"bad login form", "domains:\n  - name: a.com\n    provider: microsoft365\n    login_name: '%USER%'\n", []string{"domains[0].login_name", "not a login-name form"}},
		{"bad policy", "domains:\n  - name: a.com\n    provider: microsoft365\n    outlook_exchange: always\n", []string{"not a policy"}},
		{"redirect without provider endpoint", "domains:\n  - name: a.com\n    provider: google-workspace\n    outlook_exchange: redirect\n", []string{"redirect needs a provider"}},
		{"single-label domain", "domains:\n  - name: localhost\n    provider: microsoft365\n", []string{"single label"}},
		{"bad domain", "domains:\n  - name: 'exa mple.com'\n    provider: microsoft365\n", []string{`domains[0].name: "exa mple.com" is not a domain name: only letters, digits, hyphens and dots`}},
		{"cert without key", "tls: {cert_file: a.pem}\ndomains:\n  - name: a.com\n    provider: microsoft365\n", []string{":1: tls: cert_file and key_file go together"}},
		{"display name with control char", "domains:\n  - name: a.com\n    provider: microsoft365\n    display_name: \"A\\u0007B\"\n", []string{"display_name", "not allowed"}},
		{"bad tls min_version", "tls: {min_version: '1.4'}\ndomains:\n  - name: a.com\n    provider: microsoft365\n", []string{"tls.min_version", `"1.4": use 1.2 (default), 1.3, or 1.0/1.1`}},
		{"acme with cert files", "tls: {cert_file: a.pem, key_file: a.key, acme: {cache_dir: /x}}\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
			[]string{"tls.acme: acme and cert_file/key_file exclude each other"}},
		{"acme without cache_dir", "tls: {acme: {email: a@a.com}}\ndomains:\n  - name: a.com\n    provider: microsoft365\n", []string{"tls.acme: cache_dir is required"}},
		{"acme directory over http", "tls: {acme: {cache_dir: /x, directory_url: 'http://ca.example/dir'}}\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
			[]string{`tls.acme.directory_url: "http://ca.example/dir" is not an https URL`}},
		{"acme bad email", "tls: {acme: {cache_dir: /x, email: 'not an address'}}\ndomains:\n  - name: a.com\n    provider: microsoft365\n", []string{"tls.acme.email"}},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/33, proxy.example]\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
			[]string{`trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR network`, `trusted_proxies[1]: "proxy.example" is not`}},
		{"upstream over http", "domains:\n  - name: a.com\n    provider: microsoft365\n    upstream: {url: 'http://up.example/autodiscover/autodiscover.xml'}\n",
			[]string{"domains[0].upstream.url", "is not an https URL"}},
		{"upstream with credentials in the URL", "domains:\n  - name: a.com\n    provider: microsoft365\n    upstream: {url: 'https://u:p@up.example/a'}\n",
			[]string{"domains[0].upstream.url", "is not an https URL"}},
		{"upstream consumer host", "domains:\n  - name: a.com\n    provider: microsoft365\n    upstream: {url: 'https://s.outlook.com/a', redirect_hosts: [m.hotmail.com, 'a b']}\n",
			[]string{"domains[0].upstream.url: s.outlook.com is a consumer", "domains[0].upstream.redirect_hosts[0]: m.hotmail.com is a consumer", "domains[0].upstream.redirect_hosts[1]"}},
		{"upstream timeouts", "domains:\n  - name: a.com\n    provider: microsoft365\n    upstream: {url: 'https://up.example/a', timeout: 31s}\n  - name: b.com\n    provider: microsoft365\n    upstream: {url: 'https://up.example/a', timeout: soon}\n",
			[]string{`domains[0].upstream.timeout: "31s": use a duration up to 30s`, `domains[1].upstream.timeout: "soon"`}},
		{"display name with template mark", "domains:\n  - name: a.com\n    provider: microsoft365\n    display_name: \"A\\uE0000\\uE001\"\n", []string{"display_name", "U+E000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "test.yaml", "")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every problem is reported at once, not only the first.
func TestParseReportsAllProblems(t *testing.T) {
	// An unknown key, a duplicate, a type error and a validation error:
	// all four, in line order.
	_, err := Parse([]byte("tsl: {}\ndomains:\n  - name: a.com\n    provider: microsoft365\n    provider: custom\n    imap: {port: abc}\n    smtp: {tls: bad}\n"), "t.yaml", "")
	var all *Error
	if !errors.As(err, &all) || len(all.Problems) != 4 {
		t.Fatalf("want 4 problems, got %v", err)
	}
	for i, want := range []string{"t.yaml:1: tsl: unknown key: did you mean tls?", "t.yaml:5: domains[0].provider: given twice",
		`t.yaml:6: domains[0].imap.port: "abc" is not a whole number`, "t.yaml:7: domains[0].smtp.tls"} {
		if got := all.Problems[i].String(); !strings.HasPrefix(got, want) {
			t.Errorf("problem %d: %s, want %s...", i, got, want)
		}
	}
	_, err = Parse([]byte("domains:\n  - name: a.com\n    provider: microsoft365\n    imap: {port: 0}\n    smtp: {port: 70000}\n"), "t.yaml", "")
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		// port 0 means "keep the preset's", so only 70000 is wrong.
		t.Fatalf("want one problem, got %v", err)
	}
	_, err = Parse([]byte("domains:\n  - name: a.com\n    provider: custom\n    imap: {host: x.a.com, port: -1, tls: ssl}\n    smtp: {host: '', port: 70000, tls: bad}\n"), "t.yaml", "")
	if !errors.As(err, &ce) || len(ce.Problems) != 4 {
		t.Fatalf("want 4 problems, got %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("domains:\n  - name: a.com\n    provider: microsoft365\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("missing file: %v", err)
	}
}

// The example config shipped in deploy/ must load.
func TestExampleConfig(t *testing.T) {
	c, err := Load(filepath.Join("..", "deploy", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Domains) == 0 {
		t.Fatal("example config has no domains")
	}
}

// ews_access: auto follows the provider's dates, on keeps EWS offered
// until the provider retires it, off never offers it; on is refused where
// there is no EWS or after its retirement.
func TestEWSAccess(t *testing.T) {
	parse := func(y string) (*Config, error) { return Parse([]byte(y), "test.yaml", "") }
	c, err := parse("domains:\n  - {name: a.com, provider: microsoft365}\n  - {name: b.com, provider: microsoft365, ews_access: \"on\"}\n" +
		"  - {name: c.com, provider: exchange, exchange_host: mail.c.com}\n  - {name: d.com, provider: exchange, exchange_host: mail.d.com, ews_access: \"off\"}\n")
	if err != nil {
		t.Fatal(err)
	}
	m365 := "https://outlook.office365.com/EWS/Exchange.asmx"
	before, between, after := time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		domain string
		at     time.Time
		want   string
	}{
		{"a.com", before, m365}, {"a.com", between, ""}, {"a.com", after, ""},
		{"b.com", before, m365}, {"b.com", between, m365}, {"b.com", after, ""},
		{"c.com", after, "https://mail.c.com/EWS/Exchange.asmx"},
		{"d.com", before, ""},
	} {
		d, _ := c.Lookup(tc.domain)
		if got := d.EWSAt(tc.at); got != tc.want {
			t.Errorf("%s (%s) at %s: EWS %q, want %q", tc.domain, d.EWSAccess, tc.at.Format(time.DateOnly), got, tc.want)
		}
	}
	if d, _ := c.Lookup("a.com"); len(d.Changes()) != 3 {
		t.Errorf("a Microsoft 365 domain's answers change at %v, want the SMTP date and both EWS dates", d.Changes())
	}

	for _, tc := range []struct{ yaml, want string }{
		{"domains:\n  - {name: a.com, provider: google-workspace, ews_access: \"on\"}\n", `domains[0].ews_access: on, but provider google-workspace has no EWS`},
		{"domains:\n  - {name: a.com, provider: microsoft365, ews_access: yes}\n", `domains[0].ews_access: "yes": use auto`},
	} {
		if _, err := parse(tc.yaml); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %s", tc.yaml, err, tc.want)
		}
	}
	Now = func() time.Time { return after }
	defer func() { Now = time.Now }()
	if _, err := parse("domains:\n  - {name: a.com, provider: microsoft365, ews_access: \"on\"}\n"); err == nil || !strings.Contains(err.Error(), "Microsoft 365 retired EWS on 2027-04-01") {
		t.Errorf("on after the retirement: %v", err)
	}
}

// log.address_key_file: the file's content less a trailing newline; a
// missing or short file is an error that never quotes the key.
func TestAddressKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) {
		os.WriteFile(filepath.Join(dir, "k"), []byte(content), 0o600)
	}
	cfg := []byte("log: {address_key_file: k}\ndomains:\n  - {name: a.com, provider: microsoft365}\n")
	write(strings.Repeat("f", 64) + "\n")
	c, err := Parse(cfg, "test.yaml", dir)
	if err != nil || string(c.Log.AddressKey) != strings.Repeat("f", 64) {
		t.Fatalf("%v, key %q", err, c.Log.AddressKey)
	}
	write("short-secret\n")
	if _, err := Parse(cfg, "test.yaml", dir); err == nil || !strings.Contains(err.Error(), "holds 12 bytes: use at least 32") || strings.Contains(err.Error(), "short-secret") {
		t.Errorf("a short key: %v", err)
	}
	os.Remove(filepath.Join(dir, "k"))
	if _, err := Parse(cfg, "test.yaml", dir); err == nil || !strings.Contains(err.Error(), "log.address_key_file") {
		t.Errorf("a missing key file: %v", err)
	}
}

// A problem of the file as a whole comes after the ones that cause it:
// "no domains configured" follows the misspelt key.
func TestParseErrorsCausesFirst(t *testing.T) {
	_, err := Parse([]byte("domain:\n  - name: a.com\n    provider: microsoft365\n"), "test.yaml", "")
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	cause, consequence := strings.Index(msg, "did you mean domains?"), strings.Index(msg, "no domains configured")
	if cause < 0 || consequence < 0 || cause > consequence {
		t.Errorf("the consequence before its cause:\n%s", msg)
	}
}

// include: reads more files of domains, in order; a problem in one is
// reported under its own name and line; a name configured in two files is
// refused, naming both; the hash follows every file's bytes.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "domains.d"), 0o755)
	write := func(name, content string) { os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600) }
	write("config.yaml", "include: [domains.d/*.yaml]\ndomains:\n  - {name: main.example, provider: microsoft365}\n")
	write("domains.d/b.yaml", "domains:\n  - {name: b.example, provider: google-workspace}\n")
	write("domains.d/a.yaml", "domains:\n  - {name: a.example, provider: microsoft365, aliases: [a2.example]}\n")
	write("domains.d/notes.txt", "not a config")
	c, err := Load(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range c.Domains {
		names = append(names, d.Name)
	}
	if want := []string{"main.example", "a.example", "b.example"}; !reflect.DeepEqual(names, want) {
		t.Errorf("domains %v, want %v", names, want)
	}
	if _, ok := c.Lookup("a2.example"); !ok || len(c.Sources) != 3 || c.IncludeDirs[0] != filepath.Join(dir, "domains.d") {
		t.Errorf("alias lookup %v, sources %v, include dirs %v", ok, c.Sources, c.IncludeDirs)
	}
	hash := c.Hash
	write("domains.d/b.yaml", "domains:\n  - {name: b.example, provider: google-workspace, display_name: B}\n")
	if c, _ := Load(filepath.Join(dir, "config.yaml")); c == nil || c.Hash == hash || len(c.Hash) != 16 {
		t.Errorf("an included file changed, the hash did not: %q", hash)
	}

	write("domains.d/c.yaml", "domains:\n  - {name: c.example, provider: microsft365}\n  - {name: a2.example, provider: microsoft365}\ntls: {}\n")
	_, err = Load(filepath.Join(dir, "config.yaml"))
	for _, want := range []string{
		filepath.Join(dir, "domains.d/c.yaml") + `:2: domains[0].provider: unknown provider "microsft365": did you mean microsoft365?`,
		filepath.Join(dir, "domains.d/c.yaml") + ":3: domains[1].name: a2.example is already configured at " + filepath.Join(dir, "domains.d/a.yaml") + ":2 domains[0].aliases[0]",
		filepath.Join(dir, "domains.d/c.yaml") + ":4: tls: unknown key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}
