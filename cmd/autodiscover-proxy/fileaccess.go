package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
)

// exampleNames are names that documentation uses and nobody's mail
// domain is: RFC 2606 and RFC 6761 reserve example.com/.net/.org and the
// .example, .test, .invalid and .localhost domains; Microsoft's
// documentation uses these fictitious companies.
var (
	exampleDomains  = []string{"example.com", "example.net", "example.org", "contoso.com", "contoso.net", "fabrikam.com", "northwindtraders.com", "adventure-works.com", "adatum.com", "litwareinc.com", "tailspintoys.com", "woodgrovebank.com", "wingtiptoys.com", "proseware.com", "fourthcoffee.com", "wideworldimporters.com"}
	exampleSuffixes = []string{".example", ".test", ".invalid", ".localhost"}
)

// isExample reports whether domain is, or is under, an example name.
func isExample(domain string) bool {
	for _, e := range exampleDomains {
		if domain == e || strings.HasSuffix(domain, "."+e) {
			return true
		}
	}
	for _, s := range exampleSuffixes {
		if domain == s[1:] || strings.HasSuffix(domain, s) {
			return true
		}
	}
	return false
}

// exampleWarnings name the example domains and addresses a config still
// holds: a copied example that was never finished serves nobody.
func exampleWarnings(cfg *config.Config) []string {
	var out []string
	for _, d := range cfg.Domains {
		for _, n := range d.Names() {
			if isExample(n) {
				out = append(out, fmt.Sprintf("%s is an example domain, not yours: replace it with your mail domain (or remove it)", n))
			}
		}
	}
	if a := cfg.TLS.ACME; a != nil && a.Email != "" {
		if addr, err := config.ParseAddress(a.Email); err == nil && isExample(addr.Domain) {
			out = append(out, fmt.Sprintf("tls.acme.email %s is an example address: the CA's expiry notices would reach nobody", a.Email))
		}
	}
	return out
}

// account is the user (and groups) a file must be readable by.
type account struct {
	name string
	uid  int
	gids []int
	// dynamic: no such user here (systemd's DynamicUser= makes it at
	// start): only what "other" may read is readable.
	dynamic bool
}

func lookupAccount(name string) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, unknown := err.(user.UnknownUserError); unknown {
			return account{name: name, uid: -1, dynamic: true}, nil
		}
		return account{}, err
	}
	a := account{name: name}
	a.uid, _ = strconv.Atoi(u.Uid)
	ids, _ := u.GroupIds()
	for _, g := range append(ids, u.Gid) {
		if n, err := strconv.Atoi(g); err == nil {
			a.gids = append(a.gids, n)
		}
	}
	return a, nil
}

// may reports whether a may do what mask asks (4 read, 2 write, 1 search)
// on a file with info's owner and mode.
func (a account) may(info fs.FileInfo, mask fs.FileMode) bool {
	if a.uid == 0 {
		return true
	}
	mode := info.Mode().Perm()
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case ok && int(st.Uid) == a.uid:
		return mode&(mask<<6) != 0
	case ok && slices.Contains(a.gids, int(st.Gid)):
		return mode&(mask<<3) != 0
	}
	return mode&mask != 0
}

// readable says why a cannot read path (every directory above it must let
// a search it, the file let a read it), or "" when it can.
func (a account) readable(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err.Error()
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if info, err := os.Stat(dir); err == nil && !a.may(info, 1) {
			return fmt.Sprintf("the directory %s (mode %v, owner %s) does not let %s in (chmod o+x %s)", dir, info.Mode().Perm(), owner(info), a.name, dir)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	info, err := os.Stat(abs)
	if err != nil {
		return err.Error()
	}
	if !a.may(info, 4) {
		return fmt.Sprintf("mode %v, owner %s: %s cannot read it", info.Mode().Perm(), owner(info), a.name)
	}
	return ""
}

func owner(info fs.FileInfo) string {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	name := strconv.Itoa(int(st.Uid))
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	g := strconv.Itoa(int(st.Gid))
	if gr, err := user.LookupGroupId(g); err == nil {
		g = gr.Name
	}
	return name + ":" + g
}

// accessProblems are the files the service reads that name cannot read,
// each with its fix: the config, the certificate and key files, the
// address key file.
func accessProblems(configFile string, cfg *config.Config, name string) ([]string, error) {
	a, err := lookupAccount(name)
	if err != nil {
		return nil, err
	}
	files := []struct{ key, path string }{{"the config", configFile}, {"tls.cert_file", cfg.TLS.CertFile},
		{"tls.key_file", cfg.TLS.KeyFile}, {"log.address_key_file", cfg.Log.AddressKeyFile}}
	var out []string
	for _, f := range files {
		if f.path == "" {
			continue
		}
		why := a.readable(f.path)
		if why == "" {
			continue
		}
		fix := fmt.Sprintf("chgrp %s %s && chmod g+r %s", name, f.path, f.path)
		if a.dynamic {
			// With DynamicUser= the user exists only while the unit runs:
			// systemd hands the service a copy of a root-only file.
			fix = fmt.Sprintf("keep it root's and give it to the unit: LoadCredential=%s:%s, and in the config the path %%d/%s (systemd's credentials directory)",
				filepath.Base(f.path), f.path, filepath.Base(f.path))
		}
		user := name
		if a.dynamic {
			user += " (no such user here: systemd's DynamicUser= makes it at start, so only what every user may read is readable)"
		}
		out = append(out, fmt.Sprintf("%s %s is not readable by %s: %s; fix: %s", f.key, f.path, user, why, fix))
	}
	return out, nil
}
