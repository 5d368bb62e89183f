package autodiscover

import (
	"errors"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// The failures of resolve, which each handler answers in its own dialect.
var (
	errBadAddress    = errors.New("not an e-mail address")
	errUnknownDomain = errors.New("a domain this service does not serve")
)

// resolve is the one step in front of every handler that answers for an
// address: parse it, find the domain that serves it, and say so in the
// report (the address, the domain; or the outcome bad_address, or
// unknown_domain with the domain asked).
func (st *site) resolve(email string, rec *report) (config.Address, *answers, error) {
	addr, err := config.ParseAddress(email)
	if err != nil {
		rec.outcome = OutcomeBadAddress
		return addr, nil, errBadAddress
	}
	rec.address = addr.String()
	a := st.lookup(addr.Domain)
	if a == nil {
		rec.unknownDomain(addr.Domain)
		return addr, nil, errUnknownDomain
	}
	rec.domain = a.domain.Name
	return addr, a, nil
}
