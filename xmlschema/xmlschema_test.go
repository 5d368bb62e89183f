package xmlschema

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTemplate(t *testing.T) {
	doc := (&OutlookResponse{
		User:    &User{DisplayName: Slot(0), AutoDiscoverSMTPAddress: Slot(1)},
		Account: Account{AccountType: "email", Action: ActionSettings, Protocols: []Protocol{{Type: TypeIMAP, Server: "imap.example.com", Port: 993, LoginName: Slot(1)}}},
	}).Document()
	tp, err := NewTemplate(doc)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Slots() != 2 {
		t.Fatalf("Slots() = %d, want 2", tp.Slots())
	}
	out := string(tp.Append(nil, []string{`Ann & "Co" <x>`}, []string{Escape("a'b@example.com")}))
	for _, want := range []string{
		"<DisplayName>Ann &amp; &quot;Co&quot; &lt;x&gt;</DisplayName>",
		"<AutoDiscoverSMTPAddress>a&apos;b@example.com</AutoDiscoverSMTPAddress>",
		"<LoginName>a&apos;b@example.com</LoginName>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\uE000\uE001") {
		t.Error("slot marks left in output")
	}
	// Static parts are byte-identical to etree's own rendering.
	doc.Root().FindElement("Response/User/DisplayName").SetText("Ann")
	doc.Root().FindElement("Response/User/AutoDiscoverSMTPAddress").SetText("b@example.com")
	doc.Root().FindElement("Response/Account/Protocol/LoginName").SetText("b@example.com")
	want, _ := doc.WriteToString()
	if got := string(tp.Append(nil, []string{"Ann", "b@example.com"}, nil)); got != want {
		t.Errorf("template output differs from etree's:\n%s\nwant\n%s", got, want)
	}
}

func TestTemplateBadSlot(t *testing.T) {
	doc := newDocument()
	doc.CreateElement("a").SetText("\uE000x\uE001")
	if _, err := NewTemplate(doc); err == nil {
		t.Error("bad slot accepted")
	}
	doc = newDocument()
	doc.CreateElement("a").SetText("\uE0001")
	if _, err := NewTemplate(doc); err == nil {
		t.Error("unterminated slot accepted")
	}
}

// Escape gives AppendEscaped's text, and shares s when nothing changes.
func TestEscape(t *testing.T) {
	for _, s := range []string{"", "imap.example.com", "https://outlook.office365.com/EWS/Exchange.asmx", "Ann & Co", "x'y", "caf\u00e9", "a\tb", "\xff"} {
		if got, want := Escape(s), string(AppendEscaped(nil, s)); got != want {
			t.Errorf("Escape(%q) = %q, want %q", s, got, want)
		}
	}
	plain := "imap.example.com"
	if n := testing.AllocsPerRun(10, func() { Escape(plain) }); n != 0 {
		t.Errorf("Escape of a plain string allocates %v times", n)
	}
}

// Whatever goes into a slot, the document stays well-formed and reads back
// as the value (with forbidden characters as U+FFFD).
func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"", "plain", "&<>\"'", "\x00\x01\t\n\r", "\xff\xfe", "\uFFFE", "\U0001F600", "]]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendEscaped([]byte("<a b=\""), s)
		out = append(out, "\">"...)
		out = AppendEscaped(out, s)
		out = append(out, "</a>"...)
		var v struct {
			B    string `xml:"b,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal(out, &v); err != nil {
			t.Fatalf("%q -> %q: %v", s, out, err)
		}
		want := strings.Map(func(r rune) rune {
			if r == utf8.RuneError || !isXMLChar(r) {
				return '\uFFFD'
			}
			return r
		}, s) // range-style: each invalid byte is one U+FFFD
		if v.B != want || v.Text != want {
			t.Fatalf("%q read back as attr %q text %q, want %q", s, v.B, v.Text, want)
		}
	})
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		body   string
		want   Request
		schema string
	}{
		{`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + NSOutlookRequest + `"><Request><EMailAddress> jane@contoso.com </EMailAddress><AcceptableResponseSchema>` + NSOutlookResponse + `</AcceptableResponseSchema></Request></Autodiscover>`,
			Request{Namespace: NSOutlookRequest, EMailAddress: "jane@contoso.com", AcceptableResponseSchema: NSOutlookResponse}, NSOutlookResponse},
		{`<Autodiscover xmlns="` + NSMobileSyncRequest + `"><Request><EMailAddress>j@c.com</EMailAddress></Request></Autodiscover>`,
			Request{Namespace: NSMobileSyncRequest, EMailAddress: "j@c.com"}, NSMobileSyncResponse},
		{`<a:Autodiscover xmlns:a="` + NSOutlookRequest + `"><a:Request><a:LegacyDN>/o=x</a:LegacyDN></a:Request></a:Autodiscover>`,
			Request{Namespace: NSOutlookRequest, LegacyDN: "/o=x"}, NSOutlookResponse},
		// encoding="utf-16" is declared but the bytes are UTF-8: etree passes them through.
		{`<?xml version="1.0" encoding="utf-16"?><Autodiscover><Request><EMailAddress>j@c.com</EMailAddress></Request></Autodiscover>`,
			Request{EMailAddress: "j@c.com"}, NSOutlookResponse},
	} {
		got, err := ParseRequest([]byte(tc.body))
		if err != nil || got != tc.want || got.Schema() != tc.schema {
			t.Errorf("ParseRequest(%s) = %+v (schema %s), %v; want %+v", tc.body, got, got.Schema(), err, tc.want)
		}
	}
	for _, body := range []string{
		"", "not xml", "<Autodiscover>", "<Other><Request/></Other>", "<Autodiscover/>",
		"<Autodiscover><Request><EMailAddress>&bogus;</EMailAddress></Request></Autodiscover>",
		`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`,
		strings.Repeat("<a>", 2000) + strings.Repeat("</a>", 2000),
	} {
		if _, err := ParseRequest([]byte(body)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseRequest(%.60q) = %v, want ErrBadRequest", body, err)
		}
	}
}

// FuzzParseRequest: never panics, and every failure is ErrBadRequest.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`<Autodiscover xmlns="` + NSOutlookRequest + `"><Request><EMailAddress>jane@contoso.com</EMailAddress><AcceptableResponseSchema>` + NSOutlookResponse + `</AcceptableResponseSchema></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><LegacyDN>/o=x</LegacyDN></Request></Autodiscover>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><Autodiscover><Request><EMailAddress>&b;</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><![CDATA[x]]><Request/></Autodiscover>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if s := r.Schema(); s == "" {
			t.Fatal("empty schema for a parsed request")
		}
	})
}

// FuzzParseSOAPRequest: never panics; every failure is a *SOAPFaultError;
// a parsed request names a known operation.
func FuzzParseSOAPRequest(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="` + NSSOAP11 + `" xmlns:a="` + NSAutodiscover + `"><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>j@c.com</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope xmlns:s="` + NSSOAP11 + `"><s:Header><w:Action xmlns:w="` + NSAddressing + `">x</w:Action></s:Header><s:Body/></s:Envelope>`))
	f.Add([]byte(`<Envelope xmlns="` + NSSOAP12 + `"/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSOAPRequest(body)
		if err != nil {
			var fe *SOAPFaultError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Reason == "" {
				t.Fatalf("error %v is not a complete SOAP fault", err)
			}
			return
		}
		if r.Operation != OpGetUserSettings && r.Operation != OpGetDomainSettings {
			t.Fatalf("operation %q", r.Operation)
		}
	})
}

// withItems gives r these items.
func withItems(r *SOAPResponse, items ...SOAPItem) *SOAPResponse {
	r.Items = len(items)
	r.Item = func(i int, it *SOAPItem) {
		it.ErrorCode, it.ErrorMessage = items[i].ErrorCode, items[i].ErrorMessage
		it.SettingErrors = append(it.SettingErrors, items[i].SettingErrors...)
		it.Settings = append(it.Settings, items[i].Settings...)
	}
	return r
}

// A SOAP answer's Size is known before it is built, and is exactly what
// Append writes, whatever its text needs escaping; the bytes are
// well-formed XML.
func TestSOAPResponseSize(t *testing.T) {
	odd := "a&b<c>\"d'\te\n\r\x00\xff\uFFFE€"
	for _, r := range []*SOAPResponse{
		{Operation: OpGetUserSettings, ErrorCode: SOAPInvalidRequest, ErrorMessage: odd},
		withItems(&SOAPResponse{Operation: OpGetDomainSettings, ErrorCode: SOAPNoError}, SOAPItem{ErrorCode: SOAPInvalidDomain}),
		withItems(&SOAPResponse{Operation: OpGetUserSettings, ErrorCode: SOAPNoError, Server: &ServerVersionInfo{MajorVersion: 15, Version: odd}},
			SOAPItem{ErrorCode: SOAPNoError, ErrorMessage: odd, SettingErrors: []SettingError{{ErrorCode: SOAPInvalidSetting, SettingName: odd}},
				Settings: []Setting{{Name: "UserDisplayName", Value: odd}, {Name: "ExternalImap4Connections", Connections: []ProtocolConnection{{Hostname: odd, Port: 993, EncryptionMethod: "SSL"}}}}},
			SOAPItem{ErrorCode: SOAPInvalidUser, ErrorMessage: "Invalid user."}),
	} {
		b := r.Append([]byte("prefix"))
		if got := len(b) - len("prefix"); got != r.Size() {
			t.Errorf("%s: Size() = %d, Append wrote %d", r.Operation, r.Size(), got)
		}
		d := xml.NewDecoder(strings.NewReader(string(b[len("prefix"):])))
		for {
			_, err := d.Token()
			if err != nil {
				if err != io.EOF {
					t.Errorf("%s: not well-formed: %v\n%s", r.Operation, err, b)
				}
				break
			}
		}
	}
}
