package autodiscover

// Dialect is the client protocol a request spoke. Its values are the
// "dialect" label of autodiscover_requests_total and of the request log:
// a contract with dashboards and alerts, listed in the README.
type Dialect string

const (
	DialectPOX        Dialect = "pox"        // outlook 2006a POX ([MS-OXDSCLI])
	DialectMobileSync Dialect = "mobilesync" // mobilesync POX ([MS-ASCMD] 2.2.1.1)
	DialectSOAP       Dialect = "soap"       // SOAP Autodiscover ([MS-OXWSADISC])
	DialectJSON       Dialect = "json"       // Autodiscover v2
	DialectAutoconfig Dialect = "autoconfig" // Mozilla config-v1.1.xml
	DialectApple      Dialect = "apple"      // configuration profile
	DialectSetup      Dialect = "setup"      // the setup page for people
	DialectHTTP       Dialect = "http"       // plain HTTP sent on to HTTPS
)

// Outcome is how a request was answered: the "outcome" label, likewise a
// contract listed in the README.
type Outcome string

const (
	OutcomeSettings            Outcome = "settings"             // the domain's settings
	OutcomeRedirect            Outcome = "redirect"             // a redirect (POX redirectUrl, http to https)
	OutcomeUpstream            Outcome = "upstream"             // the upstream's corrected answer
	OutcomeForm                Outcome = "form"                 // the setup page's address form
	OutcomeGet                 Outcome = "get"                  // GET on the POX URL: error 600
	OutcomeSigned              Outcome = "signed"               // a signed profile
	OutcomeUnsigned            Outcome = "unsigned"             // an unsigned profile (development certificate)
	OutcomeBadRequest          Outcome = "bad_request"          // malformed, oversized or unreadable request
	OutcomeBadAddress          Outcome = "bad_address"          // not an e-mail address
	OutcomeNoAddress           Outcome = "no_address"           // POX request without EMailAddress
	OutcomeUnknownDomain       Outcome = "unknown_domain"       // a domain this service is not configured for
	OutcomeUnsupportedSchema   Outcome = "unsupported_schema"   // POX response schema not offered (601)
	OutcomeUnsupportedProtocol Outcome = "unsupported_protocol" // v2 protocol not offered
	OutcomeUnsupportedProfile  Outcome = "unsupported_profile"  // profile type not offered for the domain
	OutcomeNotFound            Outcome = "not_found"            // no such URL
	OutcomeMethodNotAllowed    Outcome = "method_not_allowed"   // known URL, wrong method
	OutcomeUntrustedProxy      Outcome = "untrusted_proxy"      // X-Forwarded-Proto: https from a peer outside trusted_proxies
	OutcomeRateLimited         Outcome = "rate_limited"         // a client over limits.pages_per_client_per_minute
	OutcomeBusy                Outcome = "busy"                 // 503: the answer memory budget stayed full (limits.answer_memory_mb)
)
