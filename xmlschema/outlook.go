package xmlschema

import (
	"strconv"

	"github.com/beevik/etree"
)

// Account actions (MS-OXDSCLI 2.2.4.1.1.2.1).
const (
	ActionSettings    = "settings"
	ActionRedirectURL = "redirectUrl"
)

// Protocol types. IMAP, POP3 and SMTP are not in the Exchange docs' list but
// are read by Outlook and Thunderbird; EXCH and EXPR carry EwsUrl.
const (
	TypeIMAP = "IMAP"
	TypePOP3 = "POP3"
	TypeSMTP = "SMTP"
	TypeEXCH = "EXCH"
	TypeEXPR = "EXPR"
)

// Encryption values (MS-OXDSCLI, as read by Thunderbird's ExchangeAutoDiscover).
const (
	EncryptionNone = "None"
	EncryptionSSL  = "SSL"
	EncryptionTLS  = "TLS"
)

// OutlookResponse is the outlook/responseschema/2006a answer.
type OutlookResponse struct {
	User    *User // nil for a redirect
	Account Account
}

// User is Response/User.
type User struct {
	DisplayName             string
	AutoDiscoverSMTPAddress string
}

// Account is Response/Account.
type Account struct {
	AccountType string // always "email" here
	Action      string
	RedirectURL string
	Protocols   []Protocol
}

// Protocol is Account/Protocol. Empty strings and zero ports are left out.
type Protocol struct {
	Type           string
	Server         string
	Port           int
	LoginName      string
	DomainRequired OnOff
	SPA            OnOff
	SSL            OnOff
	Encryption     string
	AuthRequired   OnOff
	ASURL          string
	EWSURL         string
	OABURL         string
	TTL            int // hours; 0 leaves the element out
}

// Document builds the response document.
func (o *OutlookResponse) Document() *etree.Document {
	doc := newDocument()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	resp.CreateAttr("xmlns", NSOutlookResponse)
	if o.User != nil {
		u := resp.CreateElement("User")
		add(u, "DisplayName", o.User.DisplayName)
		add(u, "AutoDiscoverSMTPAddress", o.User.AutoDiscoverSMTPAddress)
	}
	a := resp.CreateElement("Account")
	add(a, "AccountType", o.Account.AccountType)
	add(a, "Action", o.Account.Action)
	addIf(a, "RedirectUrl", o.Account.RedirectURL)
	for _, p := range o.Account.Protocols {
		p.write(a.CreateElement("Protocol"))
	}
	return finish(doc)
}

func (p *Protocol) write(e *etree.Element) {
	add(e, "Type", p.Type)
	addIf(e, "Server", p.Server)
	if p.Port != 0 {
		add(e, "Port", strconv.Itoa(p.Port))
	}
	addIf(e, "LoginName", p.LoginName)
	addIf(e, "DomainRequired", string(p.DomainRequired))
	addIf(e, "SPA", string(p.SPA))
	addIf(e, "SSL", string(p.SSL))
	addIf(e, "Encryption", p.Encryption)
	addIf(e, "AuthRequired", string(p.AuthRequired))
	addIf(e, "ASUrl", p.ASURL)
	addIf(e, "EwsUrl", p.EWSURL)
	addIf(e, "OABUrl", p.OABURL)
	if p.TTL != 0 {
		add(e, "TTL", strconv.Itoa(p.TTL))
	}
}

// MobileSyncResponse is the mobilesync/responseschema/2006 answer
// (MS-ASCMD 2.2.1.1.2).
type MobileSyncResponse struct {
	Culture      string
	DisplayName  string
	EMailAddress string
	// Servers are Action/Settings/Server entries.
	Servers []MobileSyncServer
}

// MobileSyncServer is Action/Settings/Server.
type MobileSyncServer struct {
	Type string // MobileSync
	URL  string
	Name string // equals URL for MobileSync
}

// Document builds the response document.
func (m *MobileSyncResponse) Document() *etree.Document {
	doc := newDocument()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	resp.CreateAttr("xmlns", NSMobileSyncResponse)
	add(resp, "Culture", m.Culture)
	u := resp.CreateElement("User")
	addIf(u, "DisplayName", m.DisplayName)
	add(u, "EMailAddress", m.EMailAddress)
	settings := resp.CreateElement("Action").CreateElement("Settings")
	for _, s := range m.Servers {
		e := settings.CreateElement("Server")
		add(e, "Type", s.Type)
		add(e, "Url", s.URL)
		add(e, "Name", s.Name)
	}
	return finish(doc)
}

// Error codes (MS-OXDSCLI 2.2.4.1.1.3.2); no others are defined.
const (
	ErrorAddressNotFound   = 500
	ErrorInvalidRequest    = 600
	ErrorSchemaUnavailable = 601
)

// ErrorResponse is the schema-independent error answer, sent with HTTP 200:
// Error sits directly under Response (MS-OXDSCLI, MS-ASCMD, Gromox and
// mailcow agree; only the EWS element docs put it under Account).
//
// An error for a mobilesync request has its Response in the mobilesync
// namespace, as [MS-ASCMD] 2.2.1.1.2's examples do: namespace-strict
// ActiveSync clients look for Error there.
type ErrorResponse struct {
	Time    string // hh:mm:ss.fffffff
	ID      string // unsigned integer
	Code    int
	Message string
	// Schema is the Response namespace: empty for the schema-independent
	// error, or NSMobileSyncResponse.
	Schema string
}

// Document builds the error document.
func (e *ErrorResponse) Document() *etree.Document {
	doc := newDocument()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	if e.Schema != "" {
		resp.CreateAttr("xmlns", e.Schema)
	}
	el := resp.CreateElement("Error")
	el.CreateAttr("Time", e.Time)
	el.CreateAttr("Id", e.ID)
	add(el, "ErrorCode", strconv.Itoa(e.Code))
	add(el, "Message", e.Message)
	el.CreateElement("DebugData")
	return finish(doc)
}
