// Command bff is the Backend-for-Frontend session server: it signs users in
// with an OpenID Provider, keeps their tokens server-side and gives the
// browser only an opaque httpOnly session cookie.
//
//	bff dev                         everything on localhost, no setup
//	bff serve --config bff.yaml     production
//	bff config check --config FILE  validate a configuration
//	bff version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2) // the usage was printed
	default:
		fmt.Fprintln(os.Stderr, "bff:", err)
		os.Exit(1)
	}
}
