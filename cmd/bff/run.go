package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=…" (make
// build does); otherwise the module version or VCS revision is shown.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "development build " + s.Value
			}
		}
	}
	return "development build"
}

const usage = `usage: bff <command> [flags]

commands:
  dev                          start the embedded provider, the demo API and the BFF on localhost
  serve --config FILE          run the BFF with a configuration file
  config check --config FILE   validate a configuration and show a summary
  sessions list --sub SUB      list a user's sessions (admin API)
  sessions revoke --sub SUB | --id ID   end sessions (admin API)
  version                      print the version
`

// errUsage is returned for a bad command line; the usage was printed.
var errUsage = errors.New("bad usage")

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[1] {
	case "dev":
		return runDev(ctx, args[2:], getenv, stdout, stderr)
	case "serve":
		return runServe(ctx, args[2:], getenv, stdout, stderr)
	case "config":
		if len(args) < 3 || args[2] != "check" {
			fmt.Fprint(stderr, usage)
			return errUsage
		}
		return runCheck(ctx, args[3:], getenv, stdout, stderr)
	case "sessions":
		return runSessions(ctx, args[2:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "bff", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[1], usage)
		return errUsage
	}
}

// usageError turns a flag parsing error into errUsage; -h/--help stays
// flag.ErrHelp (the usage was printed; main exits 0).
func usageError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// newLogger builds the one logger of the process. zitadel/oidc logs
// through log/slog's default, which is pointed at it too.
func newLogger(w io.Writer, format, level string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05", NoColor: !isTerminal(w)}
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	l := zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	slog.SetDefault(slog.New(zerolog.NewSlogHandler(l)))
	return l
}

// isTerminal reports whether w is a character device (colours help there,
// and only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
