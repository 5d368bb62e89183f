// Command autodiscover-proxy answers mail-client autoconfiguration for the
// configured domains. Subcommands: serve, check-config, dns, doctor,
// render, version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// Mozilla's root certificates, used only where the system has none (the
	// container image holds the binary alone): upstreams and the ACME CA are
	// verified everywhere.
	_ "golang.org/x/crypto/x509roots/fallback"
)

const usage = `usage: autodiscover-proxy <command> [flags]

commands:
  serve          answer autodiscover and autoconfig requests
  check-config   validate a config file and print what it serves
  dns            print the DNS records the configured domains need
  doctor         check DNS, the hosts file and the running service
  render         print exactly what one client receives for one address
  hash-address   print the value the logs carry for an address
  version        print the version and the commit it was built from

Each command takes -h for its flags and an example.

Run "autodiscover-proxy serve" with no flags to serve the embedded example.com default.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status: 0 ok, 1 failure,
// 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = checkConfig(ctx, args[1:], stdout, stderr)
	case "dns":
		err = dnsCommand(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = doctorCommand(ctx, args[1:], stdout, stderr)
	case "render":
		err = renderCommand(ctx, args[1:], stdout, stderr)
	case "hash-address":
		err = hashAddressCommand(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		err = versionCommand(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintf(stdout, "\n%s\n", readBuildInfo())
		return 0
	default:
		fmt.Fprintf(stderr, "autodiscover-proxy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch err {
	case errHelp:
		return 0
	case errUsage:
		return 2
	case errFindings:
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "autodiscover-proxy %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
