package autodiscover

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/certs"
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// Profile kinds (?type=).
const (
	profileEAS  = "eas"
	profileIMAP = "imap"
)

// mobileconfigPrefix is the readable path form: /mobileconfig/<addr>.mobileconfig.
const mobileconfigPrefix = "/mobileconfig/"

// errProfile is a request for a profile this domain cannot have; its text
// is shown to the user.
type errProfile string

func (e errProfile) Error() string { return string(e) }

// profileKinds are the profile types a domain offers, preferred first.
// IMAP/POP (com.apple.mail.managed) only where passwords work: it has no
// OAuth key, and Exchange Online refuses passwords for IMAP. ActiveSync
// (com.apple.eas.account, with OAuth where passwords do not work) where the
// domain has it, first for an Exchange server (mail, calendar and contacts
// in one account, as the server's own users set it up). An IMAP profile
// signs in to SMTP with the password too, so it needs password SMTP at
// time now (smtp_password: off takes it away): there may be no profile.
func profileKinds(d *config.Domain, now time.Time) []string {
	var kinds []string
	if passwordWorks(d) && slices.Contains(d.SMTPAuth(now), config.AuthPasswordCleartext) {
		kinds = append(kinds, profileIMAP)
	}
	if d.ActiveSyncURL != "" {
		kinds = append(kinds, profileEAS)
		if d.Provider.FromExchangeHost {
			slices.Reverse(kinds)
		}
	}
	return kinds
}

func passwordWorks(d *config.Domain) bool {
	return slices.Contains(d.Provider.IncomingAuth, config.AuthPasswordCleartext)
}

// buildProfile is the unsigned profile for addr. Identifiers are reverse
// DNS under the domain; UUIDs are derived from the address, so the same
// user always gets the same profile.
func buildProfile(d *config.Domain, addr config.Address, kind string, now time.Time) (*xmlschema.Profile, error) {
	kinds := profileKinds(d, now)
	if kind == "" && len(kinds) > 0 {
		kind = kinds[0]
	}
	if !slices.Contains(kinds, kind) {
		if kind == profileIMAP && d.ActiveSyncURL != "" {
			return nil, errProfile("An IMAP profile would need a password, which " + d.Provider.DisplayName +
				" refuses for IMAP (it signs in with OAuth). Use the Exchange (type=eas) profile.")
		}
		if kind == "" {
			return nil, errProfile("There is no profile for " + d.Name + ": add the account on the device, choosing " + d.Provider.DisplayName + ".")
		}
		return nil, errProfile("There is no " + kind + " profile for " + d.Name + ".")
	}
	email := addr.String()
	login := d.LoginFor(addr)
	base := reverseDNS(d.Name) + ".mail." + strings.ToLower(xmlschema.NameUUID(email)[:8])
	name := d.DisplayName + " mail"
	p := &xmlschema.Profile{
		PayloadType:         xmlschema.PayloadConfiguration,
		PayloadVersion:      1,
		PayloadIdentifier:   base,
		PayloadUUID:         xmlschema.NameUUID(email + "|profile|" + kind),
		PayloadDisplayName:  name,
		PayloadDescription:  "Mail settings for " + email + ". Your password is not in this profile: the device asks for it, or signs in with your provider.",
		PayloadOrganization: d.DisplayName,
	}
	switch kind {
	case profileEAS:
		p.PayloadContent = []any{xmlschema.EASPayload{
			PayloadType:         xmlschema.PayloadEAS,
			PayloadVersion:      1,
			PayloadIdentifier:   base + ".eas",
			PayloadUUID:         xmlschema.NameUUID(email + "|eas"),
			PayloadDisplayName:  name,
			PayloadOrganization: d.DisplayName,
			EmailAddress:        email,
			UserName:            login,
			Host:                urlHost(d.ActiveSyncURL),
			SSL:                 true,
			OAuth:               !passwordWorks(d),
		}}
	case profileIMAP:
		in, typ := d.IMAP, xmlschema.EmailTypeIMAP
		if in == nil {
			in, typ = d.POP3, xmlschema.EmailTypePOP
		}
		p.PayloadContent = []any{xmlschema.MailPayload{
			PayloadType:                            xmlschema.PayloadMail,
			PayloadVersion:                         1,
			PayloadIdentifier:                      base + ".imap",
			PayloadUUID:                            xmlschema.NameUUID(email + "|imap"),
			PayloadDisplayName:                     name,
			PayloadOrganization:                    d.DisplayName,
			EmailAccountDescription:                name,
			EmailAccountType:                       typ,
			EmailAddress:                           email,
			IncomingMailServerAuthentication:       xmlschema.EmailAuthPassword,
			IncomingMailServerHostName:             in.Host,
			IncomingMailServerPortNumber:           in.Port,
			IncomingMailServerUseSSL:               in.Security != config.SecurityNone, // STARTTLS too
			IncomingMailServerUsername:             login,
			OutgoingMailServerAuthentication:       xmlschema.EmailAuthPassword,
			OutgoingMailServerHostName:             d.SMTP.Host,
			OutgoingMailServerPortNumber:           d.SMTP.Port,
			OutgoingMailServerUseSSL:               d.SMTP.Security != config.SecurityNone,
			OutgoingMailServerUsername:             login,
			OutgoingPasswordSameAsIncomingPassword: true,
		}}
	}
	return p, nil
}

func reverseDNS(domain string) string {
	labels := strings.Split(domain, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

// mobileconfig answers GET /mobileconfig?email=<addr>[&type=eas|imap] and
// /mobileconfig/<addr>.mobileconfig: an Apple configuration profile, for
// iPhone, iPad and Mac users (the setup page links to it).
//
// Cost: at most limits.pages_per_client_per_minute a client and half the
// CPUs at once (limitPages); no body; the answer a profile of a few KiB
// plus its signature and certificate chain, from the answer budget.
func (s *Server) mobileconfig(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(r)
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
