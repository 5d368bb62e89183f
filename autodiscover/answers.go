package autodiscover

import (
	"fmt"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
	"github.com/beevik/etree"
)

// answers are one domain's documents. Each distinct document shape is
// rendered once per config load and shared by every domain with the same
// ports, security, login form and provider (100,000 domains share a
// handful); a request fills in the user's parts and the domain's values
// (Template slots, laid out below).
type answers struct {
	domain *config.Domain
	values []string // the domain's slot values, from slotIMAPHost on, escaped for XML

	// outlookDesktop is the settings answer for Outlook desktop asking for
	// Exchange under the "settings" policy: IMAP, POP3 and SMTP only. Given
	// EXCH/EXPR, Outlook would try RPC over HTTP instead of IMAP.
	outlookDesktop *xmlschema.Template
	// outlookRedirect is the static redirectUrl answer for Outlook asking
	// for Exchange, or nil when the domain's policy is "settings".
	outlookRedirect []byte
	// mobilesync; nil without ActiveSync.
	mobilesync *xmlschema.Template
	// periods are the documents that change on the provider's announced
	// dates (Domain.Changes), one set for each period between them, in
	// order.
	periods []period
}

// period is the documents served from an instant on.
type period struct {
	from time.Time // zero: from the start
	// outlook 2006a settings, as Exchange orders them: EXCH and EXPR first
	// where EWS is offered, then IMAP, POP3, SMTP.
	outlook *xmlschema.Template
	// autoconfig is the Thunderbird document.
	autoconfig *xmlschema.Template
}

// at is the documents for time t.
func (a *answers) at(t time.Time) *period {
	cur := &a.periods[0]
	for i := range a.periods[1:] {
		if t.Before(a.periods[i+1].from) {
			break
		}
		cur = &a.periods[i+1]
	}
	return cur
}

// Template slots. The first three are the user's, filled per request; the
// rest are answers.values.
const (
	slotDisplayName = iota
	slotAddress
	slotLogin
	slotIMAPHost
	slotPOP3Host
	slotSMTPHost
	slotEWSURL
	slotEWSHost
	slotActiveSyncURL
	slotOABURL
	slotProviderID
	slotDomainDisplay
	slotDomains // the domain and its aliases, to the end
)

// noUser fills the user slots of documents that have none (autoconfig).
var noUser [slotIMAPHost]string

// domainValues are the slot values a domain shares, escaped for XML once.
func domainValues(d *config.Domain) []string {
	host := func(s *config.Server) string {
		if s == nil {
			return ""
		}
		return s.Host
	}
	v := append([]string{host(d.IMAP), host(d.POP3), host(d.SMTP), d.EWSURL, urlHost(d.EWSURL), d.ActiveSyncURL, d.OABURL, d.Name, d.DisplayName}, d.Names()...)
	for i := range v {
		v[i] = xmlschema.Escape(v[i]) // once here, not per request (Template.Append)
	}
	return v
}

// ttlHours is how long Outlook may cache the POX answer (MS-OXDSCLI TTL,
// default 1).
const ttlHours = 1

// compiler renders each distinct document once per config load.
//
// A document is built from its shape alone (outlookShape, autoconfigShape),
// never from the domain: the shape is both the builder's only input and
// the key under which the template is shared. A new field that shapes a
// document is then part of the key by construction, and two domains share
// a template exactly when their documents are the same but for their
// slots (TestSharedTemplatesMatchFresh builds every domain both ways).
type compiler struct {
	templates map[any]*xmlschema.Template // by outlookShape, autoconfigShape, mobileSyncShape
	statics   map[string][]byte           // outlook redirects, by URL
}

// serverShape is what a server contributes to a document's shape: host
// names are slots, ports and security are not.
type serverShape struct {
	present  bool
	port     int
	security config.Security
}

func shapeOf(s *config.Server) serverShape {
	if s == nil {
		return serverShape{}
	}
	return serverShape{true, s.Port, s.Security}
}

// outlookShape is what shapes an outlook 2006a settings answer.
type outlookShape struct {
	imap, pop3, smtp serverShape
	exchange         bool // EXCH and EXPR entries (EWS offered, and wanted)
	oab              bool // an OABUrl in them
}

// autoconfigShape is what shapes a Thunderbird document.
type autoconfigShape struct {
	imap, pop3, smtp serverShape
	provider         *config.Preset // its sign-in methods, OAuth2 block, documentation
	login            string         // the login-name form
	smtpAuth         string         // the SMTP methods offered, comma-separated
	ews, eas         bool           // the EWS entries, and an ActiveSync URL in them
	names            int            // the domain and its aliases
}

// mobileSyncShape is what shapes a mobilesync answer: nothing but its
// slots.
type mobileSyncShape struct{}

func newCompiler() *compiler {
	return &compiler{templates: map[any]*xmlschema.Template{}, statics: map[string][]byte{}}
}

// shared is the template of a shape, built by build from that
// shape the first time.
func shared[S comparable](c *compiler, shape S, build func(S) *etree.Document) (*xmlschema.Template, error) {
	if t, ok := c.templates[shape]; ok {
		return t, nil
	}
	t, err := xmlschema.NewTemplate(build(shape))
	if err != nil {
		return nil, err
	}
	c.templates[shape] = t
	return t, nil
}

func (c *compiler) compile(d *config.Domain) (*answers, error) {
	a := &answers{domain: d, values: domainValues(d)}
	imap, pop3, smtp := shapeOf(d.IMAP), shapeOf(d.POP3), shapeOf(d.SMTP)
	var err error
	desktop := outlookShape{imap: imap, pop3: pop3, smtp: smtp}
	if a.outlookDesktop, err = shared(c, desktop, outlookDocument); err != nil {
		return nil, fmt.Errorf("domain %s: outlook answer: %w", d.Name, err)
	}
	if d.OutlookExchange == config.OutlookRedirect {
		u := d.Provider.OutlookRedirectURL
		if a.outlookRedirect = c.statics[u]; a.outlookRedirect == nil {
			if a.outlookRedirect, err = outlookRedirect(u).Document().WriteToBytes(); err != nil {
				return nil, fmt.Errorf("domain %s: outlook redirect: %w", d.Name, err)
			}
			c.statics[u] = a.outlookRedirect
		}
	}
	if d.ActiveSyncURL != "" {
		if a.mobilesync, err = shared(c, mobileSyncShape{}, mobileSyncDocument); err != nil {
			return nil, fmt.Errorf("domain %s: mobilesync answer: %w", d.Name, err)
		}
	}
	// One set of documents per period: from the start, then from each
	// change on.
	starts := append([]time.Time{{}}, d.Changes()...)
	for i, from := range starts {
		at := from
		if i == 0 && len(starts) > 1 {
			at = starts[1].Add(-1)
		}
		ews := d.EWSAt(at) != ""
		p := period{from: from}
		outlook := outlookShape{imap: imap, pop3: pop3, smtp: smtp, exchange: ews, oab: ews && d.OABURL != ""}
		if p.outlook, err = shared(c, outlook, outlookDocument); err != nil {
			return nil, fmt.Errorf("domain %s: outlook answer: %w", d.Name, err)
		}
		shape := autoconfigShape{imap: imap, pop3: pop3, smtp: smtp, provider: d.Provider, login: d.LoginName,
			smtpAuth: strings.Join(d.SMTPAuth(at), ","), ews: ews, eas: ews && d.ActiveSyncURL != "", names: len(d.Names())}
		if p.autoconfig, err = shared(c, shape, thunderbirdDocument); err != nil {
			return nil, fmt.Errorf("domain %s: autoconfig: %w", d.Name, err)
		}
		a.periods = append(a.periods, p)
	}
	return a, nil
}

func mobileSyncDocument(mobileSyncShape) *etree.Document {
	url := xmlschema.Slot(slotActiveSyncURL)
	return (&xmlschema.MobileSyncResponse{
		Culture:      "en:us",
		DisplayName:  xmlschema.Slot(slotDisplayName),
		EMailAddress: xmlschema.Slot(slotAddress),
		Servers:      []xmlschema.MobileSyncServer{{Type: "MobileSync", URL: url, Name: url}},
	}).Document()
}

// outlookDocument is the outlook 2006a settings answer with slots for the
// user's and the domain's parts.
func outlookDocument(s outlookShape) *etree.Document {
	login := xmlschema.Slot(slotLogin)
	var protos []xmlschema.Protocol
	if s.exchange {
		// First, as in Exchange's own answers: some clients read only the
		// first Protocol (evolution-data-server's GNOME Online Accounts
		// module takes ASUrl and OABUrl from it). exchangelib reads EwsUrl
		// from EXPR (preferred) or EXCH, Thunderbird only from EXCH/EXHTTP
		// (its readAutoDiscoverXML), Evolution EWS takes ASUrl: send all.
		// ASUrl is the Availability Service, which is EWS. OABUrl only where
		// the config knows it (Microsoft 365's is per tenant).
		host, ews := xmlschema.Slot(slotEWSHost), xmlschema.Slot(slotEWSURL)
		oab := ""
		if s.oab {
			oab = xmlschema.Slot(slotOABURL)
		}
		protos = append(protos,
			xmlschema.Protocol{Type: xmlschema.TypeEXCH, Server: host, ASURL: ews, EWSURL: ews, OABURL: oab},
			xmlschema.Protocol{Type: xmlschema.TypeEXPR, Server: host, SSL: xmlschema.On, ASURL: ews, EWSURL: ews, OABURL: oab},
		)
	}
	for _, p := range []struct {
		typ   string
		shape serverShape
		host  int
	}{{xmlschema.TypeIMAP, s.imap, slotIMAPHost}, {xmlschema.TypePOP3, s.pop3, slotPOP3Host}, {xmlschema.TypeSMTP, s.smtp, slotSMTPHost}} {
		if p.shape.present {
			protos = append(protos, poxProtocol(p.typ, p.shape, xmlschema.Slot(p.host), login))
		}
	}
	return (&xmlschema.OutlookResponse{
		User: &xmlschema.User{
			DisplayName:             xmlschema.Slot(slotDisplayName),
			AutoDiscoverSMTPAddress: xmlschema.Slot(slotAddress),
		},
		Account: xmlschema.Account{AccountType: "email", Action: xmlschema.ActionSettings, Protocols: protos},
	}).Document()
}

func poxProtocol(typ string, s serverShape, host, login string) xmlschema.Protocol {
	p := xmlschema.Protocol{
		Type:      typ,
		Server:    host,
		Port:      s.port,
		LoginName: login,
		// DomainName is not used: the login name is complete.
		DomainRequired: xmlschema.Off,
		// SPA defaults to on when left out, which would make clients try
		// NTLM/encrypted passwords (MS-OXDSCLI 2.2.4.1.1.2.1.3.16): always off.
		SPA:          xmlschema.Off,
		SSL:          wordsFor[s.security].poxSSL,
		Encryption:   wordsFor[s.security].poxEncryption,
		AuthRequired: xmlschema.On,
		TTL:          ttlHours,
	}
	return p
}

func outlookRedirect(u string) *xmlschema.OutlookResponse {
	return &xmlschema.OutlookResponse{Account: xmlschema.Account{
		AccountType: "email", Action: xmlschema.ActionRedirectURL, RedirectURL: u,
	}}
}

// thunderbirdDocument is the config-v1.1.xml document, with the domain's
// parts as slots. Its login names use Thunderbird's own placeholders, so
// it is the same for every user.
func thunderbirdDocument(s autoconfigShape) *etree.Document {
	p := s.provider
	ep := xmlschema.EmailProvider{
		ID:               xmlschema.Slot(slotProviderID),
		DisplayName:      xmlschema.Slot(slotDomainDisplay),
		DisplayShortName: xmlschema.Slot(slotDomainDisplay),
	}
	for i := range s.names {
		ep.Domains = append(ep.Domains, xmlschema.Slot(slotDomains+i))
	}
	if s.imap.present {
		ep.IncomingServers = append(ep.IncomingServers, incoming("imap", s.imap, xmlschema.Slot(slotIMAPHost), s.login, p.IncomingAuth))
	}
	if s.pop3.present {
		in := incoming("pop3", s.pop3, xmlschema.Slot(slotPOP3Host), s.login, p.IncomingAuth)
		in.LeaveMessagesOnServer = true
		ep.IncomingServers = append(ep.IncomingServers, in)
	}
	if s.ews {
		// After IMAP and POP3, so that they stay the default choice.
		ep.IncomingServers = append(ep.IncomingServers, exchangeEntries(s, p.IncomingAuth)...)
	}
	var smtpAuth []string
	if s.smtpAuth != "" {
		smtpAuth = strings.Split(s.smtpAuth, ",")
	}
	ep.OutgoingServers = []xmlschema.OutgoingServer{{
		Hostname: xmlschema.Slot(slotSMTPHost), Port: s.smtp.port, SocketType: wordsFor[s.smtp.security].socketType,
		Username: s.login, Authentication: smtpAuth,
	}}
	if p.DocumentationURL != "" {
		ep.Documentation = []xmlschema.Documentation{{
			URL: p.DocumentationURL, Lang: "en", Descr: p.DisplayName + " IMAP, POP and SMTP settings",
		}}
	}
	c := &xmlschema.ClientConfig{EmailProvider: ep}
	if o := p.OAuth2; o != nil {
		c.OAuth2 = &xmlschema.OAuth2{Issuer: o.Issuer, Scope: o.Scope, AuthURL: o.AuthURL, TokenURL: o.TokenURL}
	}
	return c.Document()
}

func incoming(typ string, s serverShape, host, login string, auth []string) xmlschema.IncomingServer {
	return xmlschema.IncomingServer{
		Type: typ, Hostname: host, Port: s.port, SocketType: wordsFor[s.security].socketType,
		Username: login, Authentication: auth,
	}
}

// exchangeEntries are the EWS entries of a Thunderbird document, in both
// forms current Thunderbird reads (type ews, and the older type exchange).
func exchangeEntries(s autoconfigShape, auth []string) []xmlschema.IncomingServer {
	url := xmlschema.Slot(slotEWSURL)
	eas := ""
	if s.eas {
		eas = xmlschema.Slot(slotActiveSyncURL)
	}
	return []xmlschema.IncomingServer{
		{Type: xmlschema.TypeEWS, URL: url, Username: s.login, Authentication: auth},
		{Type: xmlschema.TypeExchange, Hostname: xmlschema.Slot(slotEWSHost), Port: 443, SocketType: xmlschema.SocketSSL,
			Username: s.login, Authentication: auth, EWSURL: url, EASURL: eas},
	}
}
