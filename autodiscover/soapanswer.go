package autodiscover

import (
	"strconv"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// The SOAP answers' generator: pure functions from a parsed request and
// the domains' answers to the response (soap.go does the HTTP).

// requestedSettings is the request's setting names, each once, in the
// order first asked; or the InvalidRequest answer when it names none, too
// many that nobody defines, or one longer than any name can be.
func requestedSettings(req *xmlschema.SOAPRequest) ([]string, *xmlschema.SOAPResponse) {
	invalid := func(msg string) ([]string, *xmlschema.SOAPResponse) {
		return nil, soapError(req.Operation, xmlschema.SOAPInvalidRequest, msg)
	}
	if len(req.RequestedSettings) == 0 {
		return invalid("The request names no setting.")
	}
	seen := make(map[string]bool, min(len(req.RequestedSettings), len(definedSettings)+maxUnknownSettings))
	names, unknown := make([]string, 0, len(seen)), 0
	for _, n := range req.RequestedSettings {
		if seen[n] {
			continue
		}
		if !definedSettings[n] {
			if unknown++; unknown > maxUnknownSettings {
				return invalid("The request names more than " + strconv.Itoa(maxUnknownSettings) + " settings that are not defined.")
			}
			if len(n) > maxSettingName {
				return invalid("The request names a setting longer than " + strconv.Itoa(maxSettingName) + " bytes, which no setting is.")
			}
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, nil
}

// invalidItems is the InvalidRequest answer for a request that names no
// items (users or domains) or too many; nil when it is fine.
func invalidItems(op string, items int, what string) *xmlschema.SOAPResponse {
	switch {
	case items == 0:
		return soapError(op, xmlschema.SOAPInvalidRequest, "The request names no "+what+".")
	case items > maxSOAPUsers:
		return soapError(op, xmlschema.SOAPInvalidRequest, "The request names more than 100 "+what+"s.")
	}
	return nil
}

// userSettings answers GetUserSettings. Each user's item is made while
// the answer is written (twice: measured, then built); only the parsed
// addresses are kept here.
func (st *site) userSettings(mailboxes, names []string, rec *report, now time.Time) *xmlschema.SOAPResponse {
	op := xmlschema.OpGetUserSettings
	if bad := invalidItems(op, len(mailboxes), "user"); bad != nil {
		return bad
	}
	type user struct {
		addr config.Address
		a    *answers // nil: a bad address or an unknown domain
	}
	users := make([]user, len(mailboxes))
	for i, mbx := range mailboxes {
		about := rec // the report tells of the first user
		if i > 0 {
			about = &report{}
		}
		users[i].addr, users[i].a, _ = st.resolve(mbx, about)
	}
	return &xmlschema.SOAPResponse{Operation: op, ErrorCode: xmlschema.SOAPNoError, Items: len(users), Item: func(i int, it *xmlschema.SOAPItem) {
		u := users[i]
		if u.a == nil {
			// The same answer for a bad address and an unknown domain: it
			// tells nothing about which mailboxes exist.
			it.ErrorCode, it.ErrorMessage = xmlschema.SOAPInvalidUser, "Invalid user."
			return
		}
		settingsItem(it, names, func(name string) (xmlschema.Setting, bool) {
			return userSetting(name, u.a.domain, u.addr, u.a.domain.EWSAt(now))
		})
	}}
}

// domainSettings answers GetDomainSettings, likewise item by item.
func (st *site) domainSettings(domains, names []string, rec *report, now time.Time) *xmlschema.SOAPResponse {
	op := xmlschema.OpGetDomainSettings
	if bad := invalidItems(op, len(domains), "domain"); bad != nil {
		return bad
	}
	found := make([]*answers, len(domains))
	for i, name := range domains {
		found[i] = st.lookup(name)
		if rec.asked == "" {
			rec.asked = name
		}
		if a := found[i]; a != nil && rec.domain == "" {
			rec.domain = a.domain.Name
		}
	}
	return &xmlschema.SOAPResponse{Operation: op, ErrorCode: xmlschema.SOAPNoError, Items: len(found), Item: func(i int, it *xmlschema.SOAPItem) {
		a := found[i]
		if a == nil {
			it.ErrorCode, it.ErrorMessage = xmlschema.SOAPInvalidDomain, "Invalid domain."
			return
		}
		settingsItem(it, names, func(name string) (xmlschema.Setting, bool) {
			return domainSetting(name, a.domain.EWSAt(now))
		})
	}}
}

// settingsItem fills one user's or domain's answer: each requested
// setting's value, or its error.
func settingsItem(it *xmlschema.SOAPItem, names []string, value func(name string) (xmlschema.Setting, bool)) {
	it.ErrorCode, it.ErrorMessage = xmlschema.SOAPNoError, "No error."
	for _, name := range names {
		if v, ok := value(name); ok {
			it.Settings = append(it.Settings, v)
		} else {
			it.SettingErrors = append(it.SettingErrors, settingError(name))
		}
	}
}

// definedSettings are the setting names Exchange defines
// (xmlschema.SettingNames). A defined name the proxy has no true value for
// is SettingIsNotAvailable, not InvalidSetting: the proxy invents nothing
// (no UserDN, no mailbox server); InvalidSetting is for names nobody
// defines.
var definedSettings = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range xmlschema.SettingNames {
		m[n] = true
	}
	return m
}()

func settingError(name string) xmlschema.SettingError {
	if definedSettings[name] {
		return xmlschema.SettingError{ErrorCode: xmlschema.SOAPSettingIsNotAvailable, ErrorMessage: "This setting is not available.", SettingName: name}
	}
	return xmlschema.SettingError{ErrorCode: xmlschema.SOAPInvalidSetting, ErrorMessage: "The setting name is not valid.", SettingName: name}
}

// domainSetting is one requested domain setting, if the domain has it
// (DomainSettingName: ExternalEwsUrl, ExternalEwsVersion); ews is the EWS
// URL offered now, or "".
func domainSetting(name string, ews string) (xmlschema.Setting, bool) {
	switch name {
	case "ExternalEwsUrl":
		return xmlschema.Setting{Name: name, Value: ews}, ews != ""
	case "ExternalEwsVersion":
		return xmlschema.Setting{Name: name, Value: externalEwsVersion}, ews != ""
	}
	return xmlschema.Setting{}, false
}

// userSetting is one requested setting for a user, if the domain has it.
// Internal and External are the same: the service has one namespace.
// ews is the EWS URL offered now, or "": where EWS is off, every EWS
// setting is SettingIsNotAvailable.
func userSetting(name string, d *config.Domain, addr config.Address, ews string) (xmlschema.Setting, bool) {
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
		if d.Provider.MSOnline {
			return str("True")
		}
		return str("False")
	case "ExternalEwsUrl", "InternalEwsUrl":
		return str(ews)
	case "ExternalOABUrl", "InternalOABUrl":
		return str(d.OABURL)
	case "EwsSupportedSchemas", "ExternalEwsVersion":
		if ews == "" {
			return xmlschema.Setting{}, false
		}
		if name == "ExternalEwsVersion" {
			return str(externalEwsVersion)
		}
		return str(ewsSupportedSchemas)
	case "ExternalImap4Connections", "InternalImap4Connections":
		return conns(d.IMAP)
	case "ExternalPop3Connections", "InternalPop3Connections":
		return conns(d.POP3)
	case "ExternalSmtpConnections", "InternalSmtpConnections":
		return conns(d.SMTP)
	}
	return xmlschema.Setting{}, false
}
