package clientcheck

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Namespaces, written out here on purpose rather than imported: this
// reader must not share a mistake with the writer.
const (
	nsResponse   = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	nsOutlook    = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	nsMobileSync = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// POX is what clients take from a POX Autodiscover answer.
type POX struct {
	// Schema is the Response namespace: outlook 2006a, mobilesync, or the
	// bare response namespace of an error document.
	Schema      string
	Action      string // settings, redirectUrl, redirectAddr
	RedirectURL string
	Address     string   // User/AutoDiscoverSMTPAddress or User/EMailAddress
	Servers     []Server // IMAP/POP3/SMTP, security as Thunderbird derives it
	EwsURL      string   // as exchangelib finds it (EXPR, then EXCH)
	ASUrl       string   // as Evolution EWS finds it (EXPR or EXCH)
	// FirstProtocol is the first Protocol's Type, ASUrl and OABUrl: all
	// that GNOME Online Accounts' Exchange module reads (see GOA).
	FirstProtocol struct{ Type, ASUrl, OABUrl string }
	ErrorCode     int // Response/Error/ErrorCode; 0 when no error
	// MobileSyncURL is Action/Settings/Server[Type=MobileSync]/Url.
	MobileSyncURL string
}

type poxProtocol struct {
	Type       string `xml:"Type"`
	Server     string `xml:"Server"`
	Port       string `xml:"Port"`
	LoginName  string `xml:"LoginName"`
	SPA        string `xml:"SPA"`
	SSL        string `xml:"SSL"`
	Encryption string `xml:"Encryption"`
	EwsURL     string `xml:"EwsUrl"`
	ASUrl      string `xml:"ASUrl"`
	OABUrl     string `xml:"OABUrl"`
}

type poxDoc struct {
	XMLName  struct{} `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name
		User    struct {
			SMTPAddress  string `xml:"AutoDiscoverSMTPAddress"`
			EMailAddress string `xml:"EMailAddress"`
		} `xml:"User"`
		Account *struct {
			AccountType string        `xml:"AccountType"`
			Action      string        `xml:"Action"`
			RedirectURL string        `xml:"RedirectUrl"`
			Protocols   []poxProtocol `xml:"Protocol"`
		} `xml:"Account"`
		Error *struct {
			Time      string `xml:"Time,attr"`
			ID        string `xml:"Id,attr"`
			ErrorCode string `xml:"ErrorCode"`
			Message   string `xml:"Message"`
		} `xml:"Error"`
		Culture string `xml:"Culture"`
		Action  *struct {
			Servers []struct {
				Type string `xml:"Type"`
				URL  string `xml:"Url"`
				Name string `xml:"Name"`
			} `xml:"Settings>Server"`
		} `xml:"Action"`
	} `xml:"Response"`
}

// ReadPOX reads a POX answer the way the strictest clients do:
//   - DavMail: Content-Type exactly "text/xml; charset=utf-8", and each
//     <EwsUrl> on one line;
//   - Thunderbird and exchangelib: nothing before <?xml, unprefixed names,
//     root {responseschema/2006}Autodiscover, Response in the schema's
//     namespace, Type values case-sensitive;
//   - exchangelib: EwsUrl from EXPR (preferred) or EXCH, redirects https;
//   - Thunderbird: security from SSL/Encryption/port (see security).
func ReadPOX(contentType string, body []byte) (*POX, error) {
	if contentType != "text/xml; charset=utf-8" {
		return nil, fmt.Errorf("Content-Type %q: DavMail accepts only \"text/xml; charset=utf-8\"", contentType)
	}
	if err := ewsURLOnOneLine(body); err != nil {
		return nil, err
	}
	var doc poxDoc
	if err := strict(body, &doc); err != nil {
		return nil, err
	}
	r := doc.Response
	out := &POX{Schema: r.XMLName.Space, Address: trim(r.User.SMTPAddress)}
	if r.Error != nil {
		if ns := r.XMLName.Space; ns != nsResponse && ns != nsMobileSync {
			return nil, fmt.Errorf("error document: Response namespace %q", ns)
		}
		code, err := strconv.Atoi(trim(r.Error.ErrorCode))
		if err != nil || !validErrorCode(code) {
			return nil, fmt.Errorf("ErrorCode %q is not one of MS-OXDSCLI's codes", r.Error.ErrorCode)
		}
		if _, err := strconv.ParseUint(r.Error.ID, 10, 32); err != nil {
			return nil, fmt.Errorf("Error Id %q is not an unsigned integer", r.Error.ID)
		}
		if len(r.Error.Time) != len("15:04:05.0000000") {
			return nil, fmt.Errorf("Error Time %q is not hh:mm:ss.fffffff", r.Error.Time)
		}
		out.ErrorCode = code
		return out, nil
	}
	switch r.XMLName.Space {
	case nsOutlook:
		return out, readOutlook(out, &doc)
	case nsMobileSync:
		return out, readMobileSync(out, &doc)
	}
	return nil, fmt.Errorf("Response namespace %q is neither outlook 2006a nor mobilesync", r.XMLName.Space)
}

func validErrorCode(c int) bool {
	switch c {
	case 500, 501, 600, 601, 602, 603:
		return true
	}
	return false
}

func readOutlook(out *POX, doc *poxDoc) error {
	a := doc.Response.Account
	if a == nil {
		return errors.New("outlook answer has no Account")
	}
	if a.AccountType != "email" {
		return fmt.Errorf("AccountType %q, want email", a.AccountType)
	}
	out.Action = a.Action
	switch a.Action {
	case "redirectUrl":
		u, err := httpsURL("RedirectUrl", a.RedirectURL)
		if err != nil {
			return fmt.Errorf("%w (exchangelib follows https only)", err)
		}
		out.RedirectURL = u
		return nil
	case "settings":
	default:
		return fmt.Errorf("Action %q is not settings or redirectUrl", a.Action)
	}
	if out.Address == "" {
		return errors.New("settings answer has no User/AutoDiscoverSMTPAddress")
	}
	var exch, expr string
	if len(a.Protocols) > 0 {
		p := a.Protocols[0]
		out.FirstProtocol.Type, out.FirstProtocol.ASUrl, out.FirstProtocol.OABUrl = p.Type, trim(p.ASUrl), trim(p.OABUrl)
	}
	for _, p := range a.Protocols {
		switch p.Type {
		case "IMAP", "POP3", "SMTP":
			s, err := p.server()
			if err != nil {
				return fmt.Errorf("Protocol %s: %w", p.Type, err)
			}
			out.Servers = append(out.Servers, s)
		case "EXCH", "EXPR":
			if p.Type == "EXCH" {
				exch = trim(p.EwsURL)
			} else {
				expr = trim(p.EwsURL)
			}
			if as := trim(p.ASUrl); as != "" {
				if _, err := httpsURL("ASUrl", as); err != nil {
					return fmt.Errorf("Protocol %s: %w", p.Type, err)
				}
				out.ASUrl = as
			}
		case "WEB", "EXHTTP":
		default:
			return fmt.Errorf("Protocol Type %q is not one clients know (Type is case-sensitive)", p.Type)
		}
	}
	if (exch == "") != (expr == "") {
		return errors.New("EwsUrl must be in both EXCH (Thunderbird) and EXPR (exchangelib)")
	}
	out.EwsURL = expr
	if len(out.Servers) == 0 && out.EwsURL == "" {
		return errors.New("settings answer has no usable Protocol")
	}
	return nil
}

// server reads an IMAP/POP3/SMTP protocol as Thunderbird's
// ExchangeAutoDiscover does: SSL=off or Encryption=None means plaintext;
// otherwise ports 143/110/25/587 mean STARTTLS and any other port implicit
// TLS. SPA must be explicitly off, since it defaults to on.
func (p poxProtocol) server() (Server, error) {
	s := Server{Protocol: strings.ToLower(p.Type), Host: trim(p.Server), Username: trim(p.LoginName)}
	if s.Host == "" {
		return s, errors.New("no Server")
	}
	port, err := strconv.Atoi(trim(p.Port))
	if err != nil || port < 1 || port > 65535 {
		return s, fmt.Errorf("Port %q is not 1..65535", p.Port)
	}
	s.Port = port
	if trim(p.SPA) != "off" {
		return s, fmt.Errorf("SPA %q: it defaults to on, so it must be sent as off", p.SPA)
	}
	enc := trim(p.Encryption)
	switch {
	case trim(p.SSL) == "off" || enc == "None":
		s.Security = "none"
	case port == 143 || port == 110 || port == 25 || port == 587:
		s.Security = "starttls"
	default:
		s.Security = "ssl"
	}
	// Outlook reads Encryption itself: it must agree with what Thunderbird derived.
	want := map[string]string{"none": "None", "starttls": "TLS", "ssl": "SSL"}[s.Security]
	if enc != want && !(enc == "Auto" && s.Security != "none") {
		return s, fmt.Errorf("Encryption %q disagrees with the security Thunderbird derives (%s)", enc, s.Security)
	}
	return s, nil
}

func readMobileSync(out *POX, doc *poxDoc) error {
	r := doc.Response
	out.Address = trim(r.User.EMailAddress)
	if out.Address == "" {
		return errors.New("mobilesync answer has no User/EMailAddress")
	}
	if trim(r.Culture) == "" {
		return errors.New("mobilesync answer has no Culture")
	}
	if r.Action == nil {
		return errors.New("mobilesync answer has no Action")
	}
	for _, s := range r.Action.Servers {
		if s.Type != "MobileSync" {
			continue
		}
		if _, err := httpsURL("MobileSync Url", s.URL); err != nil {
			return err
		}
		if trim(s.Name) != trim(s.URL) {
			return fmt.Errorf("MobileSync Name %q differs from Url (MS-ASCMD: Name = Url)", s.Name)
		}
		out.MobileSyncURL = trim(s.URL)
	}
	if out.MobileSyncURL == "" {
		return errors.New("mobilesync answer has no MobileSync server")
	}
	out.Action = "settings"
	return nil
}

// ewsURLOnOneLine: DavMail reads <EwsUrl> line by line.
func ewsURLOnOneLine(body []byte) error {
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "<EwsUrl>") && !strings.Contains(line, "</EwsUrl>") {
			return errors.New("<EwsUrl> spans lines; DavMail reads it from one line")
		}
	}
	return nil
}

// GOA reads a POX answer as evolution-data-server's GNOME Online Accounts
// module does for Exchange accounts: only the first Protocol of Account,
// which must carry both ASUrl and OABUrl ("Failed to find ASUrl and
// OABUrl in autodiscover response" otherwise).
func (p *POX) GOA() (asURL, oabURL string, err error) {
	f := p.FirstProtocol
	if f.ASUrl == "" || f.OABUrl == "" {
		return "", "", fmt.Errorf("first Protocol (%s) has ASUrl %q and OABUrl %q: GNOME Online Accounts needs both there", f.Type, f.ASUrl, f.OABUrl)
	}
	return f.ASUrl, f.OABUrl, nil
}

// ReadMobileSync reads an answer to a mobilesync request as a
// namespace-strict ActiveSync client does: settings and errors alike have
// their Response in the mobilesync namespace ([MS-ASCMD] 2.2.1.1.2).
func ReadMobileSync(contentType string, body []byte) (*POX, error) {
	p, err := ReadPOX(contentType, body)
	if err != nil {
		return nil, err
	}
	if p.Schema != nsMobileSync {
		return nil, fmt.Errorf("Response namespace %q: an ActiveSync client looks for its answer, errors too, in %s", p.Schema, nsMobileSync)
	}
	return p, nil
}
