package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/bff-dev/bff/internal/devstack"
)

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	bffAddr := fs.String("listen", "127.0.0.1:8080", "BFF listen address (loopback only)")
	idpAddr := fs.String("idp-listen", "127.0.0.1:9998", "embedded OpenID Provider listen address")
	apiAddr := fs.String("api-listen", "127.0.0.1:9997", "demo API listen address")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	// bff dev uses plain-HTTP cookies and published demo passwords: never
	// expose it beyond this machine.
	for name, addr := range map[string]string{"--listen": *bffAddr, "--idp-listen": *idpAddr, "--api-listen": *apiAddr} {
		if !loopbackAddr(addr) {
			fmt.Fprintf(stderr, "dev: %s %s: bff dev listens on loopback only (127.0.0.1:PORT or [::1]:PORT)\n", name, addr)
			return errUsage
		}
	}
	log := newLogger(stderr, "console", *logLevel)
	st, err := devstack.Start(ctx, devstack.Options{BFFAddr: *bffAddr, IdPAddr: *idpAddr, APIAddr: *apiAddr, Logger: log})
	if err != nil {
		return fmt.Errorf("%w (choose other ports with go run ./cmd/bff dev --listen 127.0.0.1:PORT --idp-listen 127.0.0.1:PORT --api-listen 127.0.0.1:PORT)", err)
	}
	fmt.Fprintf(stdout, `bff dev is running.

  App (open this):        %s/
  OpenID Provider:        %s   (discovery: %s/.well-known/openid-configuration)
  Demo API (upstream):    %s   (proxied by the BFF at %s/api/)

Demo users (embedded provider only):
`, st.BFFURL, st.IssuerURL, st.IssuerURL, st.APIURL, st.BFFURL)
	for _, u := range st.Users {
		fmt.Fprintf(stdout, "  %-8s password %-8s roles %v\n", u.Username, u.Password, u.Roles)
	}
	fmt.Fprintln(stdout, "\nPress Ctrl+C to stop.")
	select {
	case <-ctx.Done():
	case err := <-st.Err():
		st.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return st.Shutdown(sctx)
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
