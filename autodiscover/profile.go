package autodiscover

import (
	"slices"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// The Apple profiles' generator: pure functions from a domain and an
// address to the profile (mobileconfig.go does the HTTP and the signing).

// errProfile is a request for a profile this domain cannot have; its text
// is shown to the user.
type errProfile string

func (e errProfile) Error() string { return string(e) }

// buildProfile is the unsigned profile for addr. Identifiers are reverse
// DNS under the domain; UUIDs are derived from the address, so the same
// user always gets the same profile.
func buildProfile(d *config.Domain, addr config.Address, kind string, now time.Time) (*xmlschema.Profile, error) {
	kinds := d.ProfileKinds(now)
	if kind == "" && len(kinds) > 0 {
		kind = kinds[0]
	}
	if !slices.Contains(kinds, kind) {
		if kind == config.ProfileIMAP && d.ActiveSyncURL != "" {
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
	case config.ProfileEAS:
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
			OAuth:               !d.PasswordWorks(),
		}}
	case config.ProfileIMAP:
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
