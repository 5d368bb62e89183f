package xmlschema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// SOAP Autodiscover ([MS-OXWSADISC]): SOAP 1.1 with
// WS-Addressing headers, at /autodiscover/autodiscover.svc.
const (
	NSSOAP11       = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSOAP12       = "http://www.w3.org/2003/05/soap-envelope"
	NSAddressing   = "http://www.w3.org/2005/08/addressing"
	NSAutodiscover = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	NSSchemaInst   = "http://www.w3.org/2001/XMLSchema-instance"

	ActionGetUserSettings   = NSAutodiscover + "/Autodiscover/GetUserSettings"
	ActionGetDomainSettings = NSAutodiscover + "/Autodiscover/GetDomainSettings"
)

// SOAP operations answered.
const (
	OpGetUserSettings   = "GetUserSettings"
	OpGetDomainSettings = "GetDomainSettings"
)

// ErrorCode values of [MS-OXWSADISC] (errorcode-soap).
const (
	SOAPNoError               = "NoError"
	SOAPInvalidUser           = "InvalidUser"
	SOAPInvalidRequest        = "InvalidRequest"
	SOAPInvalidSetting        = "InvalidSetting"
	SOAPSettingIsNotAvailable = "SettingIsNotAvailable"
	SOAPInvalidDomain         = "InvalidDomain"
)

// SettingNames are the setting names Exchange defines ([MS-OXWSADISC]
// UserSettingName and DomainSettingName; the EWS Managed API's
// UserSettingName enumeration, which follows Exchange's), in its order.
var SettingNames = strings.Fields(`
		UserDisplayName UserDN UserDeploymentId InternalMailboxServer InternalRpcClientServer
		InternalMailboxServerDN InternalEcpUrl InternalEcpVoicemailUrl InternalEcpEmailSubscriptionsUrl
		InternalEcpTextMessagingUrl InternalEcpDeliveryReportUrl InternalEcpRetentionPolicyTagsUrl
		InternalEcpPublishingUrl InternalEcpPhotoUrl InternalEcpConnectUrl InternalEcpTeamMailboxUrl
		InternalEcpTeamMailboxCreatingUrl InternalEcpTeamMailboxEditingUrl InternalEcpTeamMailboxHidingUrl
		InternalEcpExtensionInstallationUrl InternalEwsUrl InternalEmwsUrl InternalOABUrl InternalPhotosUrl
		InternalUMUrl InternalWebClientUrls MailboxDN PublicFolderServer ActiveDirectoryServer
		ExternalMailboxServer ExternalMailboxServerRequiresSSL ExternalMailboxServerAuthenticationMethods
		EcpVoicemailUrlFragment EcpEmailSubscriptionsUrlFragment EcpTextMessagingUrlFragment
		EcpDeliveryReportUrlFragment EcpRetentionPolicyTagsUrlFragment EcpPublishingUrlFragment
		EcpPhotoUrlFragment EcpConnectUrlFragment EcpTeamMailboxUrlFragment EcpTeamMailboxCreatingUrlFragment
		EcpTeamMailboxEditingUrlFragment EcpExtensionInstallationUrlFragment ExternalEcpUrl
		ExternalEcpVoicemailUrl ExternalEcpEmailSubscriptionsUrl ExternalEcpTextMessagingUrl
		ExternalEcpDeliveryReportUrl ExternalEcpRetentionPolicyTagsUrl ExternalEcpPublishingUrl
		ExternalEcpPhotoUrl ExternalEcpConnectUrl ExternalEcpTeamMailboxUrl ExternalEcpTeamMailboxCreatingUrl
		ExternalEcpTeamMailboxEditingUrl ExternalEcpTeamMailboxHidingUrl ExternalEcpExtensionInstallationUrl
		ExternalEwsUrl ExternalEmwsUrl ExternalOABUrl ExternalPhotosUrl ExternalUMUrl ExternalWebClientUrls
		CrossOrganizationSharingEnabled AlternateMailboxes CasVersion EwsSupportedSchemas
		InternalPop3Connections ExternalPop3Connections InternalImap4Connections ExternalImap4Connections
		InternalSmtpConnections ExternalSmtpConnections InternalServerExclusiveConnect ExternalEwsVersion
		MobileMailboxPolicy DocumentSharingLocations UserMSOnline InternalMailboxServerAuthenticationMethods
		MailboxVersion SPMySiteHostURL SiteMailboxCreationURL InternalRpcHttpServer
		InternalRpcHttpConnectivityRequiresSsl InternalRpcHttpAuthenticationMethod
		ExternalServerExclusiveConnect ExchangeRpcUrl ShowGalAsDefaultView AutoDiscoverSMTPAddress
		InteropExternalEwsUrl InteropExternalEwsVersion PublicFolderInformation RedirectUrl EwsPartnerUrl
		CertPrincipalName GroupingInformation InternalOutlookServiceUrl ExternalOutlookServiceUrl
		MapiHttpEnabled ExternalEwsUrlForOffice`)

// SOAPRequest is a GetUserSettings or GetDomainSettings request.
type SOAPRequest struct {
	Operation              string
	Action                 string // wsa:Action header, if sent
	RequestedServerVersion string
	Mailboxes              []string // GetUserSettings: Users/User/Mailbox
	Domains                []string // GetDomainSettings: Domains/Domain
	RequestedSettings      []string
}

// SOAPFaultError is a request that gets a SOAP fault, not an answer.
type SOAPFaultError struct {
	Code   string // faultcode, e.g. s:Client, s:VersionMismatch
	Reason string
	// NotXML: the body is not XML at all, so not a SOAP message either.
	NotXML bool
}

func (e *SOAPFaultError) Error() string { return e.Code + ": " + e.Reason }

func clientFault(format string, args ...any) error {
	return &SOAPFaultError{Code: "s:Client", Reason: fmt.Sprintf(format, args...)}
}

// ParseSOAPRequest reads a SOAP 1.1 Autodiscover request. Every error is a
// *SOAPFaultError.
func ParseSOAPRequest(body []byte) (*SOAPRequest, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		return nil, &SOAPFaultError{Code: "s:Client", Reason: fmt.Sprintf("the request is not well-formed XML: %v", err), NotXML: true}
	}
	env := doc.Root()
	if env == nil { // text without an element: not XML
		return nil, &SOAPFaultError{Code: "s:Client", Reason: "the request is not XML", NotXML: true}
	}
	if env.Tag != "Envelope" {
		return nil, clientFault("the request is not a SOAP envelope")
	}
	switch env.NamespaceURI() {
	case NSSOAP11:
	case NSSOAP12:
		return nil, &SOAPFaultError{Code: "s:VersionMismatch", Reason: "only SOAP 1.1 envelopes are answered"}
	default:
		return nil, &SOAPFaultError{Code: "s:VersionMismatch", Reason: "the envelope is not in the SOAP 1.1 namespace"}
	}
	r := &SOAPRequest{}
	if h := childNS(env, "Header", NSSOAP11); h != nil {
		if a := childNS(h, "Action", NSAddressing); a != nil {
			r.Action = strings.TrimSpace(a.Text())
		}
		if v := childNS(h, "RequestedServerVersion", NSAutodiscover); v != nil {
			r.RequestedServerVersion = strings.TrimSpace(v.Text())
		}
	}
	body0 := childNS(env, "Body", NSSOAP11)
	if body0 == nil || len(body0.ChildElements()) != 1 {
		return nil, clientFault("the SOAP Body must hold exactly one request element")
	}
	msg := body0.ChildElements()[0]
	if msg.NamespaceURI() != NSAutodiscover {
		return nil, clientFault("the request element is not in the Autodiscover namespace %s", NSAutodiscover)
	}
	var wantAction string
	switch msg.Tag {
	case "GetUserSettingsRequestMessage":
		r.Operation, wantAction = OpGetUserSettings, ActionGetUserSettings
	case "GetDomainSettingsRequestMessage":
		r.Operation, wantAction = OpGetDomainSettings, ActionGetDomainSettings
	default:
		return nil, &SOAPFaultError{Code: "s:Client", Reason: "the operation " + msg.Tag + " is not supported"}
	}
	if r.Action != "" && r.Action != wantAction {
		return nil, clientFault("the wsa:Action header %q does not match the %s body", r.Action, r.Operation)
	}
	req := childNS(msg, "Request", NSAutodiscover)
	if req == nil {
		return nil, clientFault("%s has no Request", msg.Tag)
	}
	if users := childNS(req, "Users", NSAutodiscover); users != nil {
		for _, u := range childrenNS(users, "User", NSAutodiscover) {
			if m := childNS(u, "Mailbox", NSAutodiscover); m != nil {
				r.Mailboxes = append(r.Mailboxes, strings.TrimSpace(m.Text()))
			}
		}
	}
	if domains := childNS(req, "Domains", NSAutodiscover); domains != nil {
		for _, d := range childrenNS(domains, "Domain", NSAutodiscover) {
			r.Domains = append(r.Domains, strings.TrimSpace(d.Text()))
		}
	}
	if rs := childNS(req, "RequestedSettings", NSAutodiscover); rs != nil {
		for _, s := range childrenNS(rs, "Setting", NSAutodiscover) {
			r.RequestedSettings = append(r.RequestedSettings, strings.TrimSpace(s.Text()))
		}
	}
	return r, nil
}

func childNS(e *etree.Element, tag, ns string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

func childrenNS(e *etree.Element, tag, ns string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// Setting is one UserSetting or DomainSetting: a string value or a
// collection of protocol connections.
type Setting struct {
	Name        string
	Value       string               // StringSetting / DomainStringSetting
	Connections []ProtocolConnection // ProtocolConnectionCollectionSetting
}

// ProtocolConnection is ProtocolConnections/ProtocolConnection.
type ProtocolConnection struct {
	Hostname         string
	Port             int
	EncryptionMethod string // SSL, TLS or None
}

// SettingError is a UserSettingError or DomainSettingError.
type SettingError struct {
	ErrorCode    string
	ErrorMessage string
	SettingName  string
}

// SOAPItem is one UserResponse or DomainResponse.
type SOAPItem struct {
	ErrorCode     string
	ErrorMessage  string
	SettingErrors []SettingError
	Settings      []Setting
}

// SOAPResponse is a GetUserSettings or GetDomainSettings answer.
type SOAPResponse struct {
	Operation    string
	ErrorCode    string
	ErrorMessage string
	// Items is how many UserResponses or DomainResponses there are, and
	// Item fills it with the i-th, reusing its slices: the answer is
	// written one item at a time, and never held whole as values.
	Items int
	Item  func(i int, it *SOAPItem)
	// Server is the ServerVersionInfo header; nil leaves it out.
	Server *ServerVersionInfo
}

// ServerVersionInfo is the SOAP header Exchange puts on every Autodiscover
// answer ([MS-OXWSADISC]; Microsoft's Autodiscover reference,
// "ServerVersionInfo (SOAP)": MajorVersion, MinorVersion, MajorBuildNumber,
// MinorBuildNumber, Version, in this order). The EWS Managed API and its
// ports read it from every answer.
type ServerVersionInfo struct {
	MajorVersion, MinorVersion         int
	MajorBuildNumber, MinorBuildNumber int
	Version                            string
}

// Size is the exact length of the answer Append writes, counted without
// building it: the answer's cost is known before it is paid.
func (r *SOAPResponse) Size() int {
	w := xmlWriter{count: true}
	r.write(&w)
	return w.n
}

// Append writes the response envelope to dst, straight into bytes (no
// tree), indented as every other answer is.
func (r *SOAPResponse) Append(dst []byte) []byte {
	w := xmlWriter{b: slices.Grow(dst, r.Size())}
	r.write(&w)
	return w.b
}

func (r *SOAPResponse) write(w *xmlWriter) {
	user := r.Operation == OpGetUserSettings
	kind := "Domain"
	if user {
		kind = "User"
	}
	w.raw(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	w.open("s:Envelope", ` xmlns:s="`+NSSOAP11+`" xmlns:a="`+NSAddressing+`"`)
	w.open("s:Header", "")
	w.leaf("a:Action", ` s:mustUnderstand="1"`, NSAutodiscover+"/Autodiscover/"+r.Operation+"Response")
	if v := r.Server; v != nil {
		w.open("h:ServerVersionInfo", ` xmlns:h="`+NSAutodiscover+`"`)
		w.leaf("h:MajorVersion", "", strconv.Itoa(v.MajorVersion))
		w.leaf("h:MinorVersion", "", strconv.Itoa(v.MinorVersion))
		w.leaf("h:MajorBuildNumber", "", strconv.Itoa(v.MajorBuildNumber))
		w.leaf("h:MinorBuildNumber", "", strconv.Itoa(v.MinorBuildNumber))
		w.leaf("h:Version", "", v.Version)
		w.close("h:ServerVersionInfo")
	}
	w.close("s:Header")
	w.open("s:Body", "")
	w.open(r.Operation+"ResponseMessage", ` xmlns="`+NSAutodiscover+`"`)
	w.open("Response", ` xmlns:i="`+NSSchemaInst+`"`)
	w.leaf("ErrorCode", "", r.ErrorCode)
	w.leaf("ErrorMessage", "", r.ErrorMessage)
	var it SOAPItem
	w.list(kind+"Responses", r.Items, func(i int) {
		it.ErrorCode, it.ErrorMessage = "", ""
		it.SettingErrors, it.Settings = it.SettingErrors[:0], it.Settings[:0]
		r.Item(i, &it)
		w.open(kind+"Response", "")
		w.leaf("ErrorCode", "", it.ErrorCode)
		w.leaf("ErrorMessage", "", it.ErrorMessage)
		if user {
			w.leaf("RedirectTarget", ` i:nil="true"`, "")
		}
		w.list(kind+"SettingErrors", len(it.SettingErrors), func(i int) {
			se := &it.SettingErrors[i]
			w.open(kind+"SettingError", "")
			w.leaf("ErrorCode", "", se.ErrorCode)
			w.leaf("ErrorMessage", "", se.ErrorMessage)
			w.leaf("SettingName", "", se.SettingName)
			w.close(kind + "SettingError")
		})
		w.list(kind+"Settings", len(it.Settings), func(i int) {
			s := &it.Settings[i]
			switch {
			case s.Connections != nil:
				w.open(kind+"Setting", ` i:type="ProtocolConnectionCollectionSetting"`)
				w.leaf("Name", "", s.Name)
				w.list("ProtocolConnections", len(s.Connections), func(i int) {
					c := &s.Connections[i]
					w.open("ProtocolConnection", "")
					w.leaf("Hostname", "", c.Hostname)
					w.leaf("Port", "", strconv.Itoa(c.Port))
					w.leaf("EncryptionMethod", "", c.EncryptionMethod)
					w.close("ProtocolConnection")
				})
			case user:
				w.open(kind+"Setting", ` i:type="StringSetting"`)
				w.leaf("Name", "", s.Name)
				w.leaf("Value", "", s.Value)
			default:
				w.open(kind+"Setting", ` i:type="DomainStringSetting"`)
				w.leaf("Name", "", s.Name)
				w.leaf("Value", "", s.Value)
			}
			w.close(kind + "Setting")
		})
		if !user {
			w.leaf("RedirectTarget", ` i:nil="true"`, "")
		}
		w.close(kind + "Response")
	})
	w.close("Response")
	w.close(r.Operation + "ResponseMessage")
	w.close("s:Body")
	w.close("s:Envelope")
}

// soapEnvelope starts a SOAP 1.1 response with its wsa:Action header and,
// when v is set, the ServerVersionInfo header.
func soapEnvelope(action string, v *ServerVersionInfo) (*etree.Document, *etree.Element) {
	doc := newDocument()
	env := doc.CreateElement("s:Envelope")
	env.CreateAttr("xmlns:s", NSSOAP11)
	env.CreateAttr("xmlns:a", NSAddressing)
	if action != "" {
		h := env.CreateElement("s:Header")
		a := h.CreateElement("a:Action")
		a.CreateAttr("s:mustUnderstand", "1")
		a.SetText(action)
		if v != nil {
			x := h.CreateElement("h:ServerVersionInfo")
			x.CreateAttr("xmlns:h", NSAutodiscover)
			add(x, "h:MajorVersion", strconv.Itoa(v.MajorVersion))
			add(x, "h:MinorVersion", strconv.Itoa(v.MinorVersion))
			add(x, "h:MajorBuildNumber", strconv.Itoa(v.MajorBuildNumber))
			add(x, "h:MinorBuildNumber", strconv.Itoa(v.MinorBuildNumber))
			add(x, "h:Version", v.Version)
		}
	}
	return doc, env.CreateElement("s:Body")
}

// FaultDocument is the SOAP 1.1 fault for err.
func FaultDocument(err *SOAPFaultError) *etree.Document {
	doc, body := soapEnvelope("", nil)
	f := body.CreateElement("s:Fault")
	add(f, "faultcode", err.Code)
	s := add(f, "faultstring", err.Reason)
	s.CreateAttr("xml:lang", "en-US")
	return finish(doc)
}
