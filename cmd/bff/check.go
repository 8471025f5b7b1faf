package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/oidc"
)

// errCheckFailed is returned when config check found problems (printed).
var errCheckFailed = errors.New("configuration check failed")

func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("config check", stderr)
	path := fs.String("config", getenv("BFF_CONFIG"), "configuration file (or BFF_CONFIG)")
	offline := fs.Bool("offline", false, "skip provider discovery")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "config check: --config FILE (or BFF_CONFIG) is required")
		return errUsage
	}
	cfg, err := config.Load(*path, getenv)
	var problems config.Problems
	if errors.As(err, &problems) {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(problems))
		for _, p := range problems {
			fmt.Fprintln(stderr, "  -", p)
		}
		return errCheckFailed
	}
	if err != nil {
		return err
	}
	if files := cfg.CheckFiles(); len(files) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(files))
		for _, p := range files {
			fmt.Fprintln(stderr, "  -", p)
		}
		return errCheckFailed
	}
	var discoveryErrs []string
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tURL\tISSUER\tCLIENT\tCOOKIE\tAPIS\tDISCOVERY")
	for _, a := range cfg.Apps {
		disc := "skipped"
		if !*offline {
			c := oidc.New(oidc.Config{Issuer: a.OIDC.Issuer, ClientID: a.OIDC.ClientID, ClientSecret: a.OIDC.ClientSecret,
				RedirectURL: a.OIDC.RedirectURL, Scopes: a.OIDC.Scopes, HTTPClient: &http.Client{Timeout: cfg.Limits.ProviderTimeout}})
			dctx, cancel := context.WithTimeout(ctx, cfg.Limits.ProviderTimeout)
			if err := c.Ready(dctx); err != nil {
				disc = "FAILED (below)"
				discoveryErrs = append(discoveryErrs, fmt.Sprintf("apps %s: %v", a.Name, err))
			} else {
				disc = "ok"
			}
			cancel()
		}
		var apis []string
		for _, api := range a.APIs {
			apis = append(apis, api.Prefix+" -> "+api.Upstream)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.URL, a.OIDC.Issuer, a.OIDC.ClientID, a.Cookie.Name, strings.Join(apis, ", "), disc)
	}
	_ = tw.Flush()
	keys := fmt.Sprintf("%d encryption key(s)", len(cfg.Session.Keys()))
	if len(cfg.Session.Keys()) == 0 {
		keys = "a random encryption key per process (sessions end at restart)"
	}
	store := cfg.Session.Store
	if store == "redis" {
		store += " " + cfg.Session.Redis.RedactedURL()
	}
	fmt.Fprintf(stdout, "\nsession store: %s, idle %s, absolute %s, %s\n", store, cfg.Session.IdleTimeout, cfg.Session.AbsoluteLifetime, keys)
	for _, e := range discoveryErrs {
		fmt.Fprintln(stderr, "discovery failed:", e)
	}
	if len(discoveryErrs) > 0 {
		return errCheckFailed
	}
	return nil
}
