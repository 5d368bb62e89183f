package config

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, local, domain string }{
		{"jane@contoso.com", "jane", "contoso.com"},
		{"  Jane.Doe@CONTOSO.com.  ", "Jane.Doe", "contoso.com"},
		{"o'brien+tag@contoso.com", "o'brien+tag", "contoso.com"},
		{"anna@bücher.example", "anna", "xn--bcher-kva.example"},
		{"ünïcode@xn--bcher-kva.example", "ünïcode", "xn--bcher-kva.example"},
		{"a@sub.contoso.co.uk", "a", "sub.contoso.co.uk"},
	} {
		a, err := ParseAddress(tc.in)
		if err != nil || a.Local != tc.local || a.Domain != tc.domain {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %s @ %s", tc.in, a, err, tc.local, tc.domain)
		}
	}
	for _, in := range []string{
		"", "jane", "@contoso.com", "jane@", "jane@localhost", "jane@@contoso.com",
		".jane@contoso.com", "jane.@contoso.com", "ja..ne@contoso.com", "ja ne@contoso.com",
		"jane\x00@contoso.com", "<script>@contoso.com", `"quoted"@contoso.com`, "jane@contoso..com",
		"jane@-contoso.com", "jane@contoso.com/evil", "jane@contoso.com:443", "jane@[127.0.0.1]",
		strings.Repeat("a", 65) + "@contoso.com", "a@" + strings.Repeat("b", 250) + ".com",
		"jane@exa mple.com", "\xff@contoso.com", "jane@\xff.com", "a@b.com..", "a@.b.com",
	} {
		if a, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) accepted: %+v", in, a)
		}
	}
}

func TestIsConsumerHost(t *testing.T) {
	for _, h := range []string{"smtp-mail.outlook.com", "IMAP-MAIL.outlook.com.", "pop3.live.com", "smtp.live.com", "m.hotmail.com", "x.olc.protection.outlook.com", "hotmail.com",
		// Disguised: fullwidth letters, percent-escapes (also double and
		// next to a bad one), a one-dot leader, ideographic full stops, a
		// soft hyphen.
		"ｉｍａｐ-mail.outlook.com", "smtp-mail%2eoutlook.com", "smtp-mail%252Eoutlook.com", "s\u2024outlook.com",
		"m\u3002hotmail\uff0ecom", "eas.out\u00adlook.com"} {
		if !IsConsumerHost(h) {
			t.Errorf("%q not flagged", h)
		}
	}
	for _, text := range []string{"https://s%2Eoutlook.com/EWS/Exchange.asmx", "server: ｓｍｔｐ-mail.outlook.com:587", "s%2Eoutlook.com%zz"} {
		if !MentionsConsumerHost(text) {
			t.Errorf("%q: the consumer host in it is not found", text)
		}
	}
	for _, h := range []string{"outlook.office365.com", "smtp.office365.com", "autodiscover-s.outlook.com", "contoso-com.mail.protection.outlook.com", "notlive.com", "imap.gmail.com"} {
		if IsConsumerHost(h) {
			t.Errorf("%s flagged as consumer", h)
		}
	}
}

// FuzzParseAddress: never panics; what it accepts is a bounded,
// well-formed address whose domain is a lower-case A-label that parses to
// itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"jane@contoso.com", "anna@bücher.example", "a@b", "@", "x@xn--", "a@B\u0130.com", "a@\u200d.com", "a@a.b.c.d.e.f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if len(a.String()) > maxAddress || !utf8.ValidString(a.Local) || a.Local == "" {
			t.Fatalf("accepted %q as %+v", s, a)
		}
		for i := 0; i < len(a.Domain); i++ {
			c := a.Domain[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("domain %q of %q is not a lower-case A-label", a.Domain, s)
			}
		}
		again, err := ParseAddress(a.String())
		if err != nil || again != a {
			t.Fatalf("%q -> %+v does not parse to itself: %+v, %v", s, a, again, err)
		}
	})
}

// FuzzNormalizeDomain: the plain-LDH fast path returns exactly what the
// IDNA path does.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"contoso.com", "a-b.c", "xn--bcher-kva.example", "a--b.com", "1.2", "-a.com", "a.com-", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainLDH(s) {
			return
		}
		got, err := normalizeIDNA(s)
		if err != nil || got != s {
			t.Fatalf("plainLDH accepts %q, IDNA gives %q, %v", s, got, err)
		}
	})
}

// People read internationalised names in Unicode; protocols keep A-labels.
func TestNamesForPeople(t *testing.T) {
	c, err := Parse([]byte("domains:\n  - name: Bücher.Example\n    provider: microsoft365\n"), "t.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	d := c.Domains[0]
	if d.Name != "xn--bcher-kva.example" || d.DisplayName != "bücher.example" {
		t.Errorf("name %q display name %q", d.Name, d.DisplayName)
	}
	a, _ := ParseAddress("anna@BÜCHER.example")
	if a.String() != "anna@xn--bcher-kva.example" || a.ForPeople() != "anna@bücher.example" {
		t.Errorf("address %q for people %q", a.String(), a.ForPeople())
	}
	if got := UnicodeDomain("xn--zz.example"); got != "xn--zz.example" {
		t.Errorf("a label that is not punycode became %q", got)
	}
}
