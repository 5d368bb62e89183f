package clientcheck

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
)

// Clients whose requests Probe knows.
var Clients = []string{"outlook", "outlook-desktop", "mobilesync", "json", "thunderbird", "soap", "apple"}

// ClientKinds says which clients each of Clients stands for.
var ClientKinds = map[string]string{
	"outlook":         "POX, outlook schema: Thunderbird's Exchange lookup, exchangelib, DavMail, Evolution, GNOME Online Accounts",
	"outlook-desktop": "POX as Outlook desktop sends it when it wants Exchange (X-MapiHttpCapability): for Microsoft 365 the redirect to Microsoft",
	"mobilesync":      "POX, mobilesync schema: ActiveSync phones and tablets",
	"json":            "Autodiscover v2 (-protocol): Outlook mobile, Outlook 2019",
	"thunderbird":     "Mozilla autoconfig: Thunderbird, Thunderbird for Android, Evolution, KDE, Horde, Delta Chat",
	"soap":            "SOAP GetUserSettings: EWS Managed API clients, Outlook for Mac",
	"apple":           "an Apple configuration profile: iPhone, iPad, Mac",
}

// Probe is one request as a client sends it.
type Probe struct {
	Client      string
	Method      string
	Path        string // with query
	ContentType string // of the request body, if any
	Header      map[string]string
	Body        string
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ProbeFor is the request client sends for email. protocol is the
// Autodiscover v2 protocol for the json client (ActiveSync when empty).
func ProbeFor(client, email, protocol string) (Probe, error) {
	e := xmlText(email)
	switch client {
	case "outlook", "outlook-desktop", "mobilesync":
		ns, resp := "outlook/requestschema/2006", "outlook/responseschema/2006a"
		if client == "mobilesync" {
			ns, resp = "mobilesync/requestschema/2006", "mobilesync/responseschema/2006"
		}
		p := Probe{Client: client, Method: "POST", Path: "/autodiscover/autodiscover.xml", ContentType: "text/xml; charset=utf-8",
			Body: `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/` + ns + `"><Request>` +
				`<EMailAddress>` + e + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/` + resp +
				`</AcceptableResponseSchema></Request></Autodiscover>`}
		if client == "outlook-desktop" {
			// [MS-OXDSCLI] 2.2.2.1: Outlook asking for MAPI over HTTP, and the
			// redirects it can handle.
			p.Header = map[string]string{"X-MapiHttpCapability": "1", "X-ClientCanHandle": "Negotiate,ExHttpInfo"}
		}
		return p, nil
	case "json":
		if protocol == "" {
			protocol = "ActiveSync"
		}
		return Probe{Client: client, Method: "GET", Path: "/autodiscover/autodiscover.json?Email=" + url.QueryEscape(email) + "&Protocol=" + url.QueryEscape(protocol)}, nil
	case "thunderbird":
		return Probe{Client: client, Method: "GET", Path: "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(email)}, nil
	case "apple":
		return Probe{Client: client, Method: "GET", Path: "/mobileconfig?email=" + url.QueryEscape(email)}, nil
	case "soap":
		return Probe{Client: client, Method: "POST", Path: "/autodiscover/autodiscover.svc", ContentType: "text/xml; charset=utf-8",
			Body: SOAPRequest("GetUserSettings", []string{email},
				"UserDisplayName", "ExternalEwsUrl", "ExternalImap4Connections", "ExternalPop3Connections", "ExternalSmtpConnections")}, nil
	}
	return Probe{}, fmt.Errorf("unknown client %q: use %s", client, strings.Join(Clients, ", "))
}

// SOAPRequest is a GetUserSettings or GetDomainSettings request (op) as
// the EWS Managed API sends it, for the users' mailboxes or the domains
// in items. Items and settings are escaped.
func SOAPRequest(op string, items []string, settings ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" ` +
		`xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>` +
		`<a:RequestedServerVersion>Exchange2010</a:RequestedServerVersion>` +
		`<wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/` + op + `</wsa:Action></soap:Header>` +
		`<soap:Body><a:` + op + `RequestMessage><a:Request>`)
	list, item := "Domains", "<a:Domain>%s</a:Domain>"
	if op == "GetUserSettings" {
		list, item = "Users", "<a:User><a:Mailbox>%s</a:Mailbox></a:User>"
	}
	b.WriteString("<a:" + list + ">")
	for _, it := range items {
		fmt.Fprintf(&b, item, xmlText(it))
	}
	b.WriteString("</a:" + list + "><a:RequestedSettings>")
	for _, s := range settings {
		b.WriteString("<a:Setting>" + xmlText(s) + "</a:Setting>")
	}
	b.WriteString(`</a:RequestedSettings></a:Request></a:` + op + `RequestMessage></soap:Body></soap:Envelope>`)
	return b.String()
}

// Answer is what a client took from an answer: the servers and URLs it
// would use.
type Answer struct {
	Servers []Server
	URLs    []string
}

// Read reads an answer to the probe, with its HTTP status, the way its
// client does.
func (p Probe) Read(status int, contentType string, body []byte) (*Answer, error) {
	a := &Answer{}
	switch p.Client {
	case "outlook", "outlook-desktop", "mobilesync":
		read := ReadPOX
		if p.Client == "mobilesync" {
			read = ReadMobileSync
		}
		r, err := read(contentType, body)
		if err != nil {
			return nil, err
		}
		if r.ErrorCode != 0 {
			return nil, fmt.Errorf("error %d", r.ErrorCode)
		}
		a.Servers = r.Servers
		for _, u := range []string{r.EwsURL, r.MobileSyncURL, r.RedirectURL} {
			if u != "" {
				a.URLs = append(a.URLs, u)
			}
		}
	case "json":
		r, err := ReadV2(contentType, body)
		if err != nil {
			return nil, err
		}
		a.URLs = []string{r.URL}
	case "thunderbird":
		r, err := Thunderbird(contentType, body)
		if err != nil {
			return nil, err
		}
		a.Servers = append(r.Incoming, r.Outgoing...)
	case "soap":
		r, err := ReadSOAP(status, contentType, body)
		if err != nil {
			return nil, err
		}
		if r.Fault != "" || r.ErrorCode != "NoError" || len(r.Users) != 1 || r.Users[0].ErrorCode != "NoError" {
			return nil, fmt.Errorf("SOAP answer is an error: fault %q, code %q", r.Fault, r.ErrorCode)
		}
		for _, c := range r.Users[0].Connections {
			a.Servers = append(a.Servers, c...)
		}
		if u := r.Users[0].Settings["ExternalEwsUrl"]; u != "" {
			a.URLs = append(a.URLs, u)
		}
	case "apple":
		if contentType != "application/x-apple-aspen-config" {
			return nil, fmt.Errorf("Content-Type %q, want application/x-apple-aspen-config", contentType)
		}
	default:
		return nil, fmt.Errorf("unknown client %q", p.Client)
	}
	return a, nil
}
