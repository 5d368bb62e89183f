package autodiscover

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
	"github.com/beevik/etree"
)

// answers are one domain's documents. Each distinct document is rendered
// once per config load and shared by every domain with the same settings
// (100,000 domains on a preset share one set); a request fills in only the
// user's and the domain's own parts (Template slots).
type answers struct {
	domain *config.Domain

	// outlook: slots 0 display name, 1 address, 2 login name.
	outlook *xmlschema.Template
	// outlookRedirect is the static redirectUrl answer for Outlook asking
	// for Exchange, or nil when the domain's policy is "settings".
	outlookRedirect []byte
	// mobilesync: slots 0 display name, 1 address; nil without ActiveSync.
	mobilesync *xmlschema.Template
	// autoconfig is the Thunderbird document before and after the preset's
	// SMTP password cutoff (the same template when there is none); its
	// slots are autoconfigValues: provider id, display name, domains.
	autoconfigBefore, autoconfigAfter *xmlschema.Template
	autoconfigValues                  []string
	// autodiscoverV1 is our own POX URL, for Autodiscover v2.
	autodiscoverV1 string
}

// Slots of the per-user templates.
const (
	slotDisplayName = 0
	slotAddress     = 1
	slotLogin       = 2
)

// ttlHours is how long Outlook may cache the POX answer (MS-OXDSCLI TTL,
// default 1).
const ttlHours = 1

// compiler renders each distinct document once per config load.
type compiler struct {
	templates map[string]*xmlschema.Template
	statics   map[string][]byte
}

func newCompiler() *compiler {
	return &compiler{templates: map[string]*xmlschema.Template{}, statics: map[string][]byte{}}
}

func (c *compiler) template(key string, build func() *etree.Document) (*xmlschema.Template, error) {
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

func serverKey(s *config.Server) string {
	if s == nil {
		return "-|"
	}
	return s.Host + ":" + strconv.Itoa(s.Port) + ":" + string(s.Security) + "|"
}

func (c *compiler) compile(d *config.Domain) (*answers, error) {
	a := &answers{domain: d, autodiscoverV1: "https://autodiscover." + d.Name + "/autodiscover/autodiscover.xml"}
	servers := serverKey(d.IMAP) + serverKey(d.POP3) + serverKey(d.SMTP)
	var err error
	if a.outlook, err = c.template("outlook|"+servers+d.EWSURL, func() *etree.Document { return outlookSettings(d).Document() }); err != nil {
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
		if a.mobilesync, err = c.template("eas|"+d.ActiveSyncURL, func() *etree.Document { return mobileSync(d).Document() }); err != nil {
			return nil, fmt.Errorf("domain %s: mobilesync answer: %w", d.Name, err)
		}
	}
	names := d.Names()
	a.autoconfigValues = append([]string{d.Name, d.DisplayName}, names...)
	p := d.Provider
	for _, v := range []struct {
		t   **xmlschema.Template
		now time.Time
	}{{&a.autoconfigBefore, p.SMTPPasswordUntil.Add(-1)}, {&a.autoconfigAfter, p.SMTPPasswordUntil}} {
		auth := d.SMTPAuth(v.now)
		key := "tb|" + p.Name + "|" + servers + d.LoginName + "|" + strings.Join(auth, ",") + "|" + strconv.Itoa(len(names))
		if *v.t, err = c.template(key, func() *etree.Document { return thunderbird(d, auth, len(names)).Document() }); err != nil {
			return nil, fmt.Errorf("domain %s: autoconfig: %w", d.Name, err)
		}
	}
	return a, nil
}

// v2URL is the Autodiscover v2 answer for a lower-case protocol.
func (a *answers) v2URL(proto string) (string, bool) {
	var u string
	switch proto {
	case protoActiveSync:
		u = a.domain.ActiveSyncURL
	case protoEws:
		u = a.domain.EWSURL
	case protoAutodiscoverV1:
		u = a.autodiscoverV1
	}
	return u, u != ""
}

func mobileSync(d *config.Domain) *xmlschema.MobileSyncResponse {
	return &xmlschema.MobileSyncResponse{
		Culture:      "en:us",
		DisplayName:  xmlschema.Slot(slotDisplayName),
		EMailAddress: xmlschema.Slot(slotAddress),
		Servers:      []xmlschema.MobileSyncServer{{Type: "MobileSync", URL: d.ActiveSyncURL, Name: d.ActiveSyncURL}},
	}
}

// outlookSettings is the outlook 2006a settings answer with slots for the
// user's parts.
func outlookSettings(d *config.Domain) *xmlschema.OutlookResponse {
	login := xmlschema.Slot(slotLogin)
	var protos []xmlschema.Protocol
	for _, s := range []struct {
		typ string
		srv *config.Server
	}{{xmlschema.TypeIMAP, d.IMAP}, {xmlschema.TypePOP3, d.POP3}, {xmlschema.TypeSMTP, d.SMTP}} {
		if s.srv != nil {
			protos = append(protos, poxProtocol(s.typ, s.srv, login))
		}
	}
	if d.EWSURL != "" {
		// exchangelib reads EwsUrl from EXPR (preferred) or EXCH, Thunderbird
		// only from EXCH/EXHTTP: send both (CLIENTS.md). ASUrl is the
		// Availability Service, which is EWS too.
		host := urlHost(d.EWSURL)
		protos = append(protos,
			xmlschema.Protocol{Type: xmlschema.TypeEXCH, Server: host, ASUrl: d.EWSURL, EwsURL: d.EWSURL},
			xmlschema.Protocol{Type: xmlschema.TypeEXPR, Server: host, SSL: xmlschema.On, ASUrl: d.EWSURL, EwsURL: d.EWSURL},
		)
	}
	return &xmlschema.OutlookResponse{
		User: &xmlschema.User{
			DisplayName:             xmlschema.Slot(slotDisplayName),
			AutoDiscoverSMTPAddress: xmlschema.Slot(slotAddress),
		},
		Account: xmlschema.Account{AccountType: "email", Action: xmlschema.ActionSettings, Protocols: protos},
	}
}

func poxProtocol(typ string, s *config.Server, login string) xmlschema.Protocol {
	p := xmlschema.Protocol{
		Type:      typ,
		Server:    s.Host,
		Port:      s.Port,
		LoginName: login,
		// DomainName is not used: the login name is complete.
		DomainRequired: xmlschema.Off,
		// SPA defaults to on when left out, which would make clients try
		// NTLM/encrypted passwords (MS-OXDSCLI 2.2.4.1.1.2.1.3.16): always off.
		SPA:          xmlschema.Off,
		SSL:          xmlschema.On,
		AuthRequired: xmlschema.On,
		TTL:          ttlHours,
	}
	// Thunderbird reads SSL=off / Encryption=None as plaintext and guesses
	// STARTTLS from the port otherwise, so both are always explicit.
	switch s.Security {
	case config.SecuritySSL:
		p.Encryption = xmlschema.EncryptionSSL
	case config.SecurityStartTLS:
		p.Encryption = xmlschema.EncryptionTLS
	default:
		p.SSL, p.Encryption = xmlschema.Off, xmlschema.EncryptionNone
	}
	return p
}

func outlookRedirect(u string) *xmlschema.OutlookResponse {
	return &xmlschema.OutlookResponse{Account: xmlschema.Account{
		AccountType: "email", Action: xmlschema.ActionRedirectURL, RedirectURL: u,
	}}
}

// thunderbird is the config-v1.1.xml document with slots for the domain's
// own parts: 0 the provider id, 1 the display name, 2.. the n domain
// names. Its login names use Thunderbird's own placeholders, so it is the
// same for every user.
func thunderbird(d *config.Domain, smtpAuth []string, n int) *xmlschema.ClientConfig {
	p := d.Provider
	ep := xmlschema.EmailProvider{
		ID:               xmlschema.Slot(0),
		DisplayName:      xmlschema.Slot(1),
		DisplayShortName: xmlschema.Slot(1),
	}
	for i := range n {
		ep.Domains = append(ep.Domains, xmlschema.Slot(2+i))
	}
	if d.IMAP != nil {
		ep.IncomingServers = append(ep.IncomingServers, incoming("imap", d.IMAP, d.LoginName, p.IncomingAuth))
	}
	if d.POP3 != nil {
		s := incoming("pop3", d.POP3, d.LoginName, p.IncomingAuth)
		s.LeaveMessagesOnServer = true
		ep.IncomingServers = append(ep.IncomingServers, s)
	}
	ep.OutgoingServers = []xmlschema.OutgoingServer{{
		Hostname: d.SMTP.Host, Port: d.SMTP.Port, SocketType: socketType(d.SMTP.Security),
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

func incoming(typ string, s *config.Server, login string, auth []string) xmlschema.IncomingServer {
	return xmlschema.IncomingServer{
		Type: typ, Hostname: s.Host, Port: s.Port, SocketType: socketType(s.Security),
		Username: login, Authentication: auth,
	}
}

func socketType(s config.Security) string {
	switch s {
	case config.SecuritySSL:
		return xmlschema.SocketSSL
	case config.SecurityStartTLS:
		return xmlschema.SocketSTARTTLS
	}
	return xmlschema.SocketPlain
}

func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
