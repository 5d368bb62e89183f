package autodiscover

import (
	"net/http"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// autoconfigPaths are the Thunderbird-style autoconfig URLs: the ISP form
// on autoconfig.<d>, the well-known form on <d> (both fetched by
// Thunderbird, PROTOCOLS.md §5), and /v1.1/ used by some Android clients.
var autoconfigPaths = []string{
	"/mail/config-v1.1.xml",
	"/.well-known/autoconfig/mail/config-v1.1.xml",
	"/v1.1/mail/config-v1.1.xml",
}

// autoconfig answers config-v1.1.xml. The domain comes from ?emailaddress=
// (Thunderbird sends it by default) or, when absent (Thunderbird for
// Android may omit it), from the Host header less "autoconfig.". The
// document is the same for every user of a domain: logins use
// Thunderbird's own placeholders.
func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(w)
	rec.dialect = "autoconfig"
	st := s.site.Load()
	var a *answers
	if email := queryParam(r.URL.RawQuery, "emailaddress"); email != "" {
		addr, err := config.ParseAddress(email)
		if err != nil {
			rec.outcome = "bad_address"
			http.Error(w, "emailaddress is not a valid e-mail address", http.StatusBadRequest)
			return
		}
		rec.address = addr.String()
		a = st.lookup(addr.Domain)
	} else {
		a = st.hostDomain(r.Host)
	}
	if a == nil {
		// Thunderbird reads a 404 as "no config here" and tries its next source.
		rec.outcome = "unknown_domain"
		http.Error(w, "no mail configuration is served for this domain", http.StatusNotFound)
		return
	}
	rec.domain = a.domain.Name
	rec.outcome = "settings"
	t := a.autoconfigAfter
	if s.Now().Before(a.domain.Provider.SMTPPasswordUntil) {
		t = a.autoconfigBefore
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = t.Append((*bp)[:0], noUser[:], a.values)
	h := w.Header()
	h["Content-Type"] = hdrContentTypeXML
	h["Cache-Control"] = hdrPublicHour
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(*bp)
	}
}
