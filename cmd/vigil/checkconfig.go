package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"vigil/configs"
)

// runCheckConfig validates a configuration: every problem goes to stderr as
// "file:line:col: path: message", one per line, and the exit code is 1; a
// valid configuration prints its warnings ("file:line:col: path: warning:
// message") to stderr, a one-line summary to stdout and exits 0.
func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/vigil.yaml", "service configuration `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "check-config: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := configs.LoadEnv(*path, os.LookupEnv)
	if err != nil {
		problems := configs.Errors(err)
		if len(problems) == 0 {
			fmt.Fprintf(stderr, "check-config: %v\n", err)
			return 1
		}
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		if len(problems) > 1 {
			fmt.Fprintf(stderr, "%d problems\n", len(problems))
		}
		return 1
	}
	if cfg == nil {
		fmt.Fprintln(stderr, errors.New("check-config: no configuration"))
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "ok: %d cameras, %d units, %d rules\n", len(cfg.Cameras), len(cfg.Alerts.Units), len(cfg.Alerts.Rules))
	return 0
}
