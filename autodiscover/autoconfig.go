package autodiscover

import (
	"net/http"
)

// autoconfigPaths are the Thunderbird-style autoconfig URLs: the ISP form
// on autoconfig.<d>, the well-known form on <d> (both fetched by
// Thunderbird's FindConfig/FetchConfig; Mozilla's autoconfig wiki), and
// /v1.1/ used by some Android clients.
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
//
// Cost: no body; the answer the domain's compiled document for the
// period (a few KiB), the same for every address.
func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect = DialectAutoconfig
	st := s.site.Load()
	var a *answers
	var err error
	if email := queryParam(r.URL.RawQuery, "emailaddress"); email != "" {
		_, a, err = st.resolve(email, rec)
	} else if a = st.hostDomain(r.Host); a != nil {
		rec.domain = a.domain.Name
	} else {
		rec.unknownDomain(hostName(r.Host))
		err = errUnknownDomain
	}
	switch err {
	case errBadAddress:
		http.Error(w, "emailaddress is not a valid e-mail address", http.StatusBadRequest)
		return
	case errUnknownDomain:
		// Thunderbird reads a 404 as "no config here" and tries its next source.
		http.Error(w, "no mail configuration is served for this domain", http.StatusNotFound)
		return
	}
	rec.outcome = OutcomeSettings
	t := a.at(s.Now()).autoconfig
	// The same for every address: caches may keep it. For HEAD, net/http
	// sends the length and drops the body.
	s.send(w, r, http.StatusOK, contentTypeXML, "public, max-age=3600", t.Append(nil, noUser[:], a.values))
}
