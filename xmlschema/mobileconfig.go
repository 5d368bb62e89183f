package xmlschema

import (
	"crypto/sha1"
	"fmt"

	"howett.net/plist"
)

// Apple configuration profiles (.mobileconfig): Apple's device-management
// reference, mdm/profiles/*.yaml. The plist library
// writes the types Apple requires: ports as <integer>, flags as <true/>.

// Profile is the top-level Configuration payload.
type Profile struct {
	PayloadType         string `plist:"PayloadType"` // Configuration
	PayloadVersion      int    `plist:"PayloadVersion"`
	PayloadIdentifier   string `plist:"PayloadIdentifier"`
	PayloadUUID         string `plist:"PayloadUUID"`
	PayloadDisplayName  string `plist:"PayloadDisplayName"`
	PayloadDescription  string `plist:"PayloadDescription,omitempty"`
	PayloadOrganization string `plist:"PayloadOrganization,omitempty"`
	PayloadContent      []any  `plist:"PayloadContent"`
}

// EASPayload is com.apple.eas.account (iOS; not macOS). OAuth (iOS 12+)
// makes the device sign in with the provider: no password in the profile.
type EASPayload struct {
	PayloadType         string `plist:"PayloadType"`
	PayloadVersion      int    `plist:"PayloadVersion"`
	PayloadIdentifier   string `plist:"PayloadIdentifier"`
	PayloadUUID         string `plist:"PayloadUUID"`
	PayloadDisplayName  string `plist:"PayloadDisplayName"`
	PayloadOrganization string `plist:"PayloadOrganization,omitempty"`
	EmailAddress        string `plist:"EmailAddress"`
	UserName            string `plist:"UserName"`
	Host                string `plist:"Host"`
	SSL                 bool   `plist:"SSL"`
	OAuth               bool   `plist:"OAuth"`
}

// MailPayload is com.apple.mail.managed (iOS, macOS): IMAP or POP with
// SMTP, password sign-in (it has no OAuth key). The password is never in
// the profile: the device asks for it.
type MailPayload struct {
	PayloadType                            string `plist:"PayloadType"`
	PayloadVersion                         int    `plist:"PayloadVersion"`
	PayloadIdentifier                      string `plist:"PayloadIdentifier"`
	PayloadUUID                            string `plist:"PayloadUUID"`
	PayloadDisplayName                     string `plist:"PayloadDisplayName"`
	PayloadOrganization                    string `plist:"PayloadOrganization,omitempty"`
	EmailAccountDescription                string `plist:"EmailAccountDescription"`
	EmailAccountType                       string `plist:"EmailAccountType"` // EmailTypeIMAP, EmailTypePOP
	EmailAddress                           string `plist:"EmailAddress"`
	IncomingMailServerAuthentication       string `plist:"IncomingMailServerAuthentication"` // EmailAuthPassword
	IncomingMailServerHostName             string `plist:"IncomingMailServerHostName"`
	IncomingMailServerPortNumber           int    `plist:"IncomingMailServerPortNumber"`
	IncomingMailServerUseSSL               bool   `plist:"IncomingMailServerUseSSL"`
	IncomingMailServerUsername             string `plist:"IncomingMailServerUsername"`
	OutgoingMailServerAuthentication       string `plist:"OutgoingMailServerAuthentication"`
	OutgoingMailServerHostName             string `plist:"OutgoingMailServerHostName"`
	OutgoingMailServerPortNumber           int    `plist:"OutgoingMailServerPortNumber"`
	OutgoingMailServerUseSSL               bool   `plist:"OutgoingMailServerUseSSL"`
	OutgoingMailServerUsername             string `plist:"OutgoingMailServerUsername"`
	OutgoingPasswordSameAsIncomingPassword bool   `plist:"OutgoingPasswordSameAsIncomingPassword"`
}

// Payload types and values.
const (
	PayloadConfiguration = "Configuration"
	PayloadEAS           = "com.apple.eas.account"
	PayloadMail          = "com.apple.mail.managed"
	EmailTypeIMAP        = "EmailTypeIMAP"
	EmailTypePOP         = "EmailTypePOP"
	EmailAuthPassword    = "EmailAuthPassword"
)

// Encode writes the profile as an XML property list.
func (p *Profile) Encode() ([]byte, error) {
	b, err := plist.MarshalIndent(p, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	return b, nil
}

// profileNamespace is the UUID namespace of this service's profiles.
var profileNamespace = [16]byte{0x5c, 0x1e, 0x7d, 0x2a, 0x3b, 0x44, 0x4f, 0x51, 0x9a, 0x0d, 0x61, 0x7e, 0x25, 0x8c, 0x40, 0x13}

// NameUUID is an RFC 9562 version-5 UUID of name: the same user gets the
// same profile UUIDs every time, so reinstalling replaces, not duplicates.
func NameUUID(name string) string {
	h := sha1.New()
	h.Write(profileNamespace[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
