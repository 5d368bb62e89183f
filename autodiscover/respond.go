package autodiscover

import (
	"encoding/json"
	"io"
	"net/http"
)

// contentTypeXML is what every XML answer carries: DavMail's POX reader
// (ExchangeSession.getEwsUrlFromAutodiscover) accepts exactly this value.
const contentTypeXML = "text/xml; charset=utf-8"

// writeXML sends an XML answer meant for one user: never cached by a proxy.
func writeXML(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypeXML)
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // plain structs of strings: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// readBody reads a request body of at most limit bytes; past that it
// fails, and net/http closes the connection after the answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}
