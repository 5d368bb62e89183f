package autodiscover

import (
	"net/http"
	"strconv"

	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// The cost model of a SOAP answer, decided before it is built. An answer
// has one item per user or domain asked for (at most maxSOAPUsers, as
// Exchange allows), and each item one entry per distinct setting name:
// repeats are answered once, the names Exchange defines (about a hundred)
// at most once each, and at most maxUnknownSettings others of at most
// maxSettingName bytes (the longest defined name is 35). The largest
// answer this allows is far below maxSOAPAnswer (TestSOAPWorstAnswer
// builds it); past the caps, or past maxSOAPAnswer, the request gets
// InvalidRequest, as Exchange answers a request it will not serve
// ([MS-OXWSADISC] ErrorCode). The request itself is at most maxPOXBody.
const (
	maxSOAPUsers       = 100
	maxUnknownSettings = 16
	maxSettingName     = 64
	maxSOAPAnswer      = 4 << 20
)

// soap answers POST /autodiscover/autodiscover.svc ([MS-OXWSADISC]):
// GetUserSettings and GetDomainSettings, for EWS clients
// (EWS Managed API, Outlook for Mac).
//
// A request that is XML but not one we answer (not SOAP 1.1, an unknown
// operation) gets a SOAP 1.1 Fault with HTTP 500: WS-I Basic Profile 1.1
// R1126 puts every Fault on 500, and the EWS Managed API parses a Fault
// only there. A body that is not XML at all, or too large, is no SOAP
// message: a plain 400. Per-user and per-setting problems are HTTP 200
// answers with ErrorCodes, as Exchange gives them.
func (s *Server) soap(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect = DialectSOAP
	release, ok := s.reserve(w, r, parseCost(r, maxPOXBody))
	if !ok {
		return
	}
	defer release()
	body, err := readBody(w, r, maxPOXBody)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		http.Error(w, "The request body is too large or unreadable.", http.StatusBadRequest)
		return
	}
	req, err := xmlschema.ParseSOAPRequest(body)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		if f := err.(*xmlschema.SOAPFaultError); f.NotXML {
			http.Error(w, "The request is not XML, so not a SOAP 1.1 message.", http.StatusBadRequest)
		} else {
			writeSOAPFault(w, f)
		}
		return
	}
	st := s.site.Load()
	var resp *xmlschema.SOAPResponse
	names, bad := requestedSettings(req)
	switch {
	case bad != nil:
		resp = bad
	case req.Operation == xmlschema.OpGetUserSettings:
		resp = st.userSettings(req.Mailboxes, names, rec, s.Now())
	default:
		resp = st.domainSettings(req.Domains, names, rec, s.Now())
	}
	if resp.ErrorCode == xmlschema.SOAPNoError && resp.Size() > maxSOAPAnswer {
		resp = soapError(resp.Operation, xmlschema.SOAPInvalidRequest, "The answer to this request would be too large: ask for fewer users or settings.")
	}
	resp.Server = &serverVersion
	switch {
	case resp.ErrorCode != xmlschema.SOAPNoError:
		rec.outcome = OutcomeBadRequest
	case rec.domain != "":
		rec.outcome = OutcomeSettings
	case resp.Operation == xmlschema.OpGetDomainSettings:
		rec.outcome = OutcomeUnknownDomain
	} // else resolve said why for the first user
	size := resp.Size()
	releaseAnswer, ok := s.reserve(w, r, size)
	if !ok {
		return
	}
	defer releaseAnswer()
	writeXML(w, resp.Append(make([]byte, 0, size)))
}

// The EWS level advertised, the same for every domain that offers EWS:
// what Exchange Online answered for years, which Exchange Server 2016,
// 2019 and Subscription Edition all speak. ServerVersionInfo describes
// this Autodiscover service, at the same level.
var (
	serverVersion = xmlschema.ServerVersionInfo{MajorVersion: 15, Version: "Exchange2015"}
	// EwsSupportedSchemas: a comma-separated list of EWS schema versions
	// ([MS-OXWSADISC] UserSettingName; exchangelib picks its version here).
	ewsSupportedSchemas = "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2015"
	externalEwsVersion  = "15.00.0000.000"
)

func writeSOAPFault(w http.ResponseWriter, f *xmlschema.SOAPFaultError) {
	b, _ := xmlschema.FaultDocument(f).WriteToBytes()
	h := w.Header()
	h.Set("Content-Type", contentTypeXML)
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(b)
}

func soapError(op, code, msg string) *xmlschema.SOAPResponse {
	return &xmlschema.SOAPResponse{Operation: op, ErrorCode: code, ErrorMessage: msg}
}
