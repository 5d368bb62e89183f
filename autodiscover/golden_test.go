package autodiscover

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/clientcheck"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// beforeCutoff is inside Microsoft's SMTP AUTH Basic window; afterCutoff
// is past the preset's SMTPPasswordUntil.
var (
	beforeCutoff = time.Date(2026, time.November, 22, 10, 30, 0, 123456700, time.UTC)
	afterCutoff  = time.Date(2027, time.January, 2, 8, 0, 0, 0, time.UTC)
)

func newTestServer(t testing.TB, now time.Time, log io.Writer) *Server {
	t.Helper()
	cfg, err := config.Load("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now }
	s.Log = slog.New(slog.NewTextHandler(log, nil))
	return s
}

const (
	reqOutlook    = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	respOutlook   = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	reqMobile     = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
	respMobile    = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
	contentXML    = "text/xml; charset=utf-8"
	outlookHeader = "X-MapiHttpCapability"
)

// poxBody is a request as Outlook and Thunderbird send it.
func poxBody(ns, addr, schema string) string {
	return `<?xml version="1.0" encoding="utf-8"?>` +
		`<Autodiscover xmlns="` + ns + `"><Request>` +
		`<EMailAddress>` + addr + `</EMailAddress>` +
		`<AcceptableResponseSchema>` + schema + `</AcceptableResponseSchema>` +
		`</Request></Autodiscover>`
}

// exchange is one request, its golden answer and how clients must read it.
type exchange struct {
	golden string // file under testdata/golden, without .golden
	http   bool   // plain-HTTP listener instead of HTTPS
	method string
	target string
	host   string
	header http.Header
	body   string
	now    time.Time // zero: beforeCutoff
	status int
	read   func(t *testing.T, contentType string, body []byte)
	// head checks the headers, for clients that read them.
	head func(t *testing.T, h http.Header)
}

var (
	m365 = func(login string) []clientcheck.Server {
		return []clientcheck.Server{
			{Protocol: "imap", Host: "outlook.office365.com", Port: 993, Security: "ssl", Username: login},
			{Protocol: "pop3", Host: "outlook.office365.com", Port: 995, Security: "ssl", Username: login},
			{Protocol: "smtp", Host: "smtp.office365.com", Port: 587, Security: "starttls", Username: login},
		}
	}
	google = func(login string) []clientcheck.Server {
		return []clientcheck.Server{
			{Protocol: "imap", Host: "imap.gmail.com", Port: 993, Security: "ssl", Username: login},
			{Protocol: "pop3", Host: "pop.gmail.com", Port: 995, Security: "ssl", Username: login},
			{Protocol: "smtp", Host: "smtp.gmail.com", Port: 465, Security: "ssl", Username: login},
		}
	}
	northwind = func(login string) []clientcheck.Server {
		return []clientcheck.Server{
			{Protocol: "imap", Host: "mail.northwind.example", Port: 993, Security: "ssl", Username: login},
			{Protocol: "pop3", Host: "mail.northwind.example", Port: 995, Security: "ssl", Username: login},
			{Protocol: "smtp", Host: "mail.northwind.example", Port: 587, Security: "starttls", Username: login},
		}
	}
	tailspin = func(login string) []clientcheck.Server {
		return []clientcheck.Server{
			{Protocol: "imap", Host: "mail.tailspin.example", Port: 993, Security: "ssl", Username: login},
			{Protocol: "pop3", Host: "mail.tailspin.example", Port: 110, Security: "starttls", Username: login},
			{Protocol: "smtp", Host: "mail.tailspin.example", Port: 587, Security: "starttls", Username: login},
		}
	}
)

const (
	m365EWS      = "https://outlook.office365.com/EWS/Exchange.asmx"
	m365EAS      = "https://outlook.office365.com/Microsoft-Server-ActiveSync"
	northwindEWS = "https://mail.northwind.example/EWS/Exchange.asmx"
	northwindEAS = "https://mail.northwind.example/Microsoft-Server-ActiveSync"
	northwindOAB = "https://mail.northwind.example/OAB/"
)

func poxSettings(addr, ews string, servers []clientcheck.Server) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadPOX(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if p.Action != "settings" || p.Address != addr || p.EwsURL != ews || !reflect.DeepEqual(p.Servers, servers) {
			t.Errorf("clients read action %q address %q ews %q servers\n%+v\nwant settings %q %q\n%+v",
				p.Action, p.Address, p.EwsURL, p.Servers, addr, ews, servers)
		}
		// Evolution EWS takes ASUrl; Exchange puts EXCH/EXPR first.
		if p.ASUrl != ews || ews != "" && p.FirstProtocol.Type != "EXCH" {
			t.Errorf("Evolution reads ASUrl %q (want %q); first Protocol %s, want EXCH as in Exchange's answers", p.ASUrl, ews, p.FirstProtocol.Type)
		}
	}
}

// poxGOA: GNOME Online Accounts, reading only the first Protocol, finds
// the EWS and offline address book URLs.
func poxGOA(addr, ews, oab string, servers []clientcheck.Server) func(*testing.T, string, []byte) {
	settings := poxSettings(addr, ews, servers)
	return func(t *testing.T, ct string, body []byte) {
		settings(t, ct, body)
		p, _ := clientcheck.ReadPOX(ct, body)
		as, o, err := p.GOA()
		if err != nil || as != ews || o != oab {
			t.Errorf("GNOME Online Accounts reads ASUrl %q OABUrl %q (%v), want %q %q", as, o, err, ews, oab)
		}
	}
}

func poxRedirect(url string) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadPOX(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if p.Action != "redirectUrl" || p.RedirectURL != url {
			t.Errorf("clients read action %q url %q, want redirectUrl %q", p.Action, p.RedirectURL, url)
		}
	}
}

func poxMobileSync(addr, url string) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadMobileSync(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if p.Schema != respMobile || p.Address != addr || p.MobileSyncURL != url {
			t.Errorf("clients read schema %q address %q url %q, want mobilesync %q %q", p.Schema, p.Address, p.MobileSyncURL, addr, url)
		}
	}
}

func poxError(code int) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadPOX(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if p.ErrorCode != code {
			t.Errorf("clients read error code %d, want %d", p.ErrorCode, code)
		}
	}
}

// mobileSyncError: an error to a mobilesync request, as a namespace-strict
// ActiveSync client reads it.
func mobileSyncError(code int) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadMobileSync(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if p.ErrorCode != code {
			t.Errorf("ActiveSync clients read error code %d, want %d", p.ErrorCode, code)
		}
	}
}

// readV2Error checks a v2 error as Outlook mobile reads it.
func readV2Error(code string) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		v, err := clientcheck.ReadV2Error(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if v.ErrorCode != code {
			t.Errorf("Outlook reads error %s, want %s", v.ErrorCode, code)
		}
	}
}

// plainText is an error a client shows as it is: a plain-text reason.
func plainText(t *testing.T, ct string, body []byte) {
	if !strings.HasPrefix(ct, "text/plain") || len(bytes.TrimSpace(body)) == 0 {
		t.Errorf("Content-Type %q, body %q: want a plain-text reason", ct, body)
	}
}

// readRedirect checks a redirect's Location as a client follows it.
func readRedirect(location string) func(*testing.T, http.Header) {
	return func(t *testing.T, h http.Header) {
		if got := h.Get("Location"); got != location {
			t.Errorf("Location %q, want %q", got, location)
		}
	}
}

// readPage reads a setup page as a browser parses it: the address form,
// and for an address of a served domain a settings table that holds
// exactly the domain's servers, ports and user name, in the config's own
// terms (testdata/config.yaml), and a profile link with its QR code where
// a profile is offered.
func readPage(email string, profile bool) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		p, err := clientcheck.ReadPage(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		var want []clientcheck.PageRow
		addr, err := config.ParseAddress(email)
		if err == nil {
			cfg, err := config.Load("testdata/config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := cfg.Lookup(addr.Domain); ok {
				login := d.LoginFor(addr)
				for _, s := range []*config.Server{d.IMAP, d.POP3, d.SMTP} {
					if s != nil {
						want = append(want, clientcheck.PageRow{Server: s.Host, Port: strconv.Itoa(s.Port), Username: login})
					}
				}
				if u, err := url.Parse(d.ActiveSyncURL); err == nil && d.ActiveSyncURL != "" {
					want = append(want, clientcheck.PageRow{Server: u.Hostname(), Port: "443", Username: login})
				}
			}
		}
		var got []clientcheck.PageRow
		for _, r := range p.Rows {
			got = append(got, clientcheck.PageRow{Server: r.Server, Port: r.Port, Username: r.Username})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the page's table reads %+v, want %+v", got, want)
		}
		if (p.ProfileLink != "") != profile || p.QRCode != profile {
			t.Errorf("profile link %q, QR code %v; want a profile offered: %v", p.ProfileLink, p.QRCode, profile)
		}
		if profile && !strings.Contains(p.ProfileLink, "/mobileconfig?email="+url.QueryEscape(addr.String())) {
			t.Errorf("the profile link %q is not for %s", p.ProfileLink, email)
		}
	}
}

func readV2(proto, url string) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		v, err := clientcheck.ReadV2(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if v.Protocol != proto || v.URL != url {
			t.Errorf("Outlook reads %+v, want %s %s", v, proto, url)
		}
	}
}

func readTB(domains []string, servers []clientcheck.Server, smtpAuth []string) func(*testing.T, string, []byte) {
	return readTBWith(domains, servers, smtpAuth, "", nil, "")
}

// readTBWith also checks the Exchange entries current Thunderbird reads:
// the EWS URL with its sign-in and the ActiveSync URL ("" for none).
func readTBWith(domains []string, servers []clientcheck.Server, smtpAuth []string, ews string, ewsAuth []string, eas string) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		c, err := clientcheck.Thunderbird(ct, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.EWS != ews || !reflect.DeepEqual(c.EWSAuth, ewsAuth) || c.EASURL != eas {
			t.Errorf("Thunderbird reads EWS %q %v, ActiveSync %q; want %q %v %q", c.EWS, c.EWSAuth, c.EASURL, ews, ewsAuth, eas)
		}
		var got []clientcheck.Server
		for _, s := range append(c.Incoming, c.Outgoing...) {
			if s.Protocol == "smtp" {
				if !reflect.DeepEqual(s.Auth, smtpAuth) {
					t.Errorf("SMTP authentication %v, want %v", s.Auth, smtpAuth)
				}
			}
			s.Auth = nil
			got = append(got, s)
		}
		if !reflect.DeepEqual(c.Domains, domains) || !reflect.DeepEqual(got, servers) {
			t.Errorf("Thunderbird reads domains %v servers\n%+v\nwant %v\n%+v", c.Domains, got, domains, servers)
		}
	}
}

// soapBody is a SOAP request as the EWS Managed API sends it.
func soapBody(op string, items []string, settings ...string) string {
	return clientcheck.SOAPRequest(op, items, settings...)
}

// readSOAP checks a SOAP answer with its status as the EWS Managed API
// reads it; check looks at what it read.
func readSOAP(status int, check func(*testing.T, *clientcheck.SOAP)) func(*testing.T, string, []byte) {
	return func(t *testing.T, ct string, body []byte) {
		s, err := clientcheck.ReadSOAP(status, ct, body)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s)
	}
}

func exchanges() []exchange {
	post := func(golden, body string, status int, read func(*testing.T, string, []byte)) exchange {
		return exchange{golden: golden, method: "POST", target: "/autodiscover/autodiscover.xml",
			host: "autodiscover.contoso.com", body: body, status: status, read: read}
	}
	soap := func(golden, body string, status int, read func(*testing.T, string, []byte)) exchange {
		return exchange{golden: golden, method: "POST", target: "/autodiscover/autodiscover.svc",
			host: "autodiscover.contoso.com", body: body, status: status, read: read}
	}
	soapFault := func(code string) func(*testing.T, string, []byte) {
		return readSOAP(http.StatusInternalServerError, func(t *testing.T, s *clientcheck.SOAP) {
			if s.Fault != code {
				t.Errorf("fault %q, want %q", s.Fault, code)
			}
		})
	}
	withHeader := func(e exchange, k, v string) exchange {
		e.header = http.Header{k: {v}}
		return e
	}
	get := func(golden, target, host string, status int, read func(*testing.T, string, []byte)) exchange {
		return exchange{golden: golden, method: "GET", target: target, host: host, status: status, read: read}
	}
	ok := http.StatusOK
	// The EWS Managed API's endpoint discovery: a GET, whose headers say
	// which SOAP endpoints exist; the body is POX's error 600.
	discovery := get("pox-get-https-600", "/autodiscover/autodiscover.xml", "autodiscover.contoso.com", ok, poxError(600))
	discovery.head = func(t *testing.T, h http.Header) {
		if soap, wss, _ := clientcheck.SOAPEndpoints(h); !soap || wss {
			t.Errorf("EWS clients read SOAP %v, WS-Security %v from %v; want the plain SOAP endpoint only", soap, wss, h)
		}
	}
	ex := []exchange{
		// POX, outlook schema, every preset.
		post("pox-outlook-microsoft365", poxBody(reqOutlook, "Jane.Doe@Contoso.COM", respOutlook), ok,
			poxSettings("Jane.Doe@contoso.com", "", m365("Jane.Doe@contoso.com"))),
		// A tenant that enabled EWS (ews_access: on): EXCH and EXPR first.
		post("pox-outlook-microsoft365-ews-on", poxBody(reqOutlook, "ann@tailwind.example", respOutlook), ok,
			poxSettings("ann@tailwind.example", m365EWS, m365("ann@tailwind.example"))),
		post("pox-outlook-microsoft365-alias-idn", poxBody(reqOutlook, "anna@bücher.example", respOutlook), ok,
			poxSettings("anna@xn--bcher-kva.example", "", m365("anna@xn--bcher-kva.example"))),
		withHeader(post("pox-outlook-microsoft365-exchange-redirect", poxBody(reqOutlook, "jane@contoso.com", respOutlook), ok,
			poxRedirect("https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml")), outlookHeader, "1"),
		withHeader(post("pox-outlook-microsoft365-exchange-clientcanhandle", poxBody(reqOutlook, "jane@contoso.com", respOutlook), ok,
			poxRedirect("https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml")), "X-ClientCanHandle", "Negotiate,ExHttpInfo"),
		withHeader(post("pox-outlook-microsoft365-exchange-settings-policy", poxBody(reqOutlook, "max@fabrikam.com", respOutlook), ok,
			poxSettings("max@fabrikam.com", "", m365("max@fabrikam.com"))), outlookHeader, "1"),
		post("pox-outlook-google-workspace", poxBody(reqOutlook, "ann@example.org", respOutlook), ok,
			poxSettings("ann@example.org", "", google("ann@example.org"))),
		post("pox-outlook-custom", poxBody(reqOutlook, "bob@tailspin.example", respOutlook), ok,
			poxSettings("bob@tailspin.example", "https://mail.tailspin.example/EWS/Exchange.asmx", tailspin(`TAILSPIN\bob`))),
		// No AcceptableResponseSchema: the request namespace decides.
		post("pox-outlook-no-schema", strings.Replace(poxBody(reqOutlook, "jane@contoso.com", ""), "<AcceptableResponseSchema></AcceptableResponseSchema>", "", 1), ok,
			poxSettings("jane@contoso.com", "", m365("jane@contoso.com"))),
		// POX, mobilesync schema.
		post("pox-mobilesync-microsoft365", poxBody(reqMobile, "jane@contoso.com", respMobile), ok,
			poxMobileSync("jane@contoso.com", m365EAS)),
		post("pox-mobilesync-custom", poxBody(reqMobile, "bob@tailspin.example", respMobile), ok,
			poxMobileSync("bob@tailspin.example", "https://mail.tailspin.example/Microsoft-Server-ActiveSync")),
		post("pox-mobilesync-google-workspace-601", poxBody(reqMobile, "ann@example.org", respMobile), ok, mobileSyncError(601)),
		post("pox-mobilesync-error-unknown-domain-500", poxBody(reqMobile, "eve@unknown.example", respMobile), ok, mobileSyncError(500)),
		post("pox-mobilesync-error-bad-address-600", poxBody(reqMobile, "no-at-sign", respMobile), ok, mobileSyncError(600)),
		// An Exchange server the operator runs: Exchange's Protocol order,
		// with the offline address book; Outlook desktop gets IMAP.
		post("pox-outlook-exchange", poxBody(reqOutlook, "nina@northwind.example", respOutlook), ok,
			poxGOA("nina@northwind.example", northwindEWS, northwindOAB, northwind("nina@northwind.example"))),
		withHeader(post("pox-outlook-exchange-outlook-desktop", poxBody(reqOutlook, "nina@northwind.example", respOutlook), ok,
			poxSettings("nina@northwind.example", "", northwind("nina@northwind.example"))), outlookHeader, "1"),
		post("pox-mobilesync-exchange", poxBody(reqMobile, "nina@northwind.example", respMobile), ok, poxMobileSync("nina@northwind.example", northwindEAS)),
		// POX errors: HTTP 200 with the error document.
		post("pox-error-unknown-domain-500", poxBody(reqOutlook, "eve@unknown.example", respOutlook), ok, poxError(500)),
		post("pox-error-malformed-600", "<Autodiscover><Request>", ok, poxError(600)),
		post("pox-error-not-xml-600", "hello", ok, poxError(600)),
		post("pox-error-no-address-600", poxBody(reqOutlook, "", respOutlook), ok, poxError(600)),
		post("pox-error-bad-address-600", poxBody(reqOutlook, "no-at-sign", respOutlook), ok, poxError(600)),
		post("pox-error-schema-601", poxBody(reqOutlook, "jane@contoso.com", "http://example.com/other"), ok, poxError(601)),
		post("pox-error-legacydn-500", `<Autodiscover xmlns="`+reqOutlook+`"><Request><LegacyDN>/o=Contoso/ou=Exchange/cn=Recipients/cn=jane</LegacyDN><AcceptableResponseSchema>`+respOutlook+`</AcceptableResponseSchema></Request></Autodiscover>`, ok, poxError(500)),
		post("pox-error-too-large-600", poxBody(reqOutlook, "jane@contoso.com", respOutlook)+strings.Repeat(" ", maxPOXBody), ok, poxError(600)),
		post("pox-error-entity-expansion-600", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>`+
			`<Autodiscover xmlns="`+reqOutlook+`"><Request><EMailAddress>&lol2;@contoso.com</EMailAddress></Request></Autodiscover>`, ok, poxError(600)),
		discovery,
		// exchangelib's spelling.
		post("pox-outlook-capitalised-path", poxBody(reqOutlook, "jane@contoso.com", respOutlook), ok,
			poxSettings("jane@contoso.com", "", m365("jane@contoso.com"))),
		// SOAP Autodiscover.
		soap("soap-getusersettings-microsoft365", soapBody("GetUserSettings", []string{"jane@contoso.com"},
			"UserDisplayName", "AutoDiscoverSMTPAddress", "UserMSOnline", "ExternalEwsUrl", "InternalEwsUrl",
			"ExternalImap4Connections", "ExternalPop3Connections", "ExternalSmtpConnections", "UserDN", "NoSuchSetting"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				u := s.Users[0]
				// Exchange Online's EWS is off (ews_access: auto): no EWS setting.
				if s.ErrorCode != "NoError" || u.ErrorCode != "NoError" || u.Settings["ExternalEwsUrl"] != "" || u.SettingErrors["ExternalEwsUrl"] != "SettingIsNotAvailable" ||
					u.Settings["UserMSOnline"] != "True" || u.Settings["AutoDiscoverSMTPAddress"] != "jane@contoso.com" {
					t.Errorf("read %+v", s)
				}
				if c := u.Connections["ExternalSmtpConnections"]; !reflect.DeepEqual(c, []clientcheck.Server{{Host: "smtp.office365.com", Port: 587, Security: "starttls"}}) {
					t.Errorf("SMTP connections %+v", c)
				}
				if c := u.Connections["ExternalImap4Connections"]; !reflect.DeepEqual(c, []clientcheck.Server{{Host: "outlook.office365.com", Port: 993, Security: "ssl"}}) {
					t.Errorf("IMAP connections %+v", c)
				}
				if u.SettingErrors["UserDN"] != "SettingIsNotAvailable" || u.SettingErrors["NoSuchSetting"] != "InvalidSetting" {
					t.Errorf("setting errors %v", u.SettingErrors)
				}
			})),
		// Names Exchange defines get SettingIsNotAvailable; the EWS version
		// settings are answered where EWS is offered.
		soap("soap-getusersettings-defined-names", soapBody("GetUserSettings", []string{"ann@tailwind.example"},
			"InternalEcpVoicemailUrl", "AlternateMailboxes", "ExchangeRpcUrl", "ShowGalAsDefaultView", "InteropExternalEwsUrl",
			"EwsSupportedSchemas", "ExternalEwsVersion", "ExternalOABUrl", "externalewsurl"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				u := s.Users[0]
				for _, n := range []string{"InternalEcpVoicemailUrl", "AlternateMailboxes", "ExchangeRpcUrl", "ShowGalAsDefaultView", "InteropExternalEwsUrl", "ExternalOABUrl"} {
					if u.SettingErrors[n] != "SettingIsNotAvailable" {
						t.Errorf("%s: %q, want SettingIsNotAvailable", n, u.SettingErrors[n])
					}
				}
				if u.SettingErrors["externalewsurl"] != "InvalidSetting" { // names are case-sensitive
					t.Errorf("externalewsurl: %q", u.SettingErrors["externalewsurl"])
				}
				if !strings.Contains(u.Settings["EwsSupportedSchemas"], "Exchange2010_SP2") || u.Settings["ExternalEwsVersion"] == "" {
					t.Errorf("EWS version settings %q %q", u.Settings["EwsSupportedSchemas"], u.Settings["ExternalEwsVersion"])
				}
			})),
		soap("soap-getusersettings-exchange", soapBody("GetUserSettings", []string{"nina@northwind.example"},
			"ExternalEwsUrl", "ExternalOABUrl", "InternalOABUrl", "UserMSOnline", "ExternalSmtpConnections"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				u := s.Users[0]
				if u.Settings["ExternalEwsUrl"] != northwindEWS || u.Settings["ExternalOABUrl"] != northwindOAB || u.Settings["InternalOABUrl"] != northwindOAB || u.Settings["UserMSOnline"] != "False" {
					t.Errorf("read %+v", u)
				}
				if c := u.Connections["ExternalSmtpConnections"]; !reflect.DeepEqual(c, []clientcheck.Server{{Host: "mail.northwind.example", Port: 587, Security: "starttls"}}) {
					t.Errorf("SMTP connections %+v", c)
				}
			})),
		soap("soap-getusersettings-two-users-one-unknown", soapBody("GetUserSettings", []string{"bob@tailspin.example", "eve@unknown.example"}, "ExternalEwsUrl", "ExternalPop3Connections"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				if len(s.Users) != 2 || s.Users[0].Settings["ExternalEwsUrl"] != "https://mail.tailspin.example/EWS/Exchange.asmx" || s.Users[1].ErrorCode != "InvalidUser" {
					t.Errorf("read %+v", s)
				}
				if c := s.Users[0].Connections["ExternalPop3Connections"]; len(c) != 1 || c[0].Security != "starttls" || c[0].Port != 110 {
					t.Errorf("POP3 %+v", c)
				}
			})),
		soap("soap-getusersettings-google-no-ews", soapBody("GetUserSettings", []string{"ann@example.org"}, "ExternalEwsUrl", "UserMSOnline"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				if u := s.Users[0]; u.SettingErrors["ExternalEwsUrl"] != "SettingIsNotAvailable" || u.Settings["UserMSOnline"] != "False" {
					t.Errorf("read %+v", u)
				}
			})),
		soap("soap-getusersettings-no-settings", soapBody("GetUserSettings", []string{"jane@contoso.com"}), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				if s.ErrorCode != "InvalidRequest" {
					t.Errorf("ErrorCode %s, want InvalidRequest", s.ErrorCode)
				}
			})),
		soap("soap-getusersettings-microsoft365-ews-on", soapBody("GetUserSettings", []string{"ann@tailwind.example"},
			"ExternalEwsUrl", "EwsSupportedSchemas", "ExternalEwsVersion"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				if u := s.Users[0]; u.Settings["ExternalEwsUrl"] != m365EWS || u.Settings["EwsSupportedSchemas"] == "" || u.Settings["ExternalEwsVersion"] == "" {
					t.Errorf("ews_access on: read %+v", s)
				}
			})),
		soap("soap-getdomainsettings", soapBody("GetDomainSettings", []string{"tailwind.example", "unknown.example", "contoso.com"}, "ExternalEwsUrl", "ExternalEwsVersion"), ok,
			readSOAP(ok, func(t *testing.T, s *clientcheck.SOAP) {
				if len(s.Users) != 3 || s.Users[0].Settings["ExternalEwsUrl"] != m365EWS || s.Users[0].Settings["ExternalEwsVersion"] == "" || s.Users[1].ErrorCode != "InvalidDomain" ||
					s.Users[2].SettingErrors["ExternalEwsUrl"] != "SettingIsNotAvailable" {
					t.Errorf("read %+v", s)
				}
			})),
		// Faults on 500 (WS-I BP 1.1 R1126); a body that is not XML is no
		// SOAP message: a plain 400.
		soap("soap-not-xml-400", "hello", http.StatusBadRequest, plainText),
		soap("soap-fault-soap12-500", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`, http.StatusInternalServerError, soapFault("s:VersionMismatch")),
		soap("soap-fault-unknown-operation-500", strings.ReplaceAll(soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName"), "GetUserSettingsRequestMessage", "GetFederationInformationRequestMessage"),
			http.StatusInternalServerError, soapFault("s:Client")),
		soap("soap-fault-action-mismatch-500", strings.Replace(soapBody("GetUserSettings", []string{"jane@contoso.com"}, "UserDisplayName"), "Autodiscover/GetUserSettings</wsa:Action>", "Autodiscover/GetDomainSettings</wsa:Action>", 1),
			http.StatusInternalServerError, soapFault("s:Client")),
		// Autodiscover v2.
		get("json-activesync", "/autodiscover/autodiscover.json?Email=jane@contoso.com&Protocol=ActiveSync", "contoso.com", ok, readV2("ActiveSync", m365EAS)),
		get("json-ews", "/autodiscover/autodiscover.json?Email=ann@tailwind.example&Protocol=EWS", "tailwind.example", ok, readV2("EWS", m365EWS)),
		get("json-error-microsoft365-ews-off-400", "/autodiscover/autodiscover.json?Email=jane@contoso.com&Protocol=EWS", "contoso.com", http.StatusBadRequest, readV2Error("ProtocolNotSupported")),
		get("json-custom-ews", "/autodiscover/autodiscover.json/v1.0/bob@tailspin.example?Protocol=Ews", "tailspin.example", ok, readV2("Ews", "https://mail.tailspin.example/EWS/Exchange.asmx")),
		get("json-exchange-activesync", "/autodiscover/autodiscover.json?Email=nina@northwind.example&Protocol=ActiveSync", "northwind.example", ok, readV2("ActiveSync", northwindEAS)),
		get("json-autodiscoverv1-path-form", "/autodiscover/autodiscover.json/v1.0/jane@contoso.com?Protocol=Autodiscoverv1", "contoso.com", ok,
			readV2("Autodiscoverv1", "https://autodiscover.contoso.com/autodiscover/autodiscover.xml")),
		get("json-lowercase-params", "/autodiscover/autodiscover.json?email=jane@contoso.net&protocol=activesync", "contoso.com", ok, readV2("activesync", m365EAS)),
		get("json-error-unknown-protocol-400", "/autodiscover/autodiscover.json?Email=jane@contoso.com&Protocol=Rest", "contoso.com", http.StatusBadRequest, readV2Error("InvalidProtocol")),
		get("json-error-missing-protocol-400", "/autodiscover/autodiscover.json?Email=jane@contoso.com", "contoso.com", http.StatusBadRequest, readV2Error("MandatoryParameterMissing")),
		get("json-error-proxyshell-probe-400", "/autodiscover/autodiscover.json?@evil.example/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.example", "contoso.com", http.StatusBadRequest, readV2Error("MandatoryParameterMissing")),
		get("json-error-unknown-domain-404", "/autodiscover/autodiscover.json?Email=eve@unknown.example&Protocol=ActiveSync", "contoso.com", http.StatusNotFound, readV2Error("InvalidUser")),
		get("json-error-google-activesync-400", "/autodiscover/autodiscover.json?Email=ann@example.org&Protocol=ActiveSync", "example.org", http.StatusBadRequest, readV2Error("ProtocolNotSupported")),
		// Thunderbird autoconfig.
		get("autoconfig-microsoft365", "/mail/config-v1.1.xml?emailaddress=jane%40contoso.com", "autoconfig.contoso.com", ok,
			readTB([]string{"contoso.com", "contoso.net", "xn--bcher-kva.example"}, m365("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"})),
		get("autoconfig-microsoft365-ews-on", "/mail/config-v1.1.xml?emailaddress=ann%40tailwind.example", "autoconfig.tailwind.example", ok,
			readTBWith([]string{"tailwind.example"}, m365("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"}, m365EWS, []string{"OAuth2"}, m365EAS)),
		get("autoconfig-google-workspace", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ann%40example.org", "example.org", ok,
			readTB([]string{"example.org"}, google("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"})),
		get("autoconfig-custom", "/v1.1/mail/config-v1.1.xml?emailaddress=bob%40tailspin.example", "autoconfig.tailspin.example", ok,
			readTBWith([]string{"tailspin.example"}, tailspin(`TAILSPIN\%EMAILLOCALPART%`), []string{"password-cleartext"},
				"https://mail.tailspin.example/EWS/Exchange.asmx", []string{"password-cleartext"}, "https://mail.tailspin.example/Microsoft-Server-ActiveSync")),
		get("autoconfig-exchange", "/mail/config-v1.1.xml?emailaddress=nina%40northwind.example", "autoconfig.northwind.example", ok,
			readTBWith([]string{"northwind.example"}, northwind("%EMAILADDRESS%"), []string{"password-cleartext"}, northwindEWS, []string{"password-cleartext"}, northwindEAS)),
		get("autoconfig-idn-display-name", "/mail/config-v1.1.xml?emailaddress=jan%40m%C3%BCller.example", "autoconfig.xn--mller-kva.example", ok,
			func(t *testing.T, ct string, body []byte) {
				readTB([]string{"xn--mller-kva.example"}, google("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"})(t, ct, body)
				if c, _ := clientcheck.Thunderbird(ct, body); c == nil || c.DisplayName != "müller.example" {
					t.Errorf("Thunderbird shows the provider as %+v, want müller.example", c)
				}
			}),
		// Thunderbird reads anything but a 200 document as "no config here".
		get("autoconfig-error-unknown-domain-404", "/mail/config-v1.1.xml?emailaddress=eve%40unknown.example", "autoconfig.unknown.example", http.StatusNotFound, plainText),
		get("autoconfig-error-bad-address-400", "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E", "autoconfig.contoso.com", http.StatusBadRequest, plainText),
		get("not-found-404", "/owa/", "autodiscover.contoso.com", http.StatusNotFound, plainText),
	}
	// exchangelib's capitalised path.
	for i := range ex {
		if ex[i].golden == "pox-outlook-capitalised-path" {
			ex[i].target = "/Autodiscover/Autodiscover.xml"
		}
	}
	contoso := []string{"contoso.com", "contoso.net", "xn--bcher-kva.example"}
	after := get("autoconfig-microsoft365-after-smtp-basic-cutoff", "/mail/config-v1.1.xml?emailaddress=jane%40contoso.com", "autoconfig.contoso.com", ok,
		readTB(contoso, m365("%EMAILADDRESS%"), []string{"OAuth2"}))
	after.now = afterCutoff
	// Exchange Online retires EWS on 2027-04-01.
	afterEWS := get("autoconfig-microsoft365-after-ews-retirement", "/mail/config-v1.1.xml?emailaddress=jane%40contoso.com", "autoconfig.contoso.com", ok,
		readTB(contoso, m365("%EMAILADDRESS%"), []string{"OAuth2"}))
	afterEWS.now = time.Date(2027, time.April, 1, 0, 0, 0, 0, time.UTC)
	// smtp_password: on keeps password SMTP past the preset's date; off
	// never offers it.
	smtpOn := get("autoconfig-microsoft365-smtp-password-on-after-cutoff", "/mail/config-v1.1.xml?emailaddress=ann%40woodgrove.example", "autoconfig.woodgrove.example", ok,
		readTB([]string{"woodgrove.example"}, m365("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"}))
	smtpOn.now = afterCutoff
	smtpOff := get("autoconfig-microsoft365-smtp-password-off", "/mail/config-v1.1.xml?emailaddress=ann%40adatum.example", "autoconfig.adatum.example", ok,
		readTB([]string{"adatum.example"}, m365("%EMAILADDRESS%"), []string{"OAuth2"}))
	// Thunderbird for Android may omit emailaddress: the Host decides.
	hostOnly := get("autoconfig-host-only", "/mail/config-v1.1.xml", "autoconfig.contoso.net", ok,
		readTB(contoso, m365("%EMAILADDRESS%"), []string{"OAuth2", "password-cleartext"}))
	// Plain HTTP listener.
	httpGet := func(golden, target, host string, status int) exchange {
		e := get(golden, target, host, status, nil)
		e.http = true
		return e
	}
	plainAutoconfig := httpGet("http-autoconfig", "/mail/config-v1.1.xml?emailaddress=jane%40contoso.com", "autoconfig.contoso.com", ok)
	plainAutoconfig.read = hostOnly.read
	postHTTP := post("http-pox-post-308", poxBody(reqOutlook, "jane@contoso.com", respOutlook), http.StatusPermanentRedirect, nil)
	postHTTP.http, postHTTP.head = true, readRedirect("https://autodiscover.contoso.com/autodiscover/autodiscover.xml")
	poxGet := httpGet("http-pox-get-302", "/Autodiscover/Autodiscover.xml", "autodiscover.contoso.com", http.StatusFound)
	poxGet.head = readRedirect("https://autodiscover.contoso.com/autodiscover/autodiscover.xml")
	unknownHost := httpGet("http-pox-get-unknown-host-404", "/autodiscover/autodiscover.xml", "autodiscover.evil.example", http.StatusNotFound)
	unknownHost.read = plainText
	other := httpGet("http-other-301", "/setup", "autoconfig.contoso.com", http.StatusMovedPermanently)
	other.head = readRedirect("https://autoconfig.contoso.com/setup")
	ex = append(ex, appleExchanges()...)
	return append(ex, after, afterEWS, smtpOn, smtpOff, hostOnly, plainAutoconfig, postHTTP, poxGet, unknownHost, other)
}

// serve runs one exchange through the server's handlers.
func (e exchange) serve(s *Server) *httptest.ResponseRecorder {
	r := httptest.NewRequest(e.method, e.target, strings.NewReader(e.body))
	r.Host = e.host
	for k, vs := range e.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if e.method == http.MethodPost {
		r.Header.Set("Content-Type", "text/xml")
	}
	w := httptest.NewRecorder()
	h := s.HTTPSHandler()
	if e.http {
		h = s.HTTPHandler()
	}
	h.ServeHTTP(w, r)
	return w
}

// transcript is the golden form of an answer: status, the headers clients
// depend on, a blank line, the body.
func transcript(w *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "status: %d\n", w.Code)
	for _, k := range []string{"Content-Type", "Location", "Cache-Control", "X-SOAP-Enabled", "X-WSSecurity-Enabled", "X-OAuth-Enabled"} {
		if v := w.Header().Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(k), v)
		}
	}
	b.WriteString("\n")
	b.Write(w.Body.Bytes())
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range exchanges() {
		t.Run(e.golden, func(t *testing.T) {
			if seen[e.golden] {
				t.Fatalf("golden name %s used twice", e.golden)
			}
			seen[e.golden] = true
			now := e.now
			if now.IsZero() {
				now = beforeCutoff
			}
			s := newTestServer(t, now, io.Discard)
			w := e.serve(s)
			if w.Code != e.status {
				t.Errorf("status %d, want %d; body:\n%s", w.Code, e.status, w.Body)
			}
			if e.read == nil && e.head == nil {
				t.Error("no independent reader reads this answer back")
			}
			if e.read != nil {
				e.read(t, w.Header().Get("Content-Type"), w.Body.Bytes())
			}
			if e.head != nil {
				e.head(t, w.Header())
			}
			checkGolden(t, filepath.Join("testdata", "golden", e.golden+".golden"), transcript(w))
		})
	}
	if *update {
		return
	}
	// Every golden file belongs to a case: stale ones are caught.
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.golden"))
	for _, f := range files {
		if !seen[strings.TrimSuffix(filepath.Base(f), ".golden")] {
			t.Errorf("%s has no test case", f)
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./autodiscover -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("answer differs from %s (go test ./autodiscover -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
