package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/miekg/dns"
)

// Level is how bad a finding is.
type Level string

const (
	Pass Level = "pass"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Finding is one result, with a one-line fix for anything not passing.
type Finding struct {
	Level   Level  `json:"level"`
	Check   string `json:"check"` // dns, hosts, live
	Subject string `json:"subject"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Failed reports whether any finding failed.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// WriteText writes one line per finding, and its fix under it.
func WriteText(w io.Writer, fs []Finding) {
	counts := map[Level]int{}
	for _, f := range fs {
		counts[f.Level]++
		fmt.Fprintf(w, "%-4s  %-5s  %s: %s\n", strings.ToUpper(string(f.Level)), f.Check, f.Subject, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "             fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed\n", counts[Pass], counts[Warn], counts[Fail])
}

// WriteJSON writes the findings as a JSON array.
func WriteFindingsJSON(w io.Writer, fs []Finding) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if fs == nil {
		fs = []Finding{}
	}
	return e.Encode(fs)
}

// CheckConfig reports what in the domains' settings clients will refuse,
// though the config is valid.
func CheckConfig(domains []*config.Domain) []Finding {
	var out []Finding
	for _, d := range domains {
		for _, s := range []struct {
			name string
			srv  *config.Server
		}{{"imap", d.IMAP}, {"pop3", d.POP3}, {"smtp", d.SMTP}} {
			if s.srv == nil || s.srv.Security != config.SecurityNone {
				continue
			}
			// Thunderbird for Android's RealAutoconfigParser refuses a
			// document with socketType plain, all of it.
			out = append(out, Finding{Warn, "config", fmt.Sprintf("%s %s", d.Name, s.name),
				fmt.Sprintf("%s:%d has tls: none: Thunderbird for Android rejects the whole autoconfig document for a plain-text server, so none of %s's settings reach it, and passwords would cross the network in clear",
					s.srv.Host, s.srv.Port, d.Name),
				fmt.Sprintf("offer TLS on %s and set tls: ssl (port 993/995/465) or tls: starttls (143/110/587) for %s", s.srv.Host, s.name)})
		}
	}
	if len(out) == 0 {
		out = append(out, Finding{Pass, "config", "tls", "every server is offered with TLS", ""})
	}
	return out
}

// Resolver answers DNS queries. NXDOMAIN and NODATA are an empty answer,
// not an error.
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error)
}

// DNSClient queries one DNS server directly, so a CNAME is seen as it is,
// not followed to its end.
type DNSClient struct {
	Server string // host:port
}

// SystemResolver uses the first name server of /etc/resolv.conf.
func SystemResolver() (*DNSClient, error) {
	c, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(c.Servers) == 0 {
		return nil, fmt.Errorf("no name server in /etc/resolv.conf (use -resolver ADDR): %v", err)
	}
	return &DNSClient{Server: net.JoinHostPort(c.Servers[0], c.Port)}, nil
}

func (c *DNSClient) Query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn(name), qtype)
	m.RecursionDesired = true
	cl := &dns.Client{Timeout: 5 * time.Second}
	in, _, err := cl.ExchangeContext(ctx, m, c.Server)
	if err == nil && in.Truncated {
		cl.Net = "tcp"
		in, _, err = cl.ExchangeContext(ctx, m, c.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s: %w", name, dns.TypeToString[qtype], err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("query %s %s: %s", name, dns.TypeToString[qtype], dns.RcodeToString[in.Rcode])
	}
	var out []dns.RR
	for _, rr := range in.Answer {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, fqdn(name)) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// providerAutodiscover is the provider whose own autodiscover name
// (Preset.AutodiscoverCNAME) t is, where a domain's autodiscover name
// points when it does not point here; nil for any other name.
func providerAutodiscover(t string) *config.Preset {
	for _, p := range config.Presets() {
		if p.AutodiscoverCNAME != "" && t == p.AutodiscoverCNAME {
			return p
		}
	}
	return nil
}

// CheckDNS resolves every record Records describes and reports missing
// and wrong ones. target is the host this service runs on ("" accepts any
// address for the autodiscover and autoconfig names).
func CheckDNS(ctx context.Context, r Resolver, domains []*config.Domain, target string) []Finding {
	if f, ok := resolverAnswers(ctx, r); !ok {
		return []Finding{f}
	}
	var out []Finding
	for _, d := range domains {
		for _, n := range d.Names() {
			out = append(out, checkServiceName(ctx, r, "autodiscover."+n, target, true))
			out = append(out, checkServiceName(ctx, r, "autoconfig."+n, target, false))
			out = append(out, checkAutodiscoverSRV(ctx, r, n))
			for _, want := range MailSRV(d) {
				out = append(out, checkMailSRV(ctx, r, want.Hdr.Name+n, want))
			}
			out = append(out, checkMX(ctx, r, d, n))
		}
	}
	return out
}

// canary is a name every working resolver resolves: the root zone's name
// servers.
const canary = "."

// resolverAnswers asks the resolver for a name that must exist first: one
// that answers nothing (unreachable, refusing, or cut off from the
// Internet) would make every record look missing, so it is one finding
// instead of one per record.
func resolverAnswers(ctx context.Context, r Resolver) (Finding, bool) {
	rrs, err := r.Query(ctx, canary, dns.TypeNS)
	switch {
	case err != nil:
		return Finding{Fail, "dns", "resolver", "it answers nothing: " + err.Error() + "; the DNS checks were not made",
			"give a resolver that answers with -resolver HOST:PORT (such as 1.1.1.1:53), or -skip-dns"}, false
	case len(rrs) == 0:
		return Finding{Fail, "dns", "resolver", "it resolves nothing (no name servers for the root zone); the DNS checks were not made",
			"give a resolver that resolves Internet names with -resolver HOST:PORT, or -skip-dns"}, false
	}
	return Finding{}, true
}

func checkServiceName(ctx context.Context, r Resolver, name, target string, autodiscover bool) Finding {
	f := Finding{Check: "dns", Subject: name}
	fix := "make " + name + " a CNAME to " + fqdn(target)
	if target == "" {
		fix = "make " + name + " a CNAME to the host this service runs on (pass it as -target HOST, and doctor checks the CNAME against it)"
	}
	cnames, err := r.Query(ctx, name, dns.TypeCNAME)
	if err != nil {
		return Finding{Fail, "dns", name, err.Error(), "check that the name server answers"}
	}
	if len(cnames) > 0 {
		t := strings.ToLower(cnames[0].(*dns.CNAME).Target)
		switch {
		case autodiscover && providerAutodiscover(t) != nil:
			f.Level, f.Message, f.Fix = Fail, "CNAME to "+t+": Outlook and older clients go to "+providerAutodiscover(t).DisplayName+" and bypass the proxy", fix
		case config.IsConsumerHost(t):
			f.Level, f.Message, f.Fix = Fail, "CNAME to the consumer Outlook.com host "+t, fix
		case target != "" && t != fqdn(target):
			f.Level, f.Message, f.Fix = Warn, "CNAME to "+t+", not to "+fqdn(target), fix+" (unless "+t+" is this service too)"
		default:
			f.Level, f.Message = Pass, "CNAME to "+t
		}
		return f
	}
	addrs := lookupAddrs(ctx, r, name)
	switch {
	case len(addrs) == 0:
		f.Level, f.Message, f.Fix = Fail, "missing: clients cannot find this service", fix
	case target == "":
		f.Level, f.Message = Pass, "addresses "+strings.Join(addrs, ", ")
	case overlap(addrs, lookupAddrs(ctx, r, target)):
		f.Level, f.Message = Pass, "addresses "+strings.Join(addrs, ", ")+" (those of "+fqdn(target)+")"
	default:
		f.Level, f.Message, f.Fix = Warn, "addresses "+strings.Join(addrs, ", ")+" are not those of "+fqdn(target), fix
	}
	return f
}

// checkAutodiscoverSRV checks the SRV that Outlook's last step follows
// (MS-OXDISCO 3.1.5.4) against Records': it must name
// autodiscover.<domain>, a name the service has a certificate for.
func checkAutodiscoverSRV(ctx context.Context, r Resolver, domain string) Finding {
	name := "_autodiscover._tcp." + domain
	want := fqdn("autodiscover." + domain)
	fix := "add " + name + " SRV 0 0 443 " + want
	rrs, err := r.Query(ctx, name, dns.TypeSRV)
	switch {
	case err != nil:
		return Finding{Fail, "dns", name, err.Error(), "check that the name server answers"}
	case len(rrs) == 0:
		return Finding{Warn, "dns", name, "missing: Outlook's last lookup step finds nothing", fix}
	}
	srv := rrs[0].(*dns.SRV)
	t := strings.ToLower(srv.Target)
	switch {
	case providerAutodiscover(t) != nil || config.IsConsumerHost(t):
		return Finding{Fail, "dns", name, "points at " + t + ": clients bypass the proxy", fix}
	case srv.Port != 443:
		return Finding{Warn, "dns", name, fmt.Sprintf("port %d: Outlook ignores it and uses 443", srv.Port), fix}
	case t != want:
		return Finding{Warn, "dns", name, "points at " + t + ": a client that follows it checks the certificate against " + t +
			", and the service's certificates cover " + want + " (and autoconfig.)", "set " + name + " SRV 0 0 443 " + want}
	}
	return Finding{Pass, "dns", name, fmt.Sprintf("SRV %d %d %d %s", srv.Priority, srv.Weight, srv.Port, t), ""}
}

func checkMailSRV(ctx context.Context, r Resolver, name string, want *dns.SRV) Finding {
	fix := fmt.Sprintf("set %s SRV 0 1 %d %s", name, want.Port, want.Target)
	rrs, err := r.Query(ctx, name, dns.TypeSRV)
	switch {
	case err != nil:
		return Finding{Fail, "dns", name, err.Error(), "check that the name server answers"}
	case len(rrs) == 0:
		return Finding{Warn, "dns", name, "missing (RFC 6186): clients that use SRV records guess instead", fix}
	}
	for _, rr := range rrs {
		srv := rr.(*dns.SRV)
		t := strings.ToLower(srv.Target)
		if config.IsConsumerHost(t) {
			return Finding{Fail, "dns", name, "points at the consumer Outlook.com host " + t, fix}
		}
		if t != want.Target || srv.Port != want.Port {
			return Finding{Fail, "dns", name, fmt.Sprintf("points at %s port %d, not %s port %d", t, srv.Port, want.Target, want.Port), fix}
		}
	}
	return Finding{Pass, "dns", name, fmt.Sprintf("SRV to %s port %d", want.Target, want.Port), ""}
}

func checkMX(ctx context.Context, r Resolver, d *config.Domain, name string) Finding {
	rrs, err := r.Query(ctx, name, dns.TypeMX)
	if err != nil {
		return Finding{Fail, "dns", name + " MX", err.Error(), "check that the name server answers"}
	}
	var hosts []string
	for _, rr := range rrs {
		hosts = append(hosts, strings.ToLower(rr.(*dns.MX).Mx))
	}
	note := mxNote(d, name)
	if len(hosts) == 0 {
		return Finding{Fail, "dns", name + " MX", "no MX: mail to this domain is not delivered", note}
	}
	for _, h := range hosts {
		if strings.HasSuffix(h, ".olc.protection.outlook.com.") {
			return Finding{Fail, "dns", name + " MX", "MX " + h + " marks the domain as consumer Outlook.com: Thunderbird's MX lookup picks consumer settings", note}
		}
	}
	ok := func(suffixes ...string) bool {
		for _, h := range hosts {
			for _, s := range suffixes {
				if strings.HasSuffix(h, s) {
					return true
				}
			}
		}
		return false
	}
	if p := d.Provider; len(p.MXSuffixes) > 0 && !ok(p.MXSuffixes...) {
		return Finding{Warn, "dns", name + " MX", "MX " + strings.Join(hosts, ", ") + " is not " + p.DisplayName + "'s", note}
	}
	return Finding{Pass, "dns", name + " MX", "MX " + strings.Join(hosts, ", "), ""}
}

func lookupAddrs(ctx context.Context, r Resolver, name string) []string {
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, _ := r.Query(ctx, name, t)
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
			}
		}
	}
	return out
}

func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
