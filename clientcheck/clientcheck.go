// Package clientcheck reads autoconfiguration answers the way real clients
// read them (after each client's own source), independently of the code that writes
// them: it uses encoding/xml and its own types, never xmlschema. Tests run
// every golden answer through it; the doctor command runs live answers
// through it.
package clientcheck

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Server is a mail server as a client configures it from an answer.
type Server struct {
	Protocol string // imap, pop3, smtp
	Host     string
	Port     int
	Security string // ssl, starttls, none
	Username string
	Auth     []string // autoconfig only
}

// startsWithXMLDecl: Thunderbird's parser fails on any byte, even
// whitespace, before <?xml; exchangelib calls such a body "not XML".
func startsWithXMLDecl(body []byte) error {
	if !bytes.HasPrefix(body, []byte("<?xml")) {
		n := min(len(body), 16)
		return fmt.Errorf("body does not start with <?xml (starts with %q)", body[:n])
	}
	return nil
}

// unprefixed checks well-formedness and that no element name has a prefix:
// Thunderbird rejects a:Autodiscover and friends.
func unprefixed(body []byte) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		t, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("malformed XML: %w", err)
		}
		if se, ok := t.(xml.StartElement); ok && se.Name.Space != "" {
			return fmt.Errorf("element <%s:%s> has a prefix; clients match unprefixed names", se.Name.Space, se.Name.Local)
		}
	}
}

// strict decodes with a strict decoder after the byte-level checks.
func strict(body []byte, v any) error {
	if err := startsWithXMLDecl(body); err != nil {
		return err
	}
	if err := unprefixed(body); err != nil {
		return err
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func trim(s string) string { return strings.TrimSpace(s) }

// httpsURL reads the element name's text as an absolute https URL, as
// clients that follow it (exchangelib, Thunderbird, ActiveSync) require.
func httpsURL(name, s string) (string, error) {
	u, err := url.Parse(trim(s))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%s %q is not an https URL", name, s)
	}
	return u.String(), nil
}
