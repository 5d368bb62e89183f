package autodiscover

import (
	"net/http"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// maxSOAPUsers bounds one GetUserSettings request, as Exchange does (100).
const maxSOAPUsers = 100

// soap answers POST /autodiscover/autodiscover.svc ([MS-OXWSADISC]):
// GetUserSettings and GetDomainSettings, for EWS clients
// (EWS Managed API, Outlook for Mac).
//
// Envelope-level problems (not XML, not SOAP 1.1, unknown operation) get a
// SOAP 1.1 Fault with HTTP 400: WS-I Basic Profile 1.1 R1113 asks for 400
// on a malformed request (SOAP 1.1 §6.2 would say 500, which we never send
// for bad input). Per-user and per-setting problems are HTTP 200 answers
// with ErrorCodes, as Exchange gives them.
func (s *Server) soap(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(w)
	rec.dialect = DialectSOAP
	body, err := readBody(w, r, maxPOXBody)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		writeSOAPFault(w, &xmlschema.SOAPFaultError{Code: "s:Client", Reason: "the request body is too large or unreadable"})
		return
	}
	req, err := xmlschema.ParseSOAPRequest(body)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		writeSOAPFault(w, err.(*xmlschema.SOAPFaultError))
		return
	}
	st := s.site.Load()
	var resp *xmlschema.SOAPResponse
	if req.Operation == xmlschema.OpGetUserSettings {
		resp = st.userSettings(req, rec)
	} else {
		resp = st.domainSettings(req, rec)
	}
	rec.outcome = OutcomeSettings
	if resp.ErrorCode != xmlschema.SOAPNoError {
		rec.outcome = OutcomeBadRequest
	} else if len(resp.Items) > 0 && resp.Items[0].ErrorCode != xmlschema.SOAPNoError {
		rec.outcome = OutcomeUnknownDomain
	}
	b, _ := resp.Document().WriteToBytes() // an in-memory tree: cannot fail
	writeXML(w, b)
}

func writeSOAPFault(w http.ResponseWriter, f *xmlschema.SOAPFaultError) {
	b, _ := xmlschema.FaultDocument(f).WriteToBytes()
	h := w.Header()
	h.Set("Content-Type", contentTypeXML)
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(b)
}

func soapError(op, code, msg string) *xmlschema.SOAPResponse {
	return &xmlschema.SOAPResponse{Operation: op, ErrorCode: code, ErrorMessage: msg}
}

// invalidSOAPRequest is the InvalidRequest answer for a request that names
// no items (users or domains), too many, or no setting; nil when it is fine.
func invalidSOAPRequest(op string, items int, what string, settings []string) *xmlschema.SOAPResponse {
	switch {
	case items == 0:
		return soapError(op, xmlschema.SOAPInvalidRequest, "The request names no "+what+".")
	case items > maxSOAPUsers:
		return soapError(op, xmlschema.SOAPInvalidRequest, "The request names more than 100 "+what+"s.")
	case len(settings) == 0:
		return soapError(op, xmlschema.SOAPInvalidRequest, "The request names no setting.")
	}
	return nil
}

func (st *site) userSettings(req *xmlschema.SOAPRequest, rec *record) *xmlschema.SOAPResponse {
	op := xmlschema.OpGetUserSettings
	if bad := invalidSOAPRequest(op, len(req.Mailboxes), "user", req.RequestedSettings); bad != nil {
		return bad
	}
	resp := &xmlschema.SOAPResponse{Operation: op, ErrorCode: xmlschema.SOAPNoError}
	for _, mbx := range req.Mailboxes {
		addr, err := config.ParseAddress(mbx)
		var a *answers
		if err == nil {
			a = st.lookup(addr.Domain)
			if rec.address == "" {
				rec.address, rec.asked = addr.String(), addr.Domain
			}
		}
		if a == nil {
			// The same answer for a bad address and an unknown domain: it
			// tells nothing about which mailboxes exist.
			resp.Items = append(resp.Items, xmlschema.SOAPItem{ErrorCode: xmlschema.SOAPInvalidUser, ErrorMessage: "Invalid user."})
			continue
		}
		if rec.domain == "" {
			rec.domain = a.domain.Name
		}
		resp.Items = append(resp.Items, settingsItem(req.RequestedSettings, func(name string) (xmlschema.Setting, bool) {
			return userSetting(name, a.domain, addr)
		}))
	}
	return resp
}

func (st *site) domainSettings(req *xmlschema.SOAPRequest, rec *record) *xmlschema.SOAPResponse {
	op := xmlschema.OpGetDomainSettings
	if bad := invalidSOAPRequest(op, len(req.Domains), "domain", req.RequestedSettings); bad != nil {
		return bad
	}
	resp := &xmlschema.SOAPResponse{Operation: op, ErrorCode: xmlschema.SOAPNoError}
	for _, name := range req.Domains {
		a := st.lookup(name)
		if rec.asked == "" {
			rec.asked = name
		}
		if a == nil {
			resp.Items = append(resp.Items, xmlschema.SOAPItem{ErrorCode: xmlschema.SOAPInvalidDomain, ErrorMessage: "Invalid domain."})
			continue
		}
		if rec.domain == "" {
			rec.domain = a.domain.Name
		}
		resp.Items = append(resp.Items, settingsItem(req.RequestedSettings, func(name string) (xmlschema.Setting, bool) {
			return xmlschema.Setting{Name: name, Value: a.domain.EWSURL}, name == "ExternalEwsUrl" && a.domain.EWSURL != ""
		}))
	}
	return resp
}

// settingsItem is one user's or domain's answer: each requested setting's
// value, or its error.
func settingsItem(names []string, value func(name string) (xmlschema.Setting, bool)) xmlschema.SOAPItem {
	item := xmlschema.SOAPItem{ErrorCode: xmlschema.SOAPNoError, ErrorMessage: "No error."}
	for _, name := range names {
		if v, ok := value(name); ok {
			item.Settings = append(item.Settings, v)
		} else {
			item.SettingErrors = append(item.SettingErrors, settingError(name))
		}
	}
	return item
}

// unavailableSettings are setting names of [MS-OXWSADISC] that describe an
// Exchange organisation's internals; the proxy has no true value for them
// and says so (SettingIsNotAvailable) rather than invent one.
var unavailableSettings = map[string]bool{
	"UserDN": true, "UserDeploymentId": true, "CasVersion": true, "EwsSupportedSchemas": true,
	"ExternalEwsVersion": true, "InternalMailboxServer": true, "InternalMailboxServerDN": true,
	"ExternalMailboxServer": true, "MailboxDN": true, "ActiveDirectoryServer": true,
	"InternalRpcClientServer": true, "ExternalMailboxServerRequiresSSL": true,
	"InternalWebClientUrls": true, "ExternalWebClientUrls": true, "InternalOABUrl": true,
	"ExternalOABUrl": true, "InternalUMUrl": true, "ExternalUMUrl": true, "InternalEcpUrl": true,
	"ExternalEcpUrl": true, "MobileMailboxPolicy": true, "GroupingInformation": true,
	"MapiHttpEnabled": true, "InternalMailboxServerAuthenticationMethods": true,
	"ExternalMailboxServerAuthenticationMethods": true, "PublicFolderServer": true,
	"ExternalEwsUrlForOffice": true,
}

func settingError(name string) xmlschema.SettingError {
	if unavailableSettings[name] || userSettingNames[name] {
		return xmlschema.SettingError{ErrorCode: xmlschema.SOAPSettingIsNotAvailable, ErrorMessage: "This setting is not available.", SettingName: name}
	}
	return xmlschema.SettingError{ErrorCode: xmlschema.SOAPInvalidSetting, ErrorMessage: "The setting name is not valid.", SettingName: name}
}

// userSettingNames are the settings userSetting can answer.
var userSettingNames = map[string]bool{
	"UserDisplayName": true, "AutoDiscoverSMTPAddress": true, "UserMSOnline": true,
	"ExternalEwsUrl": true, "InternalEwsUrl": true,
	"ExternalImap4Connections": true, "InternalImap4Connections": true,
	"ExternalPop3Connections": true, "InternalPop3Connections": true,
	"ExternalSmtpConnections": true, "InternalSmtpConnections": true,
}

// userSetting is one requested setting for a user, if the domain has it.
// Internal and External are the same: the service has one namespace.
func userSetting(name string, d *config.Domain, addr config.Address) (xmlschema.Setting, bool) {
	str := func(v string) (xmlschema.Setting, bool) { return xmlschema.Setting{Name: name, Value: v}, v != "" }
	conns := func(srv *config.Server) (xmlschema.Setting, bool) {
		if srv == nil {
			return xmlschema.Setting{}, false
		}
		return xmlschema.Setting{Name: name, Connections: []xmlschema.ProtocolConnection{{Hostname: srv.Host, Port: srv.Port, EncryptionMethod: wordsFor[srv.Security].soapEncryption}}}, true
	}
	switch name {
	case "UserDisplayName", "AutoDiscoverSMTPAddress":
		return str(addr.String())
	case "UserMSOnline":
		if d.Provider.Name == config.ProviderMicrosoft365 {
			return str("True")
		}
		return str("False")
	case "ExternalEwsUrl", "InternalEwsUrl":
		return str(d.EWSURL)
	case "ExternalImap4Connections", "InternalImap4Connections":
		return conns(d.IMAP)
	case "ExternalPop3Connections", "InternalPop3Connections":
		return conns(d.POP3)
	case "ExternalSmtpConnections", "InternalSmtpConnections":
		return conns(d.SMTP)
	}
	return xmlschema.Setting{}, false
}
