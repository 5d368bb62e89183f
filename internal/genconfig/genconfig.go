// Package genconfig writes large synthetic configs for benchmarks: n
// domains across the presets, every tenth with an alias.
package genconfig

import (
	"bufio"
	"fmt"
	"io"
)

// Write writes a config with n domains.
func Write(w io.Writer, n int) error { return Domains(w, 0, n) }

// Domains writes a domains: list of n domains, tenant<first>.example
// onwards: a config, or a file a config includes.
func Domains(w io.Writer, first, n int) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "domains:")
	for i := first; i < first+n; i++ {
		switch i % 10 {
		case 9:
			fmt.Fprintf(b, "  - name: tenant%d.example\n    provider: custom\n    display_name: Tenant %d\n"+
				"    imap: {host: mail.tenant%d.example, port: 993, tls: ssl}\n    smtp: {host: mail.tenant%d.example, port: 587, tls: starttls}\n", i, i, i, i)
		case 8:
			fmt.Fprintf(b, "  - name: tenant%d.example\n    provider: google-workspace\n", i)
		case 0:
			fmt.Fprintf(b, "  - name: tenant%d.example\n    aliases: [tenant%d.example.net]\n    provider: microsoft365\n    display_name: Tenant %d\n", i, i, i)
		default:
			fmt.Fprintf(b, "  - name: tenant%d.example\n    provider: microsoft365\n", i)
		}
	}
	return b.Flush()
}
