package clientcheck

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// SOAPUser is one UserResponse (or DomainResponse) as an EWS client reads it.
type SOAPUser struct {
	ErrorCode     string
	Settings      map[string]string   // string settings
	Connections   map[string][]Server // ProtocolConnectionCollectionSetting, Protocol empty
	SettingErrors map[string]string   // setting name -> ErrorCode
}

// SOAP is a GetUserSettings/GetDomainSettings answer or a fault.
type SOAP struct {
	Action    string // wsa:Action header
	ErrorCode string // Response/ErrorCode
	Users     []SOAPUser
	Fault     string // faultcode, for a fault
}

type soapSetting struct {
	Type        string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
	Name        string `xml:"Name"`
	Value       string `xml:"Value"`
	Connections []struct {
		Hostname, Port, EncryptionMethod string
	} `xml:"ProtocolConnections>ProtocolConnection"`
}

type soapItem struct {
	ErrorCode     string        `xml:"ErrorCode"`
	SettingErrors []soapSetErr  `xml:"UserSettingErrors>UserSettingError"`
	DomainErrors  []soapSetErr  `xml:"DomainSettingErrors>DomainSettingError"`
	Settings      []soapSetting `xml:"UserSettings>UserSetting"`
	DomainSets    []soapSetting `xml:"DomainSettings>DomainSetting"`
}

type soapSetErr struct {
	ErrorCode   string `xml:"ErrorCode"`
	SettingName string `xml:"SettingName"`
}

const (
	nsAD10 = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
)

// settingTypes are the i:type values EWS clients know.
var settingTypes = map[string]bool{"StringSetting": true, "DomainStringSetting": true, "ProtocolConnectionCollectionSetting": true}

// ReadSOAP reads a SOAP Autodiscover answer namespace-aware, as the EWS
// Managed API does: SOAP 1.1 envelope, the Autodiscover 2010 namespace,
// i:type on every setting, ErrorCode on every response. A Fault is read
// only with HTTP 500, an answer only with 200 (its
// InternalProcessHttpErrorResponse). Every answer carries the
// ServerVersionInfo header: ews-javascript-api's ExchangeServerInfo.Parse
// fails without it ("Cannot read properties of undefined (reading
// 'MajorVersion')").
func ReadSOAP(status int, contentType string, body []byte) (*SOAP, error) {
	if !strings.HasPrefix(contentType, "text/xml") {
		return nil, fmt.Errorf("Content-Type %q, want text/xml for SOAP 1.1", contentType)
	}
	if err := startsWithXMLDecl(body); err != nil {
		return nil, err
	}
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Header  struct {
			Action  string         `xml:"http://www.w3.org/2005/08/addressing Action"`
			Version *serverVersion `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ServerVersionInfo"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
		Body struct {
			Fault *struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
			User *struct {
				Response struct {
					ErrorCode string     `xml:"ErrorCode"`
					Items     []soapItem `xml:"UserResponses>UserResponse"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Response"`
			} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover GetUserSettingsResponseMessage"`
			Domain *struct {
				Response struct {
					ErrorCode string     `xml:"ErrorCode"`
					Items     []soapItem `xml:"DomainResponses>DomainResponse"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Response"`
			} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover GetDomainSettingsResponseMessage"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	d := xml.NewDecoder(strings.NewReader(string(body)))
	d.Strict = true
	if err := d.Decode(&env); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	out := &SOAP{Action: strings.TrimSpace(env.Header.Action)}
	b := env.Body
	var code string
	var items []soapItem
	switch {
	case b.Fault != nil:
		if b.Fault.Code == "" || b.Fault.String == "" {
			return nil, errors.New("Fault without faultcode or faultstring")
		}
		if status != 500 {
			return nil, fmt.Errorf("a Fault with HTTP %d: the EWS Managed API parses a Fault only with 500 (WS-I BP 1.1 R1126)", status)
		}
		out.Fault = b.Fault.Code
		return out, nil
	case b.User != nil:
		code, items = b.User.Response.ErrorCode, b.User.Response.Items
	case b.Domain != nil:
		code, items = b.Domain.Response.ErrorCode, b.Domain.Response.Items
	default:
		return nil, errors.New("Body holds no Fault and no Get*SettingsResponseMessage in the Autodiscover 2010 namespace")
	}
	if !strings.HasPrefix(out.Action, nsAD10+"/Autodiscover/Get") || !strings.HasSuffix(out.Action, "Response") {
		return nil, fmt.Errorf("wsa:Action %q is not a Get*SettingsResponse action", out.Action)
	}
	if code == "" {
		return nil, errors.New("Response has no ErrorCode")
	}
	if status != 200 {
		return nil, fmt.Errorf("an answer with HTTP %d, want 200", status)
	}
	if err := checkServerVersion(env.Header.Version); err != nil {
		return nil, err
	}
	out.ErrorCode = code
	for i, it := range items {
		u, err := readSOAPItem(it)
		if err != nil {
			return nil, fmt.Errorf("response %d: %w", i, err)
		}
		out.Users = append(out.Users, u)
	}
	return out, nil
}

// serverVersion is the ServerVersionInfo header as read.
type serverVersion struct {
	MajorVersion, MinorVersion, MajorBuildNumber, MinorBuildNumber, Version *string
}

// checkServerVersion checks the header as the EWS Managed API reads it:
// every number an integer, a Version.
func checkServerVersion(v *serverVersion) error {
	if v == nil {
		return errors.New("no ServerVersionInfo header in the Autodiscover 2010 namespace")
	}
	for name, p := range map[string]*string{"MajorVersion": v.MajorVersion, "MinorVersion": v.MinorVersion,
		"MajorBuildNumber": v.MajorBuildNumber, "MinorBuildNumber": v.MinorBuildNumber} {
		if p == nil {
			return fmt.Errorf("ServerVersionInfo has no %s", name)
		}
		if _, err := strconv.Atoi(*p); err != nil {
			return fmt.Errorf("ServerVersionInfo %s %q is not an integer", name, *p)
		}
	}
	if v.Version == nil || *v.Version == "" {
		return errors.New("ServerVersionInfo has no Version")
	}
	return nil
}

// readSOAPItem reads one UserResponse or DomainResponse.
func readSOAPItem(it soapItem) (SOAPUser, error) {
	if it.ErrorCode == "" {
		return SOAPUser{}, errors.New("no ErrorCode")
	}
	u := SOAPUser{ErrorCode: it.ErrorCode, Settings: map[string]string{}, Connections: map[string][]Server{}, SettingErrors: map[string]string{}}
	for _, se := range append(it.SettingErrors, it.DomainErrors...) {
		u.SettingErrors[se.SettingName] = se.ErrorCode
	}
	for _, s := range append(it.Settings, it.DomainSets...) {
		if !settingTypes[s.Type] {
			return u, fmt.Errorf("setting %s has i:type %q", s.Name, s.Type)
		}
		if s.Type != "ProtocolConnectionCollectionSetting" {
			u.Settings[s.Name] = s.Value
			continue
		}
		for _, c := range s.Connections {
			port, err := strconv.Atoi(c.Port)
			if err != nil || port < 1 || port > 65535 {
				return u, fmt.Errorf("setting %s: port %q", s.Name, c.Port)
			}
			sec := map[string]string{"SSL": "ssl", "TLS": "starttls", "None": "none"}[c.EncryptionMethod]
			if sec == "" {
				return u, fmt.Errorf("setting %s: EncryptionMethod %q", s.Name, c.EncryptionMethod)
			}
			u.Connections[s.Name] = append(u.Connections[s.Name], Server{Host: c.Hostname, Port: port, Security: sec})
		}
	}
	return u, nil
}

// SOAPEndpoints reads the headers of the answer to GET
// /autodiscover/autodiscover.xml as the EWS Managed API family does
// (GetEndpointsFromHttpWebResponse): a header's presence enables an
// endpoint, whatever its value.
func SOAPEndpoints(h http.Header) (soap, wsSecurity, oauth bool) {
	has := func(k string) bool { return len(h.Values(k)) > 0 }
	return has("X-SOAP-Enabled"), has("X-WSSecurity-Enabled") || has("X-WSSecurity-SymmetricKey-Enabled") || has("X-WSSecurity-X509Cert-Enabled"),
		has("X-OAuth-Enabled")
}
