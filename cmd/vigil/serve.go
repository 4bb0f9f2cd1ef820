package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"vigil/configs"
	"vigil/internal/app"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/vigil.yaml", "service configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		for _, e := range configs.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		if len(configs.Errors(err)) == 0 {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	log := app.NewLogger(os.Stderr, cfg.Log)
	a, err := app.New(app.Options{Config: cfg, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "vigil listening on %s\n", a.URL())
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}
