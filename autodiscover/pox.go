package autodiscover

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// maxPOXBody caps a POX request body; real requests are under 1 KiB.
const maxPOXBody = 64 << 10

// contentTypeXML is what every XML answer carries: DavMail accepts the POX
// answer only with exactly this value (CLIENTS.md).
const contentTypeXML = "text/xml; charset=utf-8"

// errorMessages are the error texts, after MS-OXDSCLI 2.2.4.1.1.3.2.
var errorMessages = map[int]string{
	xmlschema.ErrorAddressNotFound:   "The email address cannot be found.",
	xmlschema.ErrorInvalidRequest:    "Invalid Request",
	xmlschema.ErrorSchemaUnavailable: "The requested schema is not available.",
}

// errorTemplates: slot 0 is the Time attribute, slot 1 the Id.
var errorTemplates = func() map[int]*xmlschema.Template {
	m := map[int]*xmlschema.Template{}
	for code, msg := range errorMessages {
		e := &xmlschema.ErrorResponse{Time: xmlschema.Slot(0), ID: xmlschema.Slot(1), Code: code, Message: msg}
		t, err := xmlschema.NewTemplate(e.Document())
		if err != nil {
			panic(err)
		}
		m[code] = t
	}
	return m
}()

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// pox answers POST /autodiscover/autodiscover.xml (MS-OXDSCLI 3.2.5; MS-ASCMD
// 2.2.1.1 for the mobilesync schema). Every answer, errors included, is
// HTTP 200 with an XML document. Authorization is never read: we never
// prompt for or check credentials.
func (s *Server) pox(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(w)
	rec.dialect = "pox"
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	body, err := readBody(r, (*bp)[:0], maxPOXBody)
	*bp = body // keep the grown buffer for the pool
	if err != nil {
		rec.outcome = "bad_request"
		s.poxError(w, xmlschema.ErrorInvalidRequest)
		return
	}
	req, err := xmlschema.ParseRequest(body)
	if err != nil {
		rec.outcome = "bad_request"
		s.poxError(w, xmlschema.ErrorInvalidRequest)
		return
	}
	schema := req.Schema()
	if schema == xmlschema.NSMobileSyncResponse {
		rec.dialect = "mobilesync"
	} else if schema != xmlschema.NSOutlookResponse {
		rec.outcome = "unsupported_schema"
		s.poxError(w, xmlschema.ErrorSchemaUnavailable)
		return
	}
	if req.EMailAddress == "" {
		// A LegacyDN names an Exchange directory object; only Exchange can
		// resolve it (MS-OXDSCLI 3.2.5.1), so it is an address we cannot find.
		code := xmlschema.ErrorInvalidRequest
		if req.LegacyDN != "" {
			code = xmlschema.ErrorAddressNotFound
		}
		rec.outcome = "no_address"
		s.poxError(w, code)
		return
	}
	addr, err := config.ParseAddress(req.EMailAddress)
	if err != nil {
		rec.outcome = "bad_address"
		s.poxError(w, xmlschema.ErrorInvalidRequest)
		return
	}
	rec.address = addr.String()
	a := s.site.Load().lookup(addr.Domain)
	if a == nil {
		rec.outcome = "unknown_domain"
		s.poxError(w, xmlschema.ErrorAddressNotFound)
		return
	}
	rec.domain = a.domain.Name
	email := rec.address
	if a.domain.Upstream != nil {
		ans, res, ok := s.upstreamPOX(r.Context(), a, req, body, r.Header.Get("Authorization"))
		rec.upstream = string(res)
		s.Metrics.observeUpstream(a.domain.Name, res)
		if ok {
			rec.outcome = "upstream"
			if ans.status == http.StatusUnauthorized {
				for _, v := range ans.wwwAuth {
					w.Header().Add("WWW-Authenticate", v)
				}
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			writeXML(w, ans.body)
			return
		}
		// Any upstream failure: the local answer below.
	}

	switch {
	case rec.dialect == "mobilesync" && a.mobilesync == nil:
		rec.outcome = "unsupported_schema"
		s.poxError(w, xmlschema.ErrorSchemaUnavailable)
	case rec.dialect == "mobilesync":
		rec.outcome = "settings"
		*bp = a.mobilesync.Append(body[:0], []string{email, email, ""}, a.values)
		writeXML(w, *bp)
	case a.outlookRedirect != nil && wantsExchange(r):
		// Shared and static: written as it is, never put in the pool.
		rec.outcome = "redirect"
		writeXML(w, a.outlookRedirect)
	default:
		rec.outcome = "settings"
		login := email // the default login form is the address itself
		if a.domain.LoginName != config.LoginEmailAddress {
			login = a.domain.LoginFor(addr)
		}
		*bp = a.outlook.Append(body[:0], []string{email, email, login}, a.values)
		writeXML(w, *bp)
	}
}

// wantsExchange reports Outlook desktop asking for Exchange settings: it
// sends these headers, other POX clients do not (CLIENTS.md, Outlook).
func wantsExchange(r *http.Request) bool {
	// Canonical keys: Header.Get would canonicalise (and allocate) per call.
	return len(r.Header["X-Mapihttpcapability"]) > 0 || len(r.Header["X-Clientcanhandle"]) > 0
}

// poxGet answers GET on autodiscover.xml over HTTPS. Some mobile clients
// send GET; it carries no address, so it is an invalid request (600).
func (s *Server) poxGet(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(w)
	rec.dialect, rec.outcome = "pox", "get"
	s.poxError(w, xmlschema.ErrorInvalidRequest)
}

// poxError writes an error document as HTTP 200, as the spec requires.
func (s *Server) poxError(w http.ResponseWriter, code int) {
	now := s.Now().UTC()
	var id [20]byte
	// Id is "a hash of the name of the computer" in Exchange; ours only has
	// to be an unsigned integer that differs between answers.
	idText := strconv.AppendUint(id[:0], uint64(uint32(now.UnixNano()/100)), 10)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = errorTemplates[code].Append((*bp)[:0], []string{now.Format("15:04:05.0000000"), string(idText)}, nil)
	writeXML(w, *bp)
}

// Header values shared by every answer (net/http only reads them).
var (
	hdrContentTypeXML  = []string{contentTypeXML}
	hdrPrivate         = []string{"private, no-store"}
	hdrPublicHour      = []string{"public, max-age=3600"} // autoconfig: the same for every address
	hdrContentTypeJSON = []string{"application/json; charset=utf-8"}
	hdrNoStore         = []string{"no-store"}
)

func writeXML(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = hdrContentTypeXML
	h["Cache-Control"] = hdrPrivate
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// errBodyTooLarge is returned by readBody past its limit.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads r's body into buf, refusing more than limit bytes.
func readBody(r *http.Request, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
