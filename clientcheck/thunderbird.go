package clientcheck

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Autoconfig is what Thunderbird takes from a config-v1.1.xml answer.
type Autoconfig struct {
	ProviderID  string
	DisplayName string // what Thunderbird shows people as the provider
	Domains     []string
	Incoming    []Server
	Outgoing    []Server
	// EWS is what current Thunderbird takes from the Exchange entries: the
	// type "ews" entry's url and the older type "exchange" entry's ewsURL,
	// which must agree; empty without them.
	EWS     string
	EWSAuth []string
	EASURL  string // the exchange entry's easURL
}

type tbDoc struct {
	EmailProvider struct {
		ID          string     `xml:"id,attr"`
		DisplayName string     `xml:"displayName"`
		Domains     []string   `xml:"domain"`
		Incoming    []tbServer `xml:"incomingServer"`
		Outgoing    []tbServer `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

type tbServer struct {
	Type           string   `xml:"type,attr"`
	Hostname       string   `xml:"hostname"`
	Port           string   `xml:"port"`
	SocketType     string   `xml:"socketType"`
	Username       string   `xml:"username"`
	Authentication []string `xml:"authentication"`
	URL            string   `xml:"url"`
	EWSURL         string   `xml:"ewsURL"`
	EASURL         string   `xml:"easURL"`
}

// Thunderbird's accepted <authentication> values (readFromXML.sys.mjs).
var tbAuth = []string{"password-cleartext", "plain", "password-encrypted", "secure", "GSSAPI", "NTLM",
	"TLS-client-cert", "OAuth2", "none"}

var tbSMTPOnlyAuth = []string{"client-IP-address", "smtp-after-pop"}

// Thunderbird reads config-v1.1.xml: Content-Type must start with text/xml,
// application/xml or text/rdf (case-sensitive); nothing before <?xml;
// unprefixed names; at least one domain; every server entry complete and
// valid (Thunderbird skips an invalid one silently, so here it is an error).
func Thunderbird(contentType string, body []byte) (*Autoconfig, error) {
	if !hasAnyPrefix(contentType, "text/xml", "application/xml", "text/rdf") {
		return nil, fmt.Errorf("Content-Type %q: Thunderbird reads only text/xml, application/xml or text/rdf", contentType)
	}
	var doc struct {
		XMLName struct{} `xml:"clientConfig"`
		tbDoc
	}
	if err := strict(body, &doc); err != nil {
		return nil, err
	}
	ep := doc.EmailProvider
	if len(ep.Domains) == 0 {
		return nil, errors.New("emailProvider has no <domain>")
	}
	out := &Autoconfig{ProviderID: ep.ID, DisplayName: trim(ep.DisplayName)}
	for _, d := range ep.Domains {
		out.Domains = append(out.Domains, trim(d))
	}
	var exchangeEWS string
	var err error
	for i, s := range ep.Incoming {
		switch s.Type {
		case "ews":
			if out.EWS, out.EWSAuth, err = s.ews(); err != nil {
				return nil, fmt.Errorf("incomingServer[%d] (ews): %w", i, err)
			}
			continue
		case "exchange":
			if _, err := s.read(tbAuth); err != nil {
				return nil, fmt.Errorf("incomingServer[%d] (exchange): %w", i, err)
			}
			if exchangeEWS, err = httpsURL("ewsURL", s.EWSURL); err != nil {
				return nil, fmt.Errorf("incomingServer[%d] (exchange): %w", i, err)
			}
			if trim(s.EASURL) != "" {
				if out.EASURL, err = httpsURL("easURL", s.EASURL); err != nil {
					return nil, fmt.Errorf("incomingServer[%d] (exchange): %w", i, err)
				}
			}
			continue
		case "imap", "pop3":
		default:
			continue // graph, owa, jmap...: other account types
		}
		srv, err := s.read(tbAuth)
		if err != nil {
			return nil, fmt.Errorf("incomingServer[%d] (%s): %w", i, s.Type, err)
		}
		out.Incoming = append(out.Incoming, srv)
	}
	if len(out.Incoming) == 0 {
		return nil, errors.New("no usable imap or pop3 incomingServer")
	}
	if exchangeEWS != out.EWS {
		return nil, fmt.Errorf("the ews entry's url %q and the exchange entry's ewsURL %q differ (new and older Thunderbird would use different servers)", out.EWS, exchangeEWS)
	}
	if ep.Incoming[0].Type != "imap" && ep.Incoming[0].Type != "pop3" {
		return nil, fmt.Errorf("the first incomingServer is %q: Thunderbird proposes the first one, keep IMAP/POP3 there", ep.Incoming[0].Type)
	}
	for i, s := range ep.Outgoing {
		if s.Type != "smtp" {
			return nil, fmt.Errorf("outgoingServer[%d] type %q, want smtp", i, s.Type)
		}
		srv, err := s.read(append(slices.Clone(tbAuth), tbSMTPOnlyAuth...))
		if err != nil {
			return nil, fmt.Errorf("outgoingServer[%d]: %w", i, err)
		}
		out.Outgoing = append(out.Outgoing, srv)
	}
	if len(out.Outgoing) == 0 {
		return nil, errors.New("no outgoingServer type=\"smtp\"")
	}
	return out, nil
}

func (s tbServer) read(known []string) (Server, error) {
	srv := Server{Protocol: s.Type, Host: trim(s.Hostname), Username: trim(s.Username)}
	if srv.Host == "" {
		return srv, errors.New("no hostname")
	}
	port, err := strconv.Atoi(trim(s.Port))
	if err != nil || port < 1 || port > 65535 {
		return srv, fmt.Errorf("port %q is not 1..65535", s.Port)
	}
	srv.Port = port
	switch trim(s.SocketType) {
	case "SSL":
		srv.Security = "ssl"
	case "STARTTLS":
		srv.Security = "starttls"
	case "plain":
		srv.Security = "none"
	default:
		return srv, fmt.Errorf("socketType %q is not exactly plain, SSL or STARTTLS", s.SocketType)
	}
	if srv.Username == "" {
		return srv, errors.New("no username")
	}
	for _, a := range s.Authentication {
		a = trim(a)
		if !slices.Contains(known, a) {
			return srv, fmt.Errorf("authentication %q is not a value Thunderbird knows", a)
		}
		srv.Auth = append(srv.Auth, a)
	}
	if len(srv.Auth) == 0 {
		return srv, errors.New("no authentication")
	}
	return srv, nil
}

// ews reads a type "ews" entry: an https url, a username and a known
// authentication.
func (s tbServer) ews() (string, []string, error) {
	u, err := httpsURL("url", s.URL)
	if err != nil {
		return "", nil, err
	}
	if trim(s.Username) == "" {
		return "", nil, errors.New("no username")
	}
	var auth []string
	for _, a := range s.Authentication {
		if a = trim(a); !slices.Contains(tbAuth, a) {
			return "", nil, fmt.Errorf("authentication %q is not a value Thunderbird knows", a)
		}
		auth = append(auth, a)
	}
	if len(auth) == 0 {
		return "", nil, errors.New("no authentication")
	}
	return u, auth, nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
