package xmlschema

import (
	"strconv"

	"github.com/beevik/etree"
)

// ClientConfig is Mozilla's autoconfig document, config-v1.1.xml
// (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
type ClientConfig struct {
	EmailProvider EmailProvider
	// OAuth2 is informational: Thunderbird decides OAuth2 from its own
	// hostname table (OAuth2Providers.sys.mjs), not from this block.
	OAuth2 *OAuth2
}

// EmailProvider is clientConfig/emailProvider.
type EmailProvider struct {
	ID               string
	Domains          []string
	DisplayName      string
	DisplayShortName string
	IncomingServers  []IncomingServer
	OutgoingServers  []OutgoingServer
	Documentation    []Documentation
}

// Socket types: exactly these three spellings are accepted by Thunderbird.
const (
	SocketSSL      = "SSL"
	SocketSTARTTLS = "STARTTLS"
	SocketPlain    = "plain"
)

// IncomingServer is emailProvider/incomingServer: type imap or pop3, or
// an Exchange entry, which current Thunderbird reads in two forms
// (readFromXML.sys.mjs; the ISPDB's office365.com.xml has both):
//   - type "ews": url, username, authentication;
//   - type "exchange" (the older single entry): hostname, port,
//     socketType, username, authentication, ewsURL, easURL.
//
// Older versions and Thunderbird for Android skip types they do not know.
type IncomingServer struct {
	Type           string
	Hostname       string
	Port           int
	SocketType     string
	Username       string
	Authentication []string // first one the client supports wins
	// LeaveMessagesOnServer writes <pop3><leaveMessagesOnServer> (pop3 only).
	LeaveMessagesOnServer bool
	// URL is the ews entry's EWS URL; EWSURL and EASURL the exchange
	// entry's EWS and ActiveSync URLs (EASURL left out when empty).
	URL, EWSURL, EASURL string
}

// Incoming server types besides imap and pop3.
const (
	TypeEWS      = "ews"
	TypeExchange = "exchange"
)

// OutgoingServer is emailProvider/outgoingServer type="smtp".
type OutgoingServer struct {
	Hostname       string
	Port           int
	SocketType     string
	Username       string
	Authentication []string
}

// Documentation is emailProvider/documentation.
type Documentation struct {
	URL   string
	Lang  string
	Descr string
}

// OAuth2 is clientConfig/oAuth2.
type OAuth2 struct {
	Issuer   string
	Scope    string
	AuthURL  string
	TokenURL string
}

// Document builds the config document.
func (c *ClientConfig) Document() *etree.Document {
	doc := newDocument()
	root := doc.CreateElement("clientConfig")
	root.CreateAttr("version", "1.1")
	p := root.CreateElement("emailProvider")
	p.CreateAttr("id", c.EmailProvider.ID)
	for _, d := range c.EmailProvider.Domains {
		add(p, "domain", d)
	}
	add(p, "displayName", c.EmailProvider.DisplayName)
	add(p, "displayShortName", c.EmailProvider.DisplayShortName)
	for _, s := range c.EmailProvider.IncomingServers {
		e := p.CreateElement("incomingServer")
		e.CreateAttr("type", s.Type)
		if s.Type == TypeEWS {
			add(e, "url", s.URL)
			add(e, "username", s.Username)
			for _, a := range s.Authentication {
				add(e, "authentication", a)
			}
			continue
		}
		writeServer(e, s.Hostname, s.Port, s.SocketType, s.Username, s.Authentication)
		if s.Type == TypeExchange {
			add(e, "ewsURL", s.EWSURL)
			addIf(e, "easURL", s.EASURL)
		}
		if s.LeaveMessagesOnServer {
			add(e.CreateElement("pop3"), "leaveMessagesOnServer", "true")
		}
	}
	for _, s := range c.EmailProvider.OutgoingServers {
		e := p.CreateElement("outgoingServer")
		e.CreateAttr("type", "smtp")
		writeServer(e, s.Hostname, s.Port, s.SocketType, s.Username, s.Authentication)
	}
	for _, d := range c.EmailProvider.Documentation {
		e := p.CreateElement("documentation")
		e.CreateAttr("url", d.URL)
		descr := add(e, "descr", d.Descr)
		descr.CreateAttr("lang", d.Lang)
	}
	if o := c.OAuth2; o != nil {
		e := root.CreateElement("oAuth2")
		add(e, "issuer", o.Issuer)
		add(e, "scope", o.Scope)
		add(e, "authURL", o.AuthURL)
		add(e, "tokenURL", o.TokenURL)
	}
	return finish(doc)
}

func writeServer(e *etree.Element, host string, port int, socket, user string, auth []string) {
	add(e, "hostname", host)
	add(e, "port", strconv.Itoa(port))
	add(e, "socketType", socket)
	add(e, "username", user)
	for _, a := range auth {
		add(e, "authentication", a)
	}
}
