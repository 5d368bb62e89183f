package autodiscover

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// contentTypeXML is what every XML answer carries: DavMail's POX reader
// (ExchangeSession.getEwsUrlFromAutodiscover) accepts exactly this value.
const contentTypeXML = "text/xml; charset=utf-8"

// writeXML sends an XML answer meant for one user: never cached by a
// proxy. The caller has reserved its size in the answer budget.
func writeXML(w http.ResponseWriter, b []byte) {
	writeBody(w, http.StatusOK, contentTypeXML, "private, no-store", b)
}

// sendXML is writeXML within the answer budget.
func (s *Server) sendXML(w http.ResponseWriter, r *http.Request, b []byte) {
	s.send(w, r, http.StatusOK, contentTypeXML, "private, no-store", b)
}

func (s *Server) sendJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, _ := json.Marshal(v) // plain structs of strings: cannot fail
	s.send(w, r, status, "application/json; charset=utf-8", "no-store", b)
}

// writeBody sends a whole answer with its length: net/http would send a
// body over 2 KiB (a POX answer) chunked.
func writeBody(w http.ResponseWriter, status int, contentType, cacheControl string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// parseBytesPerByte is what reading and parsing one byte of an XML body
// costs at most: etree's tree of a body of nothing but empty elements
// (<b/><b/>...) takes 67 times the body's size, text and attributes less.
const parseBytesPerByte = 68

// parseCost is the memory a body of at most limit bytes costs to read and
// parse: by its Content-Length when it has one (net/http reads no more),
// else as if it were limit bytes.
func parseCost(r *http.Request, limit int64) int {
	n := limit
	if r.ContentLength >= 0 && r.ContentLength < limit {
		n = r.ContentLength
	}
	return int(n) * parseBytesPerByte
}

// readBody reads a request body of at most limit bytes; past that it
// fails, and net/http closes the connection after the answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}
