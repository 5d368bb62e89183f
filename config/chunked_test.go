package config

import (
	"bytes"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/autodiscover-proxy/autodiscover-proxy/internal/genconfig"
)

// parseWhole is the whole-document path, the reference.
func parseWhole(t testing.TB, data []byte) (*Config, error) {
	t.Helper()
	return Parse(data, "test", "/etc") // small inputs never take the chunked path
}

func sameConfig(t testing.TB, a, b *Config) {
	t.Helper()
	if len(a.Domains) != len(b.Domains) {
		t.Fatalf("%d domains against %d", len(a.Domains), len(b.Domains))
	}
	for i := range a.Domains {
		if !reflect.DeepEqual(a.Domains[i], b.Domains[i]) {
			t.Fatalf("domain %d differs:\n%+v\n%+v", i, a.Domains[i], b.Domains[i])
		}
	}
	if !reflect.DeepEqual(a.TLS, b.TLS) || !reflect.DeepEqual(a.Log, b.Log) || !reflect.DeepEqual(a.TrustedProxies, b.TrustedProxies) || len(a.byName) != len(b.byName) {
		t.Fatal("top-level settings differ")
	}
	for n, d := range a.byName {
		if b.byName[n] == nil || b.byName[n].Name != d.Name {
			t.Fatalf("lookup of %s differs", n)
		}
	}
}

// TestChunkedMatchesWhole: configs read in chunks of any size equal the
// whole-document reading.
func TestChunkedMatchesWhole(t *testing.T) {
	var gen bytes.Buffer
	genconfig.Write(&gen, 1000)
	example, _ := os.ReadFile("../deploy/config.example.yaml")
	production, _ := os.ReadFile("../deploy/config.production.yaml")
	for name, doc := range map[string][]byte{
		"generated":            gen.Bytes(),
		"example":              example,
		"production":           production,
		"header after domains": []byte("domains:\n- name: a.com\n  provider: microsoft365\n\n# comment\n- name: b.com   # trailing\n  provider: google-workspace\n  aliases:\n    - c.com\nlog:\n  addresses: plain\n"),
		"comments between":     []byte("# top\ntls: {min_version: \"1.3\"}\ndomains:\n  # first\n  - name: a.com\n    provider: microsoft365\n\n  # second\n  - name: b.com\n    provider: microsoft365\n    display_name: >-\n      B\n      - not an item\n"),
	} {
		whole, err := parseWhole(t, doc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, per := range []int{1, 2, 3, 7, 1000, 5000} {
			c, _, ok := parseChunked(doc, "test", "/etc", per)
			if !ok {
				t.Fatalf("%s: the chunked path refused a plain layout", name)
			}
			sameConfig(t, c, whole)
		}
	}
}

// Layouts the splitter must not take: it falls back, and Parse still reads
// them (or reports their problem).
func TestChunkedFallsBack(t *testing.T) {
	for name, doc := range map[string]string{
		"flow":             "domains: [{name: a.com, provider: microsoft365}]\n",
		"anchor":           "domains:\n  - &d\n    name: a.com\n    provider: microsoft365\n  - <<: *d\n    name: b.com\n",
		"crlf":             "domains:\r\n  - name: a.com\r\n    provider: microsoft365\r\n",
		"document marker":  "---\ndomains:\n  - name: a.com\n    provider: microsoft365\n",
		"odd indent":       "domains:\n  - name: a.com\n    provider: microsoft365\n - name: b.com\n   provider: microsoft365\n",
		"problem":          "domains:\n  - name: a.com\n    provider: microsoft365\n    imap: {port: 99999}\n",
		"unknown key":      "domains:\n  - name: a.com\n    provider: microsoft365\n    bogus: 1\n",
		"duplicate domain": "domains:\n  - name: a.com\n    provider: microsoft365\n  - name: a.com\n    provider: microsoft365\n",
	} {
		if _, _, ok := parseChunked([]byte(doc), "t", "", 1); ok {
			t.Errorf("%s: taken by the chunked path", name)
		}
	}
}

// Large configs take the chunked path through Parse and still report
// problems with their lines.
func TestParseLargeConfig(t *testing.T) {
	var gen bytes.Buffer
	genconfig.Write(&gen, 20000)
	if gen.Len() <= chunkedAbove {
		t.Fatalf("generated config of %d bytes is too small to test the chunked path", gen.Len())
	}
	c, err := Parse(gen.Bytes(), "big", "")
	if err != nil || len(c.Domains) != 20000 {
		t.Fatalf("%v, %d domains", err, len(c.Domains))
	}
	bad := strings.Replace(gen.String(), "  - name: tenant15000.example\n", "  - name: tenant15000.example\n    imap: {port: 0x1ffff}\n", 1)
	_, err = Parse([]byte(bad), "big", "")
	if err == nil || !strings.Contains(err.Error(), "domains[15000].imap.port: 131071 is not a TCP port") {
		t.Fatalf("problem in a large config: %v", err)
	}
	line := 1 + strings.Count(bad[:strings.Index(bad, "0x1ffff")], "\n")
	if !strings.Contains(err.Error(), "big:"+strconv.Itoa(line)+":") {
		t.Errorf("problem reported without its line %d: %v", line, err)
	}
}

// FuzzChunkedParse: whenever the chunked path accepts a document, the
// whole-document path reads the same config from it.
func FuzzChunkedParse(f *testing.F) {
	f.Add([]byte("domains:\n  - name: a.com\n    provider: microsoft365\n  - name: b.com\n    provider: custom\n    imap: {host: m.b.com, port: 993, tls: ssl}\n    smtp: {host: m.b.com, port: 587, tls: starttls}\n"))
	f.Add([]byte("log: {addresses: plain}\ndomains:\n- name: a.com\n  provider: microsoft365\n  display_name: \"A\n   - b\"\ntrusted_proxies: [10.0.0.0/8]\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, _, ok := parseChunked(doc, "t", "", 1)
		if !ok || bytes.Contains(doc, []byte("include")) { // Parse reads included files; parseChunked leaves them to it
			return
		}
		whole, err := parseWhole(t, doc)
		if err != nil {
			t.Fatalf("chunked accepts what the whole parse refuses (%v):\n%s", err, doc)
		}
		sameConfig(t, c, whole)
	})
}
