package xmlschema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// A Template is a document rendered once by etree with slots left in its
// text for the per-request parts (the user's address, login name, a time).
// Answers are built at config load; a request only appends the parts and
// its escaped values, so it costs a copy, not a tree.
type Template struct {
	parts []string // len(parts) == len(slots)+1
	slots []int
	fixed int // the parts' total length
}

// Slot marks, around the slot number: private-use characters, valid in XML,
// never escaped by etree, and refused in any config text (config checks).
const (
	slotOpen  = "\uE000"
	slotClose = "\uE001"
)

// Slot returns the text to put in a document where value i goes.
func Slot(i int) string { return slotOpen + strconv.Itoa(i) + slotClose }

// NewTemplate renders doc and splits it at its slots.
func NewTemplate(doc *etree.Document) (*Template, error) {
	s, err := doc.WriteToString()
	if err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	t := &Template{}
	for {
		i := strings.Index(s, slotOpen)
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], slotClose)
		if j < 0 {
			return nil, fmt.Errorf("render template: unterminated slot at byte %d", i)
		}
		n, err := strconv.Atoi(s[i+len(slotOpen) : i+j])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("render template: bad slot %q", s[i:i+j+len(slotClose)])
		}
		t.parts = append(t.parts, s[:i])
		t.slots = append(t.slots, n)
		s = s[i+j+len(slotClose):]
	}
	t.parts = append(t.parts, s)
	for _, p := range t.parts {
		t.fixed += len(p)
	}
	return t, nil
}

// Slots returns how many values Append needs.
func (t *Template) Slots() int {
	n := 0
	for _, s := range t.slots {
		n = max(n, s+1)
	}
	return n
}

// Append writes the document with the slots filled from first followed by
// rest (slot i is first[i], or rest[i-len(first)]). first holds the
// per-request values, escaped here; rest the values a domain shares, which
// Escape has escaped once at config load. It panics if a slot has no value,
// a programming error the tests catch.
func (t *Template) Append(dst []byte, first, rest []string) []byte {
	n := t.fixed // the length before escaping first's values: one allocation, as a rule
	for _, v := range t.slots {
		if v < len(first) {
			n += len(first[v])
		} else {
			n += len(rest[v-len(first)])
		}
	}
	dst = slices.Grow(dst, n)
	for i, p := range t.parts {
		dst = append(dst, p...)
		if i < len(t.slots) {
			v := t.slots[i]
			if v < len(first) {
				dst = AppendEscaped(dst, first[v])
			} else {
				dst = append(dst, rest[v-len(first)]...)
			}
		}
	}
	return dst
}

// Escape is s escaped as AppendEscaped does it: s itself (no copy) when
// nothing needs escaping, as for nearly every host name and URL.
func Escape(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !plainASCII[c] {
			return string(AppendEscaped(nil, s))
		}
	}
	return s
}

// AppendEscaped appends s escaped for XML character data and attribute
// values. Characters XML 1.0 forbids, and invalid UTF-8, become U+FFFD, so
// the output is always well-formed.
func AppendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && plainASCII[c] {
			i++ // most text: no rune to decode, nothing to escape
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '"':
			esc = "&quot;"
		case r == '\'':
			esc = "&apos;"
		case r == '\t':
			esc = "&#x9;"
		case r == '\n':
			esc = "&#xA;"
		case r == '\r':
			esc = "&#xD;"
		case r == utf8.RuneError && w == 1, !isXMLChar(r):
			esc = "\uFFFD"
		default:
			i += w
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i += w
		last = i
	}
	return append(dst, s[last:]...)
}

// plainASCII marks the ASCII bytes AppendEscaped writes as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`&<>"'`, rune(c))
	}
	return t
}()

// isXMLChar is the Char production of XML 1.0 §2.2.
func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
