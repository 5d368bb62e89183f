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

	// outlook 2006a settings, as Exchange orders them: EXCH and EXPR first
	// where EWS is offered, then IMAP, POP3, SMTP.
	outlook *xmlschema.Template
	// outlookDesktop is the settings answer for Outlook desktop asking for
	// Exchange under the "settings" policy: IMAP, POP3 and SMTP only. Given
	// EXCH/EXPR, Outlook would try RPC over HTTP instead of IMAP.
	outlookDesktop *xmlschema.Template
	// outlookRedirect is the static redirectUrl answer for Outlook asking
	// for Exchange, or nil when the domain's policy is "settings".
	outlookRedirect []byte
	// mobilesync; nil without ActiveSync.
	mobilesync *xmlschema.Template
	// autoconfig is the Thunderbird document for each period between the
	// provider's announced dates (Domain.Changes), in order.
	autoconfig []periodTemplate
}

// periodTemplate is a document served from an instant on.
type periodTemplate struct {
	from time.Time // zero: from the start
	t    *xmlschema.Template
}

// autoconfigAt is the Thunderbird document for time t.
func (a *answers) autoconfigAt(t time.Time) *xmlschema.Template {
	cur := a.autoconfig[0].t
	for _, p := range a.autoconfig[1:] {
		if t.Before(p.from) {
			break
		}
		cur = p.t
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
type compiler struct {
	templates map[templateKey]*xmlschema.Template
	statics   map[string][]byte // outlook redirects, by URL
}

// templateKey is everything that shapes a document besides its slots:
// two domains with equal keys share the template.
type templateKey struct {
	document   string // "outlook", "mobilesync" or "autoconfig"
	imap, pop3 serverShape
	smtp       serverShape
	ews        bool // EWS entries (EXCH/EXPR; autoconfig's ews/exchange)
	oab        bool
	eas        bool
	// Autoconfig only.
	provider string
	login    string
	smtpAuth string // the SMTP methods offered, comma-separated
	names    int    // the domain and its aliases
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

func newCompiler() *compiler {
	return &compiler{templates: map[templateKey]*xmlschema.Template{}, statics: map[string][]byte{}}
}

func (c *compiler) template(key templateKey, build func() *etree.Document) (*xmlschema.Template, error) {
	if t, ok := c.templates[key]; ok {
		return t, nil
	}
	t, err := xmlschema.NewTemplate(build())
	if err != nil {
		return nil, err
	}
	c.templates[key] = t
	return t, nil
}

func (c *compiler) compile(d *config.Domain) (*answers, error) {
	a := &answers{domain: d, values: domainValues(d)}
	servers := templateKey{imap: shapeOf(d.IMAP), pop3: shapeOf(d.POP3), smtp: shapeOf(d.SMTP)}
	outlook := servers
	outlook.document, outlook.ews, outlook.oab = "outlook", d.EWSURL != "", d.OABURL != ""
	var err error
	if a.outlook, err = c.template(outlook, func() *etree.Document { return outlookSettings(d, true).Document() }); err != nil {
		return nil, fmt.Errorf("domain %s: outlook answer: %w", d.Name, err)
	}
	desktop := servers
	desktop.document = "outlook"
	if a.outlookDesktop, err = c.template(desktop, func() *etree.Document { return outlookSettings(d, false).Document() }); err != nil {
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
		if a.mobilesync, err = c.template(templateKey{document: "mobilesync"}, func() *etree.Document { return mobileSync().Document() }); err != nil {
			return nil, fmt.Errorf("domain %s: mobilesync answer: %w", d.Name, err)
		}
	}
	n := 1 + len(d.Aliases)
	// One document per period: from the start, then from each change on.
	periods := append([]time.Time{{}}, d.Changes()...)
	for i, from := range periods {
		at := from
		if i == 0 && len(periods) > 1 {
			at = periods[1].Add(-1)
		}
		auth, ews := d.SMTPAuth(at), d.EWSInAutoconfig(at)
		key := servers
		key.document, key.provider, key.login, key.smtpAuth, key.names = "autoconfig", d.Provider.Name, d.LoginName, strings.Join(auth, ","), n
		key.ews, key.eas = ews, ews && d.ActiveSyncURL != ""
		t, err := c.template(key, func() *etree.Document { return thunderbird(d, auth, ews, n).Document() })
		if err != nil {
			return nil, fmt.Errorf("domain %s: autoconfig: %w", d.Name, err)
		}
		a.autoconfig = append(a.autoconfig, periodTemplate{from, t})
	}
	return a, nil
}

func mobileSync() *xmlschema.MobileSyncResponse {
	url := xmlschema.Slot(slotActiveSyncURL)
	return &xmlschema.MobileSyncResponse{
		Culture:      "en:us",
		DisplayName:  xmlschema.Slot(slotDisplayName),
		EMailAddress: xmlschema.Slot(slotAddress),
		Servers:      []xmlschema.MobileSyncServer{{Type: "MobileSync", URL: url, Name: url}},
	}
}

// outlookSettings is the outlook 2006a settings answer with slots for the
// user's parts; exchange adds EXCH and EXPR where EWS is offered.
func outlookSettings(d *config.Domain, exchange bool) *xmlschema.OutlookResponse {
	login := xmlschema.Slot(slotLogin)
	var protos []xmlschema.Protocol
	if exchange && d.EWSURL != "" {
		// First, as in Exchange's own answers: some clients read only the
		// first Protocol (evolution-data-server's GNOME Online Accounts
		// module takes ASUrl and OABUrl from it). exchangelib reads EwsUrl
		// from EXPR (preferred) or EXCH, Thunderbird only from EXCH/EXHTTP
		// (its readAutoDiscoverXML), Evolution EWS takes ASUrl: send all.
		// ASUrl is the Availability Service, which is EWS. OABUrl only where
		// the config knows it (Microsoft 365's is per tenant).
		host, ews := xmlschema.Slot(slotEWSHost), xmlschema.Slot(slotEWSURL)
		oab := ""
		if d.OABURL != "" {
			oab = xmlschema.Slot(slotOABURL)
		}
		protos = append(protos,
			xmlschema.Protocol{Type: xmlschema.TypeEXCH, Server: host, ASUrl: ews, EwsURL: ews, OABUrl: oab},
			xmlschema.Protocol{Type: xmlschema.TypeEXPR, Server: host, SSL: xmlschema.On, ASUrl: ews, EwsURL: ews, OABUrl: oab},
		)
	}
	for _, s := range []struct {
		typ  string
		srv  *config.Server
		host int
	}{{xmlschema.TypeIMAP, d.IMAP, slotIMAPHost}, {xmlschema.TypePOP3, d.POP3, slotPOP3Host}, {xmlschema.TypeSMTP, d.SMTP, slotSMTPHost}} {
		if s.srv != nil {
			protos = append(protos, poxProtocol(s.typ, s.srv, xmlschema.Slot(s.host), login))
		}
	}
	return &xmlschema.OutlookResponse{
		User: &xmlschema.User{
			DisplayName:             xmlschema.Slot(slotDisplayName),
			AutoDiscoverSMTPAddress: xmlschema.Slot(slotAddress),
		},
		Account: xmlschema.Account{AccountType: "email", Action: xmlschema.ActionSettings, Protocols: protos},
	}
}

func poxProtocol(typ string, s *config.Server, host, login string) xmlschema.Protocol {
	p := xmlschema.Protocol{
		Type:      typ,
		Server:    host,
		Port:      s.Port,
		LoginName: login,
		// DomainName is not used: the login name is complete.
		DomainRequired: xmlschema.Off,
		// SPA defaults to on when left out, which would make clients try
		// NTLM/encrypted passwords (MS-OXDSCLI 2.2.4.1.1.2.1.3.16): always off.
		SPA:          xmlschema.Off,
		SSL:          wordsFor[s.Security].poxSSL,
		Encryption:   wordsFor[s.Security].poxEncryption,
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

// thunderbird is the config-v1.1.xml document for domains of n names, with
// the domain's parts as slots. Its login names use Thunderbird's own
// placeholders, so it is the same for every user.
func thunderbird(d *config.Domain, smtpAuth []string, ews bool, n int) *xmlschema.ClientConfig {
	p := d.Provider
	ep := xmlschema.EmailProvider{
		ID:               xmlschema.Slot(slotProviderID),
		DisplayName:      xmlschema.Slot(slotDomainDisplay),
		DisplayShortName: xmlschema.Slot(slotDomainDisplay),
	}
	for i := range n {
		ep.Domains = append(ep.Domains, xmlschema.Slot(slotDomains+i))
	}
	if d.IMAP != nil {
		ep.IncomingServers = append(ep.IncomingServers, incoming("imap", d.IMAP, xmlschema.Slot(slotIMAPHost), d.LoginName, p.IncomingAuth))
	}
	if d.POP3 != nil {
		s := incoming("pop3", d.POP3, xmlschema.Slot(slotPOP3Host), d.LoginName, p.IncomingAuth)
		s.LeaveMessagesOnServer = true
		ep.IncomingServers = append(ep.IncomingServers, s)
	}
	if ews {
		// After IMAP and POP3, so that they stay the default choice.
		ep.IncomingServers = append(ep.IncomingServers, exchangeEntries(d, p.IncomingAuth)...)
	}
	ep.OutgoingServers = []xmlschema.OutgoingServer{{
		Hostname: xmlschema.Slot(slotSMTPHost), Port: d.SMTP.Port, SocketType: wordsFor[d.SMTP.Security].socketType,
		Username: d.LoginName, Authentication: smtpAuth,
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
	return c
}

func incoming(typ string, s *config.Server, host, login string, auth []string) xmlschema.IncomingServer {
	return xmlschema.IncomingServer{
		Type: typ, Hostname: host, Port: s.Port, SocketType: wordsFor[s.Security].socketType,
		Username: login, Authentication: auth,
	}
}

// exchangeEntries are the EWS entries of a Thunderbird document, in both
// forms current Thunderbird reads (type ews, and the older type exchange).
func exchangeEntries(d *config.Domain, auth []string) []xmlschema.IncomingServer {
	url := xmlschema.Slot(slotEWSURL)
	eas := ""
	if d.ActiveSyncURL != "" {
		eas = xmlschema.Slot(slotActiveSyncURL)
	}
	return []xmlschema.IncomingServer{
		{Type: xmlschema.TypeEWS, URL: url, Username: d.LoginName, Authentication: auth},
		{Type: xmlschema.TypeExchange, Hostname: xmlschema.Slot(slotEWSHost), Port: 443, SocketType: xmlschema.SocketSSL,
			Username: d.LoginName, Authentication: auth, EWSURL: url, EASURL: eas},
	}
}
