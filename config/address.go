package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is a parsed e-mail address: the local part as given, the domain
// as a lower-case A-label (IDNA 2008, UTS #46 lookup rules).
type Address struct {
	Local  string
	Domain string
}

// String returns local@domain with the domain in A-label form.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// ForPeople is the address as people read it: the domain as a U-label
// (anna@bücher.example). Protocols keep String's A-labels.
func (a Address) ForPeople() string { return a.Local + "@" + UnicodeDomain(a.Domain) }

// UnicodeDomain is a normalised domain as people read it: each
// internationalised label as Unicode (UTS #46 ToUnicode), bücher.example
// for xn--bcher-kva.example. A name that does not convert back to itself
// stays as it is.
func UnicodeDomain(name string) string {
	if !strings.Contains(name, "xn--") {
		return name
	}
	u, err := idnaProfile.ToUnicode(name)
	if a, err2 := idnaProfile.ToASCII(u); err != nil || err2 != nil || a != name {
		return name // only a name that converts back to itself
	}
	return u
}

// Limits from RFC 5321 §4.5.3.1.
const (
	maxLocalPart = 64
	maxDomain    = 253
	maxAddress   = 254
)

// errBadAddress is wrapped by every address parsing error.
var errBadAddress = errors.New("not an e-mail address")

// ParseAddress parses an address as clients send it: bare addr-spec, no
// display name, no quoted local part (no business mailbox system issues
// those). The local part keeps its case; the domain is normalised.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if len(s) > 4*maxAddress { // reject huge input before any work
		return Address{}, fmt.Errorf("%w: too long", errBadAddress)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: no @", errBadAddress)
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocalPart(local); err != nil {
		return Address{}, err
	}
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %v", errBadAddress, err)
	}
	if len(local)+1+len(d) > maxAddress {
		return Address{}, fmt.Errorf("%w: longer than %d bytes", errBadAddress, maxAddress)
	}
	return Address{Local: local, Domain: d}, nil
}

// checkLocalPart accepts an RFC 5322 dot-atom, plus UTF-8 (RFC 6531).
func checkLocalPart(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("%w: empty local part", errBadAddress)
	case len(local) > maxLocalPart:
		return fmt.Errorf("%w: local part longer than %d bytes", errBadAddress, maxLocalPart)
	case !utf8.ValidString(local):
		return fmt.Errorf("%w: local part is not UTF-8", errBadAddress)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return fmt.Errorf("%w: misplaced dot in local part", errBadAddress)
	}
	for _, r := range local {
		if r < utf8.RuneSelf {
			if !isAtext(byte(r)) && r != '.' {
				return fmt.Errorf("%w: character %q not allowed in local part", errBadAddress, r)
			}
		} else if !unicode.IsGraphic(r) {
			return fmt.Errorf("%w: character %U not allowed in local part", errBadAddress, r)
		}
	}
	return nil
}

// isAtext reports RFC 5322 §3.2.3 atext for ASCII.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// NormalizeDomain returns a domain name as a lower-case A-label with no
// trailing dot, or an error if it is not a valid host name of two labels or
// more.
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if plainLDH(s) {
		return s, nil // what IDNA would return, without its allocations
	}
	return normalizeIDNA(s)
}

// plainLDH reports a name that IDNA leaves as it is: two or more labels of
// lower-case letters, digits and inner hyphens, no "--" (so no xn-- label),
// within DNS lengths. FuzzNormalizeDomain checks the claim.
func plainLDH(s string) bool {
	if len(s) == 0 || len(s) > maxDomain {
		return false
	}
	dots, label := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			label++
		case c == '-':
			if label == 0 || i+1 == len(s) || s[i+1] == '.' || s[i+1] == '-' {
				return false
			}
			label++
		case c == '.':
			if label == 0 {
				return false
			}
			dots, label = dots+1, 0
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return dots > 0 && label > 0
}

// notADomain says in plain words what was given instead of a domain
// name: a URL, an e-mail address, a host with a port.
func notADomain(s string) error {
	if i := strings.Index(s, "://"); i >= 0 {
		host, _, _ := strings.Cut(s[i+3:], "/")
		host, _, _ = strings.Cut(host, ":")
		return fmt.Errorf("%q is a URL, not a domain name: write the name alone, such as %s", s, host)
	}
	if local, domain, ok := strings.Cut(s, "@"); ok && local != "" {
		return fmt.Errorf("%q is an e-mail address, not a domain name: write the part after @, %s", s, domain)
	}
	if host, port, ok := strings.Cut(s, ":"); ok && port != "" && strings.Trim(port, "0123456789") == "" {
		return fmt.Errorf("%q has a port: write the name alone, %s (ports belong in port:)", s, host)
	}
	if strings.ContainsAny(s, "/ ") {
		return fmt.Errorf("%q is not a domain name: only letters, digits, hyphens and dots, such as contoso.com", s)
	}
	return nil
}

// normalizeIDNA is the full path: UTS #46 mapping and IDNA 2008 checks.
func normalizeIDNA(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty domain")
	}
	if len(s) > 4*maxDomain {
		return "", errors.New("domain too long")
	}
	// x/net/idna maps invalid UTF-8 to U+FFFD and encodes that: refuse it first.
	if !utf8.ValidString(s) {
		return "", errors.New("domain is not UTF-8")
	}
	if err := notADomain(s); err != nil {
		return "", err
	}
	d, err := idnaProfile.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", s, err)
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "", fmt.Errorf("domain %q has character %q", d, c)
		}
	}
	if len(d) > maxDomain {
		return "", fmt.Errorf("domain longer than %d bytes", maxDomain)
	}
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return "", fmt.Errorf("domain %q has an empty label", d)
	}
	if !strings.Contains(d, ".") {
		return "", fmt.Errorf("domain %q has a single label", d)
	}
	return d, nil
}

// normalizeHost lower-cases a server host name for comparison.
func normalizeHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
}
