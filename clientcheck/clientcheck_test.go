package clientcheck

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const goodPOX = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User><AutoDiscoverSMTPAddress>a@b.com</AutoDiscoverSMTPAddress></User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol><Type>IMAP</Type><Server>imap.b.com</Server><Port>993</Port><LoginName>a@b.com</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>SSL</Encryption></Protocol>
      <Protocol><Type>SMTP</Type><Server>smtp.b.com</Server><Port>587</Port><LoginName>a@b.com</LoginName><SPA>off</SPA><SSL>on</SSL><Encryption>TLS</Encryption></Protocol>
      <Protocol><Type>EXCH</Type><EwsUrl>https://b.com/EWS/Exchange.asmx</EwsUrl></Protocol>
      <Protocol><Type>EXPR</Type><EwsUrl>https://b.com/EWS/Exchange.asmx</EwsUrl></Protocol>
    </Account>
  </Response>
</Autodiscover>`

const goodTB = `<?xml version="1.0" encoding="utf-8"?>
<clientConfig version="1.1"><emailProvider id="b.com"><domain>b.com</domain>
<incomingServer type="imap"><hostname>imap.b.com</hostname><port>993</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username><authentication>OAuth2</authentication></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.b.com</hostname><port>587</port><socketType>STARTTLS</socketType><username>%EMAILADDRESS%</username><authentication>OAuth2</authentication></outgoingServer>
</emailProvider></clientConfig>`

const ct = "text/xml; charset=utf-8"

func TestReadPOXGood(t *testing.T) {
	p, err := ReadPOX(ct, []byte(goodPOX))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Servers) != 2 || p.Servers[0].Security != "ssl" || p.Servers[1].Security != "starttls" || p.EwsURL != "https://b.com/EWS/Exchange.asmx" {
		t.Errorf("%+v", p)
	}
}

// Each rule of the reader rejects the mistake it exists for.
func TestReadPOXRejects(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"content type without charset (DavMail)", "text/xml", goodPOX, "DavMail"},
		{"whitespace before <?xml", ct, "\n" + goodPOX, "does not start with <?xml"},
		{"BOM before <?xml", ct, "\ufeff" + goodPOX, "does not start with <?xml"},
		{"prefixed elements", ct, strings.NewReplacer("<Autodiscover xmlns=", "<a:Autodiscover xmlns:a=", "</Autodiscover>", "</a:Autodiscover>").Replace(goodPOX), "prefix"},
		{"https namespace", ct, strings.Replace(goodPOX, `"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"`, `"https://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"`, 1), "decode"},
		{"SPA left out", ct, strings.Replace(goodPOX, "<SPA>off</SPA>", "", 1), "SPA"},
		{"Encryption disagrees with port", ct, strings.Replace(goodPOX, "<Encryption>TLS</Encryption>", "<Encryption>SSL</Encryption>", 1), "Encryption"},
		{"lower-case Type", ct, strings.Replace(goodPOX, "<Type>IMAP</Type>", "<Type>imap</Type>", 1), "case-sensitive"},
		{"EwsUrl only in EXCH", ct, strings.Replace(goodPOX, "<Protocol><Type>EXPR</Type><EwsUrl>https://b.com/EWS/Exchange.asmx</EwsUrl></Protocol>", "", 1), "EXPR"},
		{"EwsUrl across lines", ct, strings.Replace(goodPOX, "<EwsUrl>https://b.com/EWS/Exchange.asmx</EwsUrl></Protocol>\n      <Protocol><Type>EXPR", "<EwsUrl>\nhttps://b.com/EWS/Exchange.asmx</EwsUrl></Protocol><Protocol><Type>EXPR", 1), "one line"},
		{"http redirect", ct, strings.Replace(goodPOX, "<Action>settings</Action>", "<Action>redirectUrl</Action><RedirectUrl>http://x.com/a.xml</RedirectUrl>", 1), "https"},
		{"bare ampersand", ct, strings.Replace(goodPOX, "a@b.com</AutoDiscoverSMTPAddress>", "a&b@b.com</AutoDiscoverSMTPAddress>", 1), "malformed"},
		{"unknown error code", ct, `<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response><Error Time="01:02:03.0000000" Id="1"><ErrorCode>404</ErrorCode></Error></Response></Autodiscover>`, "ErrorCode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPOX(tc.contentType, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestThunderbirdRejects(t *testing.T) {
	if _, err := Thunderbird("text/xml", []byte(goodTB)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"text/plain", "text/plain", goodTB, "Content-Type"},
		{"upper-case content type", "Text/XML", goodTB, "Content-Type"},
		{"space before <?xml", "text/xml", " " + goodTB, "<?xml"},
		{"no domain", "text/xml", strings.Replace(goodTB, "<domain>b.com</domain>", "", 1), "no <domain>"},
		{"socketType case", "text/xml", strings.Replace(goodTB, "<socketType>SSL</socketType>", "<socketType>ssl</socketType>", 1), "socketType"},
		{"unknown authentication", "text/xml", strings.Replace(goodTB, "<authentication>OAuth2</authentication></incomingServer>", "<authentication>oauth</authentication></incomingServer>", 1), "authentication"},
		{"port out of range", "text/xml", strings.Replace(goodTB, "<port>993</port>", "<port>99999</port>", 1), "port"},
		{"no username", "text/xml", strings.Replace(goodTB, "<username>%EMAILADDRESS%</username>", "", 1), "no username"},
		{"no smtp", "text/xml", goodTB[:strings.Index(goodTB, "<outgoingServer")] + "</emailProvider></clientConfig>", "outgoingServer"},
		{"prefixed", "text/xml", strings.NewReplacer("<clientConfig ", `<c:clientConfig xmlns:c="x" `, "</clientConfig>", "</c:clientConfig>").Replace(goodTB), "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Thunderbird(tc.contentType, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReadV2(t *testing.T) {
	if v, err := ReadV2("application/json; charset=utf-8", []byte(`{"Protocol":"ActiveSync","Url":"https://x.com/Microsoft-Server-ActiveSync"}`)); err != nil || v.Protocol != "ActiveSync" {
		t.Fatalf("%+v %v", v, err)
	}
	for _, body := range []string{`{"Protocol":"Ews","Url":"http://x.com/"}`, `{"Protocol":"Ews"}`, `{"Protocol":"Ews","Url":"https://x.com/","Extra":1}`, `not json`} {
		if _, err := ReadV2("application/json", []byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
	if _, err := ReadV2("text/html", []byte(`{"Protocol":"Ews","Url":"https://x.com/"}`)); err == nil {
		t.Error("accepted text/html")
	}
}

func TestReadSOAPRejects(t *testing.T) {
	good := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action><h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/2010/Autodiscover"><h:MajorVersion>15</h:MajorVersion><h:MinorVersion>0</h:MinorVersion><h:MajorBuildNumber>0</h:MajorBuildNumber><h:MinorBuildNumber>0</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>NoError</ErrorCode><UserSettings><UserSetting i:type="StringSetting"><Name>ExternalEwsUrl</Name><Value>https://x/EWS/Exchange.asmx</Value></UserSetting></UserSettings></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`
	s, err := ReadSOAP(200, "text/xml; charset=utf-8", []byte(good))
	if err != nil || s.Users[0].Settings["ExternalEwsUrl"] != "https://x/EWS/Exchange.asmx" {
		t.Fatalf("%+v %v", s, err)
	}
	for name, body := range map[string]string{
		"no i:type":            strings.Replace(good, ` i:type="StringSetting"`, "", 1),
		"unknown i:type":       strings.Replace(good, `i:type="StringSetting"`, `i:type="String"`, 1),
		"wrong namespace":      strings.Replace(good, `xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"`, `xmlns="https://schemas.microsoft.com/exchange/2010/Autodiscover"`, 1),
		"no Action":            strings.Replace(good, "GetUserSettingsResponse</a:Action>", "Other</a:Action>", 1),
		"no ErrorCode":         strings.Replace(good, "<UserResponse><ErrorCode>NoError</ErrorCode>", "<UserResponse>", 1),
		"SOAP 1.2":             strings.Replace(good, "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope", 1),
		"no ServerVersionInfo": regexp.MustCompile(`<h:ServerVersionInfo.*</h:ServerVersionInfo>`).ReplaceAllString(good, ""),
		"no MajorVersion":      regexp.MustCompile(`<h:MajorVersion>15</h:MajorVersion>`).ReplaceAllString(good, ""),
		"Version not a number": strings.Replace(good, "<h:MinorVersion>0<", "<h:MinorVersion>zero<", 1),
	} {
		if _, err := ReadSOAP(200, "text/xml", []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadSOAP(500, "text/xml", []byte(good)); err == nil {
		t.Error("an answer with HTTP 500 accepted")
	}
	fault := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>`
	if f, err := ReadSOAP(500, "text/xml", []byte(fault)); err != nil || f.Fault != "s:Client" {
		t.Errorf("a Fault with 500: %+v %v", f, err)
	}
	if _, err := ReadSOAP(400, "text/xml", []byte(fault)); err == nil {
		t.Error("a Fault with HTTP 400 accepted")
	}
}

func TestSOAPEndpoints(t *testing.T) {
	// Presence decides, as in the EWS Managed API: False still enables.
	soap, wss, oauth := SOAPEndpoints(http.Header{"X-Soap-Enabled": {"True"}, "X-Wssecurity-Enabled": {"False"}})
	if !soap || !wss || oauth {
		t.Errorf("soap %v wssecurity %v oauth %v", soap, wss, oauth)
	}
	if soap, _, _ := SOAPEndpoints(http.Header{}); soap {
		t.Error("no headers read as SOAP enabled")
	}
}
