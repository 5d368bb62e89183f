package autodiscover

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// maxPOXBody caps a POX request body; real requests are under 1 KiB.
const maxPOXBody = 64 << 10

// errorMessages are the error texts, after MS-OXDSCLI 2.2.4.1.1.3.2.
var errorMessages = map[int]string{
	xmlschema.ErrorAddressNotFound:   "The email address cannot be found.",
	xmlschema.ErrorInvalidRequest:    "Invalid Request",
	xmlschema.ErrorSchemaUnavailable: "The requested schema is not available.",
}

// errorKey is an error document's Response namespace ("" for the
// schema-independent one) and code.
type errorKey struct {
	schema string
	code   int
}

// errorTemplates: slot 0 is the Time attribute, slot 1 the Id.
var errorTemplates = func() map[errorKey]*xmlschema.Template {
	m := map[errorKey]*xmlschema.Template{}
	for _, schema := range []string{"", xmlschema.NSMobileSyncResponse} {
		for code, msg := range errorMessages {
			e := &xmlschema.ErrorResponse{Time: xmlschema.Slot(0), ID: xmlschema.Slot(1), Code: code, Message: msg, Schema: schema}
			t, err := xmlschema.NewTemplate(e.Document())
			if err != nil {
				panic(err)
			}
			m[errorKey{schema, code}] = t
		}
	}
	return m
}()

// pox answers POST /autodiscover/autodiscover.xml (MS-OXDSCLI 3.2.5; MS-ASCMD
// 2.2.1.1 for the mobilesync schema). Every answer, errors included, is
// HTTP 200 with an XML document. We never prompt for or check
// credentials; Authorization is read only to relay it to a domain's
// upstream under relay_auth (askUpstream).
//
// Cost: a body of at most maxPOXBody, whose parse (parseCost) is taken
// from the answer budget before it is read; the answer a compiled
// template with the address filled in (a few KiB) or an upstream answer
// of at most maxUpstreamBody, taken from the budget as it is written.
func (s *Server) pox(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect = DialectPOX
	release, ok := s.reserve(w, r, parseCost(r, maxPOXBody))
	if !ok {
		return
	}
	defer release()
	body, err := readBody(w, r, maxPOXBody)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		s.poxError(w, r, "", xmlschema.ErrorInvalidRequest)
		return
	}
	req, err := xmlschema.ParseRequest(body)
	if err != nil {
		rec.outcome = OutcomeBadRequest
		s.poxError(w, r, "", xmlschema.ErrorInvalidRequest)
		return
	}
	// errSchema is the namespace of this request's error documents.
	schema, errSchema := req.Schema(), ""
	if schema == xmlschema.NSMobileSyncResponse {
		rec.dialect, errSchema = DialectMobileSync, schema
	} else if schema != xmlschema.NSOutlookResponse {
		rec.outcome = OutcomeUnsupportedSchema
		s.poxError(w, r, "", xmlschema.ErrorSchemaUnavailable)
		return
	}
	if req.EMailAddress == "" {
		// A LegacyDN names an Exchange directory object; only Exchange can
		// resolve it (MS-OXDSCLI 3.2.5.1), so it is an address we cannot find.
		code := xmlschema.ErrorInvalidRequest
		if req.LegacyDN != "" {
			code = xmlschema.ErrorAddressNotFound
		}
		rec.outcome = OutcomeNoAddress
		s.poxError(w, r, errSchema, code)
		return
	}
	addr, a, err := s.site.Load().resolve(req.EMailAddress, rec)
	switch err {
	case errBadAddress:
		s.poxError(w, r, errSchema, xmlschema.ErrorInvalidRequest)
		return
	case errUnknownDomain:
		s.poxError(w, r, errSchema, xmlschema.ErrorAddressNotFound)
		return
	}
	if a.domain.Upstream != nil && s.answerUpstream(w, r, a, req, addr) {
		return
	}
	s.localPOX(w, r, a, addr, errSchema)
}

// answerUpstream answers with the domain's upstream's corrected answer (or
// its 401, under relay_auth) and reports true; on any upstream failure it
// writes nothing, records why and reports false: the local answer follows.
func (s *Server) answerUpstream(w http.ResponseWriter, r *http.Request, a *answers, req xmlschema.Request, addr config.Address) bool {
	rec := reportOf(r)
	ans, res, cause := s.askUpstream(r, a, req, addr)
	rec.upstream = res
	s.Metrics.observeUpstream(a.domain.Name, res)
	if cause != nil {
		rec.upstreamErr = cause.Error()
		return false
	}
	rec.outcome = OutcomeUpstream
	if ans.status == http.StatusUnauthorized {
		for _, v := range ans.wwwAuth {
			w.Header().Add("WWW-Authenticate", v)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	s.sendXML(w, r, ans.body)
	return true
}

// localPOX is the domain's own answer for addr: mobilesync, Outlook's
// redirect to its provider, or the settings, from the compiled templates.
func (s *Server) localPOX(w http.ResponseWriter, r *http.Request, a *answers, addr config.Address, errSchema string) {
	rec := reportOf(r)
	email := addr.String()
	switch {
	case rec.dialect == DialectMobileSync && a.mobilesync == nil:
		rec.outcome = OutcomeUnsupportedSchema
		s.poxError(w, r, errSchema, xmlschema.ErrorSchemaUnavailable)
	case rec.dialect == DialectMobileSync:
		rec.outcome = OutcomeSettings
		s.sendXML(w, r, a.mobilesync.Append(nil, []string{email, email, ""}, a.values))
	case a.outlookRedirect != nil && wantsExchange(r):
		// Shared and static: written as it is.
		rec.outcome = OutcomeRedirect
		s.sendXML(w, r, a.outlookRedirect)
	default:
		rec.outcome = OutcomeSettings
		login := email // the default login form is the address itself
		if a.domain.LoginName != config.LoginEmailAddress {
			login = a.domain.LoginFor(addr)
		}
		t := a.at(s.Now()).outlook
		if wantsExchange(r) {
			t = a.outlookDesktop
		}
		s.sendXML(w, r, t.Append(nil, []string{email, email, login}, a.values))
	}
}

// askUpstream asks the domain's upstream. Without relay_auth no
// credentials go upstream, so the answer is the same whoever asks and
// tells no right password from a wrong one. With relay_auth, a client's
// Authorization is relayed within the relay limits; past them the local
// answer is served.
func (s *Server) askUpstream(r *http.Request, a *answers, req xmlschema.Request, addr config.Address) (upstreamAnswer, upstreamResult, error) {
	auth := ""
	if a.domain.Upstream.RelayAuth {
		auth = r.Header.Get("Authorization")
	}
	if auth != "" {
		cfg := s.site.Load().cfg
		client, now := clientKey(r, cfg), s.Now()
		if !s.relayLimits.allow(client, strings.ToLower(addr.String()), cfg.Limits, now) {
			if s.relayLimits.warnNow(client, now) {
				s.Log.Warn("relayed sign-ins over the limit: the local answer is served to this client (logged once a minute)",
					"client", client, "domain", a.domain.Name, "relay_per_client_per_hour", cfg.Limits.RelayPerClientPerHour,
					"relay_per_account_per_hour", cfg.Limits.RelayPerAccountPerHour, "relay_per_minute", cfg.Limits.RelayPerMinute)
			}
			return upstreamAnswer{}, upRateLimited, errors.New("relay limit reached")
		}
	}
	req.EMailAddress = addr.String()
	return s.upstreamPOX(r.Context(), a, req, auth)
}

// wantsExchange reports Outlook desktop asking for Exchange settings: it
// sends these headers when it wants Exchange, other POX clients do not
// ([MS-OXDSCLI] 2.2.2.1 and 3.1.4, X-MapiHttpCapability; Microsoft's "POX
// Autodiscover request", X-ClientCanHandle).
func wantsExchange(r *http.Request) bool {
	return r.Header.Get("X-MapiHttpCapability") != "" || r.Header.Get("X-ClientCanHandle") != ""
}

// poxGet answers GET on autodiscover.xml over HTTPS. Some mobile clients
// send GET; it carries no address, so it is an invalid request (600).
//
// The EWS Managed API family (.NET, Java, JavaScript) sends this GET to
// learn which SOAP endpoints a host has, from headers Exchange sets
// (AutodiscoverService.GetEndpointsFromHttpWebResponse). They read a
// header's presence, not its value: X-WSSecurity-Enabled: False would
// still send them to /autodiscover/autodiscover.svc/wssecurity. So only
// the plain SOAP endpoint is named, the one served here.
func (s *Server) poxGet(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect, rec.outcome = DialectPOX, OutcomeGet
	w.Header().Set("X-SOAP-Enabled", "True")
	s.poxError(w, r, "", xmlschema.ErrorInvalidRequest)
}

// poxError writes an error document as HTTP 200, as the spec requires,
// with its Response in schema's namespace ("" for the schema-independent
// one).
func (s *Server) poxError(w http.ResponseWriter, r *http.Request, schema string, code int) {
	now := s.Now().UTC()
	var id [20]byte
	// Id is "a hash of the name of the computer" in Exchange; ours only has
	// to be an unsigned integer that differs between answers.
	idText := strconv.AppendUint(id[:0], uint64(uint32(now.UnixNano()/100)), 10)
	s.sendXML(w, r, errorTemplates[errorKey{schema, code}].Append(nil, []string{now.Format("15:04:05.0000000"), string(idText)}, nil))
}
