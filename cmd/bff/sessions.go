package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"
)

// runSessions is `bff sessions list|revoke`: a client of the admin API.
func runSessions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 || (args[0] != "list" && args[0] != "revoke") {
		fmt.Fprint(stderr, "usage: bff sessions list --sub SUB [--app NAME]\n       bff sessions revoke (--sub SUB | --id ID) [--app NAME]\n")
		return errUsage
	}
	fs := newFlags("sessions "+args[0], stderr)
	admin := fs.String("admin", firstNonEmpty(getenv("BFF_ADMIN_URL"), "http://127.0.0.1:9090"), "admin listener URL (or BFF_ADMIN_URL)")
	token := fs.String("token", getenv("BFF_ADMIN_TOKEN"), "admin token (or BFF_ADMIN_TOKEN)")
	app := fs.String("app", "", "app name (optional with a single app)")
	sub := fs.String("sub", "", "the user's subject")
	id := fs.String("id", "", "one session's ID (revoke)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err)
	}
	q := url.Values{}
	if *app != "" {
		q.Set("app", *app)
	}
	method, path := http.MethodGet, "/admin/sessions"
	switch {
	case args[0] == "list" && *sub != "":
		q.Set("sub", *sub)
	case args[0] == "revoke" && *id != "":
		method, path = http.MethodDelete, "/admin/sessions/"+url.PathEscape(*id)
	case args[0] == "revoke" && *sub != "":
		method = http.MethodDelete
		q.Set("sub", *sub)
	default:
		fmt.Fprintln(stderr, "sessions: --sub (or --id for revoke) is required")
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, *admin+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API: %s: %s", resp.Status, body)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	if args[0] == "revoke" {
		var out struct {
			Revoked int `json:"revoked"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return fmt.Errorf("admin API answer: %w", err)
		}
		_, err := fmt.Fprintf(stdout, "revoked %d session(s)\n", out.Revoked)
		return err
	}
	var list struct {
		Sessions []struct {
			ID        string    `json:"id"`
			App       string    `json:"app"`
			Sub       string    `json:"sub"`
			CreatedAt time.Time `json:"createdAt"`
			ExpiresAt time.Time `json:"expiresAt"`
			LastSeen  time.Time `json:"lastSeen"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPP\tSUB\tCREATED\tLAST SEEN\tEXPIRES")
	for _, s := range list.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.App, s.Sub, s.CreatedAt.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339), s.ExpiresAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
