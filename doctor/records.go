// Package doctor finds what breaks autoconfiguration outside the
// responder: DNS records, stale hosts-file entries, and the live service as
// clients see it. It also writes the DNS records a deployment needs.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/miekg/dns"
)

// TTL of the records written.
const TTL = 3600

// Record is one DNS record a domain needs, or (RR nil) a note about one
// the administrator must take from elsewhere, such as the MX.
type Record struct {
	Domain  string `json:"domain"`
	RR      dns.RR `json:"-"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	TTL     uint32 `json:"ttl,omitempty"`
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

func fqdn(s string) string { return dns.Fqdn(strings.ToLower(s)) }

func newRecord(domain string, rr dns.RR, comment string) Record {
	h := rr.Header()
	value := strings.TrimPrefix(rr.String(), h.String())
	return Record{Domain: domain, RR: rr, Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl, Value: value, Comment: comment}
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: TTL}
}

// Records are the DNS records of every configured domain and alias:
// autodiscover and autoconfig CNAMEs to target (the host this service runs
// on), the _autodiscover._tcp SRV (MS-OXDISCO 3.1.5.4; Outlook ignores
// its port), RFC 6186 / RFC 8314 SRV records for the preset's servers, and
// a note on the MX. The autodiscover SRV names autodiscover.<domain>, not
// target: a client that follows it connects to https://<its target>/ and
// checks the certificate against that name, and the service's
// certificates are for autodiscover.<domain> and autoconfig.<domain>.
func Records(cfg *config.Config, target string) []Record {
	var out []Record
	for _, d := range cfg.Domains {
		for _, n := range d.Names() {
			out = append(out,
				newRecord(n, &dns.CNAME{Hdr: hdr("autodiscover."+n, dns.TypeCNAME), Target: fqdn(target)}, "Outlook, ActiveSync and EWS clients"),
				newRecord(n, &dns.CNAME{Hdr: hdr("autoconfig."+n, dns.TypeCNAME), Target: fqdn(target)}, "Thunderbird and other autoconfig clients"),
				newRecord(n, &dns.SRV{Hdr: hdr("_autodiscover._tcp."+n, dns.TypeSRV), Priority: 0, Weight: 0, Port: 443, Target: fqdn("autodiscover." + n)},
					"Outlook's SRV step, to a name the service's certificate covers"),
			)
			for _, s := range MailSRV(d) {
				s.Hdr = hdr(s.Hdr.Name+n, dns.TypeSRV)
				out = append(out, newRecord(n, s, "RFC 6186 mail service location"))
			}
			if d.ACMEApex {
				out = append(out, Record{Domain: n, Name: fqdn(n), Type: "A/AAAA", Value: "(the address of " + fqdn(target) + ")",
					Comment: "acme_apex: " + n + " itself must reach this service; a CNAME is not allowed at the zone apex"})
			}
			if note := mxNote(d, n); note != "" {
				out = append(out, Record{Domain: n, Name: fqdn(n), Type: "MX", Value: "(from your provider)", Comment: note})
			}
		}
	}
	return out
}

// MailSRV are the RFC 6186 SRV records for a domain's servers, with the
// owner name's service prefix only (the domain is appended by the caller):
// _imaps/_pop3s for implicit TLS, _imap/_pop3 for STARTTLS, _submission
// for port 587, _submissions (RFC 8314) for implicit-TLS submission.
func MailSRV(d *config.Domain) []*dns.SRV {
	var out []*dns.SRV
	add := func(tlsName, plainName string, s *config.Server) {
		if s == nil {
			return
		}
		name := plainName
		if s.Security == config.SecuritySSL {
			name = tlsName
		}
		out = append(out, &dns.SRV{Hdr: dns.RR_Header{Name: name + "._tcp."}, Priority: 0, Weight: 1, Port: uint16(s.Port), Target: fqdn(s.Host)})
	}
	add("_imaps", "_imap", d.IMAP)
	add("_pop3s", "_pop3", d.POP3)
	add("_submissions", "_submission", d.SMTP)
	return out
}

// mxNote says what the MX of a domain should be; the host itself comes
// from the provider's admin console.
func mxNote(d *config.Domain, name string) string {
	return strings.ReplaceAll(d.Provider.MXAdvice, "{dashed}", strings.ReplaceAll(name, ".", "-"))
}

// WriteZone writes records as zone-file lines, grouped by domain.
func WriteZone(w io.Writer, records []Record) error {
	last := ""
	for _, r := range records {
		if r.Domain != last {
			if last != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "; %s: autodiscover-proxy records\n", r.Domain)
			last = r.Domain
		}
		if r.RR == nil {
			fmt.Fprintf(w, "; %s\n", r.Comment)
			continue
		}
		if _, err := fmt.Fprintf(w, "%s\t; %s\n", r.RR.String(), r.Comment); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes records as a JSON array.
func WriteJSON(w io.Writer, records []Record) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(records)
}
