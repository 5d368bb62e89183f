package autodiscover

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
)

// mobileconfigPrefix is the readable path form: /mobileconfig/<addr>.mobileconfig.
const mobileconfigPrefix = "/mobileconfig/"

// mobileconfig answers GET /mobileconfig?email=<addr>[&type=eas|imap] and
// /mobileconfig/<addr>.mobileconfig: an Apple configuration profile, for
// iPhone, iPad and Mac users (the setup page links to it).
//
// Cost: at most limits.pages_per_client_per_minute a client and half the
// CPUs at once (limitPages); no body; the answer a profile of a few KiB
// plus its signature and certificate chain, from the answer budget.
func (s *Server) mobileconfig(w http.ResponseWriter, r *http.Request) {
	rec := reportOf(r)
	rec.dialect = DialectApple
	email := r.URL.Query().Get("email")
	if rest, ok := strings.CutPrefix(r.URL.Path, mobileconfigPrefix); ok {
		email = strings.TrimSuffix(rest, ".mobileconfig")
	}
	st := s.site.Load()
	addr, a, err := st.resolve(email, rec)
	switch err {
	case errBadAddress:
		http.Error(w, "email is not a valid e-mail address", http.StatusBadRequest)
		return
	case errUnknownDomain:
		http.Error(w, "no mail configuration is served for this domain", http.StatusNotFound)
		return
	}
	p, err := buildProfile(a.domain, addr, r.URL.Query().Get("type"), s.Now())
	var ep errProfile
	if errors.As(err, &ep) {
		rec.outcome = OutcomeUnsupportedProfile
		http.Error(w, ep.Error(), http.StatusBadRequest)
		return
	}
	data, err := p.Encode()
	if err != nil {
		s.Log.Error("encode profile", "domain", a.domain.Name, "err", err)
		http.Error(w, "the profile could not be made", http.StatusServiceUnavailable)
		return
	}
	rec.outcome = OutcomeUnsigned
	if signed, ok := s.signProfile(r.Context(), st.profileHost(r, a), data); ok {
		data, rec.outcome = signed, OutcomeSigned
	}
	// The file name is built from the configured domain name only: LDH
	// characters, nothing from the request.
	w.Header().Set("Content-Disposition", `attachment; filename="`+a.domain.Name+`-mail.mobileconfig"`)
	s.send(w, r, http.StatusOK, "application/x-apple-aspen-config", "private, no-store", data)
}

// profileHost is the host whose certificate signs: the request's host when
// it is one of the domain's own names, else autodiscover.<domain>.
func (st *site) profileHost(r *http.Request, a *answers) string {
	if st.hostDomain(r.Host) == a {
		return hostName(r.Host)
	}
	return "autodiscover." + a.domain.Name
}

// signProfile signs with the certificate and key that serve host, when
// clients trust them. Only without one (development) is a profile unsigned.
func (s *Server) signProfile(ctx context.Context, host string, data []byte) ([]byte, bool) {
	if s.Certificates == nil || !s.Certificates.Trusted() {
		return nil, false
	}
	c, err := s.Certificates.Cached(ctx, host)
	if err != nil {
		s.Log.Warn("profile served unsigned: no certificate for its host", "host", host, "err", err)
		return nil, false
	}
	signed, err := certs.SignCMS(data, c)
	if err != nil {
		s.Log.Error("profile served unsigned: signing failed", "host", host, "err", err)
		return nil, false
	}
	return signed, true
}

// profilesSigned reports whether profiles for a domain would be signed, for
// the setup page.
func (s *Server) profilesSigned(ctx context.Context, host string) bool {
	if s.Certificates == nil || !s.Certificates.Trusted() {
		return false
	}
	_, err := s.Certificates.Cached(ctx, host)
	return err == nil
}
