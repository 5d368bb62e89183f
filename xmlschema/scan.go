package xmlschema

import (
	"bytes"
	"regexp"
	"unicode/utf8"
)

// scanRequest reads the common shape of a POX request without building a
// tree: an optional XML declaration, then elements with plain text, a
// default namespace at most, no prefixes, entities, comments, CDATA or
// DOCTYPE. Anything else returns ok=false and goes to the etree parser,
// which stays the reference: FuzzScanRequest checks that whenever this
// accepts a body, etree reads the same Request from it.
func scanRequest(body []byte) (r Request, ok bool) {
	s := scanner{b: body}
	s.space()
	if bytes.HasPrefix(s.b[s.i:], []byte("<?xml")) {
		end := bytes.Index(s.b[s.i:], []byte("?>"))
		if end < 0 || !validDecl(s.b[s.i+5:s.i+end]) {
			return r, false
		}
		s.i += end + 2
	}
	s.space()
	// Root: <Autodiscover xmlns="..."> with no other attributes of note.
	name, ns, selfClosing, ok := s.startTag()
	if !ok || name != "Autodiscover" || selfClosing {
		return r, false
	}
	r.Namespace = ns
	var stack [maxScanDepth]string
	stack[0] = name
	depth := 1
	inRequest := false
	var field *string
	var fieldSeen bool
	for depth > 0 {
		// Text up to the next tag.
		lt := bytes.IndexByte(s.b[s.i:], '<')
		if lt < 0 {
			return r, false
		}
		text := s.b[s.i : s.i+lt]
		if !validText(text) {
			return r, false
		}
		if field != nil && !fieldSeen {
			*field = internString(bytes.TrimSpace(text))
			fieldSeen = true
		} else if len(bytes.TrimSpace(text)) > 0 && field == nil {
			// Mixed content outside the three fields: leave it to etree.
			return r, false
		}
		s.i += lt
		if s.peek(1) == '/' {
			name, ok := s.endTag()
			if !ok || name != stack[depth-1] {
				return r, false
			}
			depth--
			switch {
			case field != nil && depth == 2:
				field = nil
			case inRequest && depth == 1 && name == "Request":
				// Only the first Request counts (etree's SelectElement).
				inRequest = false
				s.requestDone = true
			}
			continue
		}
		name, ns, selfClosing, ok := s.startTag()
		if !ok || ns != "" || depth >= maxScanDepth {
			return r, false
		}
		if field != nil {
			return r, false // an element inside a field: etree's Text() rules apply
		}
		switch {
		case depth == 1 && name == "Request" && !s.requestDone && !inRequest:
			inRequest = !selfClosing
			s.requestDone = selfClosing
		case depth == 2 && inRequest:
			var f *string
			switch name {
			case "EMailAddress":
				f = &r.EMailAddress
			case "LegacyDN":
				f = &r.LegacyDN
			case "AcceptableResponseSchema":
				f = &r.AcceptableResponseSchema
			}
			if selfClosing {
				if f != nil {
					*f = ""
				}
			} else {
				field, fieldSeen = f, false
				if f == nil {
					field = new(string) // an unknown child: its text is read and dropped
				}
			}
		}
		if !selfClosing {
			stack[depth] = name
			depth++
		}
	}
	if !s.requestDone {
		return r, false
	}
	s.space()
	return r, s.i == len(s.b)
}

// maxScanDepth bounds the nesting the scanner follows; deeper goes to etree.
const maxScanDepth = 16

// validDecl reports whether d is an XML declaration's content as
// encoding/xml accepts it. The declarations clients send are compared
// first: the pattern costs more than the rest of the scan.
func validDecl(d []byte) bool {
	for _, c := range commonDecls {
		if string(d) == c {
			return true
		}
	}
	return xmlDecl.Match(d)
}

var commonDecls = []string{` version="1.0" encoding="utf-8"`, ` version="1.0" encoding="UTF-8"`, ` version="1.0"`}

// xmlDecl is the XML declaration's content as encoding/xml accepts it.
var xmlDecl = regexp.MustCompile(`^\s+version=("1\.0"|'1\.0')(\s+encoding=("[A-Za-z][A-Za-z0-9._-]*"|'[A-Za-z][A-Za-z0-9._-]*'))?(\s+standalone=("(yes|no)"|'(yes|no)'))?\s*$`)

type scanner struct {
	b           []byte
	i           int
	requestDone bool
}

func (s *scanner) space() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *scanner) peek(n int) byte {
	if s.i+n < len(s.b) {
		return s.b[s.i+n]
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// name reads an ASCII XML name.
func (s *scanner) name() (string, bool) {
	start := s.i
	if s.i >= len(s.b) || plainByte[s.b[s.i]]&nameStart == 0 {
		return "", false
	}
	for s.i++; s.i < len(s.b) && plainByte[s.b[s.i]]&nameRest != 0; s.i++ {
	}
	return internString(s.b[start:s.i]), true
}

// startTag reads <name attr="v" ...> or <name .../>. ns is the value of an
// xmlns attribute; any prefixed name or attribute value with & or < fails.
func (s *scanner) startTag() (name, ns string, selfClosing, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '<' {
		return
	}
	s.i++
	if name, ok = s.name(); !ok {
		return
	}
	ok = false
	seen := 0
	for {
		hadSpace := s.i < len(s.b) && isSpace(s.b[s.i])
		s.space()
		if s.i >= len(s.b) {
			return
		}
		switch s.b[s.i] {
		case '>':
			s.i++
			return name, ns, false, true
		case '/':
			if s.peek(1) != '>' {
				return
			}
			s.i += 2
			return name, ns, true, true
		}
		if !hadSpace || seen >= 4 {
			return
		}
		attr, aok := s.name()
		if !aok || s.i >= len(s.b) || s.b[s.i] != '=' {
			return
		}
		s.i++
		if s.i >= len(s.b) || s.b[s.i] != '"' && s.b[s.i] != '\'' {
			return
		}
		q := s.b[s.i]
		s.i++
		end := bytes.IndexByte(s.b[s.i:], q)
		if end < 0 {
			return
		}
		v := s.b[s.i : s.i+end]
		if !validAttr(v) {
			return
		}
		s.i += end + 1
		if attr == "xmlns" {
			if ns != "" {
				return // duplicate xmlns
			}
			ns = internString(v)
			if ns == "" {
				return
			}
		}
		seen++
	}
}

func (s *scanner) endTag() (string, bool) {
	s.i += 2 // "</"
	name, ok := s.name()
	if !ok {
		return "", false
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '>' {
		return "", false
	}
	s.i++
	return name, true
}

// validText: UTF-8, XML characters only, no entity or markup start.
func validText(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if plainByte[c]&plainText != 0 {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return false
		}
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 || !isXMLChar(r) {
			return false
		}
		i += w
	}
	return true
}

// validAttr reports whether an attribute value is taken as it is: valid
// text without tab, newline or carriage return (which a parser would turn
// into spaces).
func validAttr(b []byte) bool {
	for i, c := range b {
		if plainByte[c]&plainAttr == 0 {
			return c >= utf8.RuneSelf && validText(b[i:]) && bytes.IndexAny(b[i:], "\t\n\r") < 0
		}
	}
	return true
}

// plainByte classes the ASCII bytes: those text and attribute values may
// hold as they are (not markup, & <; not a control character other than
// tab, newline and carriage return, XML 1.0 §2.2; in attribute values not
// those three either), and those of the names the scanner takes (ASCII
// only; anything else goes to etree). A table: the scanner runs on every
// request (issue 7).
var plainByte = func() (t [256]uint8) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		if c != '&' && c != '<' {
			t[c] = plainText | plainAttr
		}
	}
	t['\t'], t['\n'], t['\r'] = plainText, plainText, plainText
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
			t[c] |= nameStart | nameRest
		case '0' <= c && c <= '9', c == '-', c == '.':
			t[c] |= nameRest
		}
	}
	return t
}()

const (
	plainText = 1 << iota
	plainAttr
	nameStart
	nameRest
)

// internString avoids an allocation for the strings every request has.
func internString(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "Autodiscover":
		return "Autodiscover"
	case "Request":
		return "Request"
	case "EMailAddress":
		return "EMailAddress"
	case "AcceptableResponseSchema":
		return "AcceptableResponseSchema"
	case "LegacyDN":
		return "LegacyDN"
	case "xmlns":
		return "xmlns"
	case NSOutlookRequest:
		return NSOutlookRequest
	case NSMobileSyncRequest:
		return NSMobileSyncRequest
	case NSOutlookResponse:
		return NSOutlookResponse
	case NSMobileSyncResponse:
		return NSMobileSyncResponse
	}
	return string(b)
}
