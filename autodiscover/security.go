package autodiscover

import (
	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/autodiscover-proxy/autodiscover-proxy/xmlschema"
)

// securityWords is how each dialect, and the setup page, names one TLS mode.
type securityWords struct {
	// POX: the SSL and Encryption elements of a Protocol ([MS-OXDSCLI]).
	// Thunderbird takes SSL=off or Encryption=None as
	// plaintext and otherwise guesses STARTTLS from the port, so both are
	// always sent.
	poxSSL        xmlschema.OnOff
	poxEncryption string
	// SOAP: a ProtocolConnection's EncryptionMethod ([MS-OXWSADISC]).
	soapEncryption string
	// Autoconfig: socketType, in the only three spellings Thunderbird accepts.
	socketType string
	// The setup page, for people.
	page string
}

// wordsFor is the one table of TLS-mode names.
var wordsFor = map[config.Security]securityWords{
	config.SecuritySSL:      {xmlschema.On, xmlschema.EncryptionSSL, "SSL", xmlschema.SocketSSL, "SSL/TLS"},
	config.SecurityStartTLS: {xmlschema.On, xmlschema.EncryptionTLS, "TLS", xmlschema.SocketSTARTTLS, "STARTTLS"},
	config.SecurityNone:     {xmlschema.Off, xmlschema.EncryptionNone, "None", xmlschema.SocketPlain, "None"},
}
