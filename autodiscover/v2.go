package autodiscover

import (
	"net/http"
	"strings"
)

// Autodiscover v2 protocols answered, lower case (matched case-insensitively:
// Outlook 2019 sends "Autodiscoverv1").
const (
	protoActiveSync     = "activesync"
	protoEws            = "ews"
	protoAutodiscoverV1 = "autodiscoverv1"
)

// v2Names are the canonical spellings, for answers and error messages.
var v2Names = [...]struct{ key, name string }{
	{protoActiveSync, "ActiveSync"},
	{protoEws, "Ews"},
	{protoAutodiscoverV1, "AutodiscoverV1"},
}

// v2Protocol finds a protocol by a case-insensitive match (Unicode case
// folding, as strings.ToLower would give).
func v2Protocol(proto string) (key, name string, ok bool) {
	for _, p := range v2Names {
		if strings.EqualFold(proto, p.key) {
			return p.key, p.name, true
		}
	}
	return "", "", false
}

const v2Supported = "ActiveSync, AutodiscoverV1, Ews"

// v2PathPrefix is the path form /autodiscover/autodiscover.json/v1.0/<addr>.
const v2PathPrefix = "/autodiscover/autodiscover.json/v1.0/"

type v2Answer struct {
	Protocol string
	URL      string `json:"Url"`
}

type v2Error struct {
	ErrorCode    string
	ErrorMessage string
}

// v2 answers Autodiscover v2 (as Exchange Online answers it): GET
// /autodiscover/autodiscover.json?Email=&Protocol= and
// /autodiscover/autodiscover.json/v1.0/<addr>?Protocol=. Anonymous. The URL
// answered always comes from the config, never from the query: scanners
// send ProxyShell-style "autodiscover.json?@..." probes.
//
// Cost: no body; the answer one JSON object naming one configured URL or
// error (under 1 KiB), whatever the query.
func (s *Server) v2(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect = DialectJSON
	email := queryParam(r.URL.RawQuery, "Email")
	if len(r.URL.Path) > len(v2PathPrefix) {
		email = r.URL.Path[len(v2PathPrefix):]
	}
	proto := queryParam(r.URL.RawQuery, "Protocol")
	if proto == "" || email == "" {
		rec.outcome = OutcomeBadRequest
		s.sendJSON(w, r, http.StatusBadRequest, v2Error{"MandatoryParameterMissing",
			"A valid value must be provided for the query parameters 'Email' and 'Protocol'."})
		return
	}
	key, name, known := v2Protocol(proto)
	if !known {
		rec.outcome = OutcomeUnsupportedProtocol
		s.sendJSON(w, r, http.StatusBadRequest, v2Error{"InvalidProtocol",
			"The given protocol value is invalid. Supported values are '" + v2Supported + "'."})
		return
	}
	_, a, err := s.site.Load().resolve(email, rec)
	switch err {
	case errBadAddress:
		s.sendJSON(w, r, http.StatusBadRequest, v2Error{"InvalidEmailAddress", "The given e-mail address is not valid."})
		return
	case errUnknownDomain:
		s.sendJSON(w, r, http.StatusNotFound, v2Error{"InvalidUser", "No configuration is served for this address."})
		return
	}
	u, ok := s.v2URL(a, key)
	if !ok {
		rec.outcome = OutcomeUnsupportedProtocol
		s.sendJSON(w, r, http.StatusBadRequest, v2Error{"ProtocolNotSupported",
			"The protocol " + name + " is not offered for this domain."})
		return
	}
	// Exchange Online echoes the request's spelling of Protocol; we do the
	// same when it is plain ASCII (EqualFold-style matches such as the
	// Kelvin sign are answered in the canonical spelling).
	if isASCII(proto) {
		name = proto
	}
	rec.outcome = OutcomeSettings
	s.sendJSON(w, r, http.StatusOK, v2Answer{Protocol: name, URL: u})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// v2URL is the Autodiscover v2 answer for a lower-case protocol; for
// AutodiscoverV1, our own POX URL on the public HTTPS port.
func (s *Server) v2URL(a *answers, proto string) (string, bool) {
	var u string
	switch proto {
	case protoActiveSync:
		u = a.domain.ActiveSyncURL
	case protoEws:
		u = a.domain.EWSAt(s.Now())
	case protoAutodiscoverV1:
		u = s.httpsURL("autodiscover."+a.domain.Name, "/autodiscover/autodiscover.xml")
	}
	return u, u != ""
}
