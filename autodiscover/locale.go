package autodiscover

import (
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"path"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// The setup page's words, one catalogue per language in locales/<code>.json:
// a flat JSON object of message keys and texts that a translator edits
// without touching Go. {name} marks a value filled in per page. English
// is the reference and the fallback; TestCatalogues checks that every
// catalogue has exactly its keys and placeholders.
//
//go:embed locales/*.json
var localeFiles embed.FS

// catalogue is one language's messages.
type catalogue struct {
	Code string // BCP 47, as in the file name and the lang attribute
	Name string // the language's name in itself, for the switcher
	tag  language.Tag
	msgs map[string]string
}

// catalogues are every language, English first; langMatcher picks one
// from Accept-Language (RFC 9110 12.5.4, matched as BCP 47 / RFC 4647 with
// x/text/language: de-AT gets de, pt-BR gets pt).
var catalogues, langMatcher = func() ([]*catalogue, language.Matcher) {
	cs, err := loadCatalogues()
	if err != nil {
		panic(err) // embedded at build time; TestCatalogues reads the same files
	}
	tags := make([]language.Tag, len(cs))
	for i, c := range cs {
		tags[i] = c.tag
	}
	return cs, language.NewMatcher(tags)
}()

func loadCatalogues() ([]*catalogue, error) {
	files, err := localeFiles.ReadDir("locales")
	if err != nil {
		return nil, err
	}
	var cs []*catalogue
	for _, f := range files {
		code := strings.TrimSuffix(f.Name(), ".json")
		data, err := localeFiles.ReadFile(path.Join("locales", f.Name()))
		if err != nil {
			return nil, err
		}
		c := &catalogue{Code: code}
		if err := json.Unmarshal(data, &c.msgs); err != nil {
			return nil, fmt.Errorf("locales/%s: %w", f.Name(), err)
		}
		if c.tag, err = language.Parse(code); err != nil {
			return nil, fmt.Errorf("locales/%s: the file name is not a language tag: %w", f.Name(), err)
		}
		c.Name = c.msgs["language"]
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *catalogue) int {
		switch {
		case a.Code == "en":
			return -1
		case b.Code == "en":
			return 1
		}
		return strings.Compare(a.Code, b.Code)
	})
	if len(cs) == 0 || cs[0].Code != "en" {
		return nil, fmt.Errorf("locales: no en.json, the reference catalogue")
	}
	return cs, nil
}

// pageLanguage is the language of a page: ?lang= when it names a
// catalogue (the switcher's links), else the best match for the browser's
// Accept-Language, else English.
func pageLanguage(r *http.Request) *catalogue {
	if code := r.URL.Query().Get("lang"); code != "" {
		for _, c := range catalogues {
			if c.Code == code {
				return c
			}
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return catalogues[0]
	}
	return catalogues[i]
}

// messages is every message of this language, English where it lacks
// one, HTML-escaped, with each {name} filled in from vars (name, value
// pairs; escaped too): what a page's template reads, one map lookup per
// message and no escaping left to do.
func (c *catalogue) messages(vars ...string) map[string]template.HTML {
	en := catalogues[0].msgs
	m := make(map[string]template.HTML, len(en))
	for k := range en {
		msg := html.EscapeString(c.text(k))
		for i := 0; i+1 < len(vars) && strings.IndexByte(msg, '{') >= 0; i += 2 {
			msg = c.fill(msg, vars[i], vars[i+1], html.EscapeString(vars[i+1]))
		}
		m[k] = template.HTML(msg)
	}
	return m
}

// T is the message key in this language (English where a catalogue lacks
// it), with each {name} replaced by the value after name in args.
func (c *catalogue) T(key string, args ...string) string {
	msg := c.text(key)
	for i := 0; i+1 < len(args); i += 2 {
		msg = c.fill(msg, args[i], args[i+1], args[i+1])
	}
	return msg
}

// fill puts value, as written (escaped where it goes into HTML), where msg
// says {name}. Before a value that starts with a vowel, the catalogue's
// elisions apply: French writes "d’ACME", not "de ACME" (its "elision"
// message lists them as word:elided pairs).
func (c *catalogue) fill(msg, name, value, written string) string {
	slot := "{" + name + "}"
	if startsWithVowel(value) {
		for _, pair := range strings.Fields(c.text("elision")) {
			if word, elided, ok := strings.Cut(pair, ":"); ok {
				msg = strings.ReplaceAll(msg, " "+word+" "+slot, " "+elided+slot)
			}
		}
	}
	return strings.ReplaceAll(msg, slot, written)
}

// startsWithVowel reports whether s starts with a vowel letter, accented
// or not (an h is left alone: French elides before some and not others).
func startsWithVowel(s string) bool {
	for _, r := range s {
		return strings.ContainsRune("aeiouyàâäéèêëîïôöùûüœæAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŒÆ", r)
	}
	return false
}

// text is the message key in this language, or in English where this
// catalogue lacks it.
func (c *catalogue) text(key string) string {
	if msg, ok := c.msgs[key]; ok {
		return msg
	}
	return catalogues[0].msgs[key]
}
