package autodiscover

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// answers are one domain's documents, built once at config load. Only the
// user's own parts are filled in per request (Template slots).
type answers struct {
	domain *config.Domain

	// outlook: slots 0 display name, 1 address, 2 login name.
	outlook *xmlschema.Template
	// outlookRedirect is the static redirectUrl answer for Outlook asking
	// for Exchange, or nil when the domain's policy is "settings".
	outlookRedirect []byte
	// mobilesync: slots 0 display name, 1 address; nil without ActiveSync.
	mobilesync *xmlschema.Template
	// autoconfig holds the Thunderbird document before and after the
	// preset's SMTP password cutoff (the same bytes when there is none).
	autoconfigBefore, autoconfigAfter []byte
	// v2 maps a lower-case Autodiscover v2 protocol to its URL.
	v2 map[string]string
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

func compile(d *config.Domain) (*answers, error) {
	a := &answers{domain: d, v2: map[string]string{}}
	var err error
	if a.outlook, err = xmlschema.NewTemplate(outlookSettings(d).Document()); err != nil {
		return nil, fmt.Errorf("domain %s: outlook answer: %w", d.Name, err)
	}
	if d.OutlookExchange == config.OutlookRedirect {
		if a.outlookRedirect, err = outlookRedirect(d.Provider.OutlookRedirectURL).Document().WriteToBytes(); err != nil {
			return nil, fmt.Errorf("domain %s: outlook redirect: %w", d.Name, err)
		}
	}
	if d.ActiveSyncURL != "" {
		m := &xmlschema.MobileSyncResponse{
			Culture:      "en:us",
			DisplayName:  xmlschema.Slot(slotDisplayName),
			EMailAddress: xmlschema.Slot(slotAddress),
			Servers:      []xmlschema.MobileSyncServer{{Type: "MobileSync", URL: d.ActiveSyncURL, Name: d.ActiveSyncURL}},
		}
		if a.mobilesync, err = xmlschema.NewTemplate(m.Document()); err != nil {
			return nil, fmt.Errorf("domain %s: mobilesync answer: %w", d.Name, err)
		}
		a.v2[protoActiveSync] = d.ActiveSyncURL
	}
	if d.EWSURL != "" {
		a.v2[protoEws] = d.EWSURL
	}
	// AutodiscoverV1 points Outlook at our own POX endpoint.
	a.v2[protoAutodiscoverV1] = "https://autodiscover." + d.Name + "/autodiscover/autodiscover.xml"

	p := d.Provider
	if a.autoconfigBefore, err = thunderbird(d, d.SMTPAuth(p.SMTPPasswordUntil.Add(-1))).Document().WriteToBytes(); err != nil {
		return nil, fmt.Errorf("domain %s: autoconfig: %w", d.Name, err)
	}
	if a.autoconfigAfter, err = thunderbird(d, d.SMTPAuth(p.SMTPPasswordUntil)).Document().WriteToBytes(); err != nil {
		return nil, fmt.Errorf("domain %s: autoconfig: %w", d.Name, err)
	}
	return a, nil
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

// thunderbird is the config-v1.1.xml document. Its login names use
// Thunderbird's own placeholders, so it is the same for every user.
func thunderbird(d *config.Domain, smtpAuth []string) *xmlschema.ClientConfig {
	p := d.Provider
	ep := xmlschema.EmailProvider{
		ID:               d.Name,
		Domains:          d.Names(),
		DisplayName:      d.DisplayName,
		DisplayShortName: d.DisplayName,
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
