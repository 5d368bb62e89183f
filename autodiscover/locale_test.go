package autodiscover

import (
	"io"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every catalogue has every message of the English one and no other, with
// the same {placeholders}, none empty; the languages the page promises
// are all there.
func TestCatalogues(t *testing.T) {
	cs, err := loadCatalogues()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, c := range cs {
		codes = append(codes, c.Code)
	}
	if want := []string{"en", "de", "es", "fr", "it", "nl", "pt-BR"}; !slices.Equal(codes, want) {
		t.Errorf("catalogues %v, want %v", codes, want)
	}
	placeholders := regexp.MustCompile(`\{[a-z]+\}`)
	en := cs[0].msgs
	for _, c := range cs {
		for k, ref := range en {
			msg, ok := c.msgs[k]
			if !ok || strings.TrimSpace(msg) == "" && k != "elision" { // only some languages elide
				t.Errorf("%s.json lacks %q", c.Code, k)
				continue
			}
			a, b := placeholders.FindAllString(ref, -1), placeholders.FindAllString(msg, -1)
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Errorf("%s.json %q has placeholders %v, English %v", c.Code, k, b, a)
			}
		}
		for k := range c.msgs {
			if _, ok := en[k]; !ok {
				t.Errorf("%s.json has %q, which English does not", c.Code, k)
			}
		}
		if c.Code != "en" && c.msgs["submit"] == en["submit"] {
			t.Errorf("%s.json: the button is still in English", c.Code)
		}
	}
}

// The page's language: ?lang= when it names a catalogue, else the best
// match for Accept-Language, else English.
func TestPageLanguage(t *testing.T) {
	for _, tc := range []struct{ query, accept, want string }{
		{"", "de-AT,de;q=0.9,en;q=0.5", "de"},
		{"", "pt-BR", "pt-BR"},
		{"", "pt", "pt-BR"},
		{"", "nl-BE, fr;q=0.8", "nl"},
		{"", "ja, zh;q=0.9", "en"},
		{"", "fr;q=0.1, es;q=0.9", "es"},
		{"", "", "en"},
		{"", strings.Repeat("x-", 4000), "en"},
		{"lang=it", "de", "it"},
		{"lang=xx", "fr", "fr"},
	} {
		r := httptest.NewRequest("GET", "/setup?"+tc.query, nil)
		r.Header.Set("Accept-Language", tc.accept)
		if got := pageLanguage(r).Code; got != tc.want {
			t.Errorf("?%s, Accept-Language %.40q: %s, want %s", tc.query, tc.accept, got, tc.want)
		}
	}
}

// Names wrap only after a dot, @ or backslash; each part is escaped.
func TestBreakable(t *testing.T) {
	got := string(breakable(`outlook.office365.com`))
	if want := `<span class="nb">outlook.</span><wbr><span class="nb">office365.</span><wbr><span class="nb">com</span>`; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
	got = string(breakable(`TAILSPIN\bob`))
	if want := `<span class="nb">TAILSPIN\</span><wbr><span class="nb">bob</span>`; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
	if got := string(breakable(`a<b>@x.y`)); strings.Contains(got, "<b>") || !strings.Contains(got, "a&lt;b&gt;@") {
		t.Errorf("not escaped: %s", got)
	}
	// The text, tags removed, is the name itself.
	if text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(breakable("jane.doe@contoso.com")), ""); text != "jane.doe@contoso.com" {
		t.Errorf("text %q", text)
	}
}

// A settings page is its domain's skeleton with the address's parts
// filled in: the same page every time, and an address that spells a hole
// is shown as typed, not filled.
func TestSetupSkeleton(t *testing.T) {
	s := newTestServer(t, beforeCutoff, io.Discard)
	get := func(email string) string {
		return exchange{method: "GET", target: "/setup?email=" + email, host: "autodiscover.contoso.com"}.serve(s).Body.String()
	}
	first, second := get("jane%40contoso.com"), get("jane%40contoso.com")
	if first != second || s.setupPages.size() == 0 {
		t.Fatalf("the second page differs from the first, or nothing was kept (%d bytes)", s.setupPages.size())
	}
	for _, hole := range []string{holeEmail, holeLinks, holeURL, holeQR, holeTitle, holeRows} {
		if strings.Contains(first, hole) {
			t.Errorf("%s left in the page", hole)
		}
		page := get(hole + "%40contoso.com")
		if n := strings.Count(page, "<tbody>"); n != 1 || !strings.Contains(page, `value="`+hole+`@contoso.com"`) {
			t.Errorf("address %s@contoso.com: %d tables, input value not as typed", hole, n)
		}
	}
}

// Dates in the language's own form, never split across lines; French
// elides "de" before a vowel (d’ACME), and leaves other languages and
// names alone.
func TestLocalisedWords(t *testing.T) {
	byCode := map[string]*catalogue{}
	for _, c := range catalogues {
		byCode[c.Code] = c
	}
	day := beforeCutoff
	for code, want := range map[string]string{"en": "22\u00a0November\u00a02026", "de": "22.11.2026", "fr": "22/11/2026", "nl": "22-11-2026", "pt-BR": "22/11/2026"} {
		if got := day.Format(byCode[code].T("date_layout")); got != want {
			t.Errorf("%s: %q, want %q", code, got, want)
		}
	}
	fr := byCode["fr"]
	for org, want := range map[string]string{"ACME": "de la messagerie d’ACME", "Équipe": "de la messagerie d’Équipe", "Contoso": "de la messagerie de Contoso"} {
		if got := fr.T("title_domain", "org", org); !strings.Contains(got, want) {
			t.Errorf("fr, %s: %q, want %q in it", org, got, want)
		}
		if got := string(fr.messages("org", org)["title_domain"]); !strings.Contains(got, want) {
			t.Errorf("fr page, %s: %q", org, got)
		}
	}
	if got := byCode["es"].T("title_domain", "org", "ACME"); !strings.Contains(got, "de ACME") {
		t.Errorf("es elides: %q", got)
	}
}
