package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/alerts/redisjournal"
	"vigil/configs"
	"vigil/internal/app"
	"vigil/report"
)

// runReport writes the period's review report from the configured journal.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/vigil.yaml", "service configuration file")
	fromS := fs.String("from", "", "start of the period, RFC 3339 (required)")
	toS := fs.String("to", "", "end of the period, RFC 3339 (required)")
	out := fs.String("o", "", "output file (required): .xlsx, .csv or .html")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil report: "+format+"\n", a...)
		return 1
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if *fromS == "" || *toS == "" || *out == "" {
		return fail("usage: vigil report -config F -from T -to T -o report.xlsx|.csv|.html")
	}
	from, err := time.Parse(time.RFC3339Nano, *fromS)
	if err != nil {
		return fail("-from %q: not an RFC 3339 time such as 2026-11-16T00:00:00+08:00", *fromS)
	}
	to, err := time.Parse(time.RFC3339Nano, *toS)
	if err != nil {
		return fail("-to %q: not an RFC 3339 time such as 2026-12-01T00:00:00+08:00", *toS)
	}
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(*out)), ".")
	if report.ContentType(format) == "" {
		return fail("-o %q: the extension must be .xlsx, .csv or .html", *out)
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		return fail("%v", err)
	}
	j, err := openJournal(cfg)
	if err != nil {
		return fail("%v", err)
	}
	defer j.Close()
	e, err := alerts.New(alerts.Options{Journal: j})
	if err != nil {
		return fail("%v", err)
	}
	r, err := report.Build(ctx, report.Engine(e), from, to, app.ReportOptions(cfg))
	if err != nil {
		return fail("%v", err)
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fail("%v", err)
	}
	if err := r.Write(f, format); err != nil {
		f.Close()
		os.Remove(tmp)
		return fail("%v", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fail("%v", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "%s: %d alerts, %s to %s\n", *out, r.Current.Total, from.In(cfg.Location).Format(time.DateTime), to.In(cfg.Location).Format(time.DateTime))
	return 0
}

// openJournal opens the configured journal for reading. The embedded
// journal's file is locked by a running service: stop it, or use
// GET /api/v1/reports.
func openJournal(cfg *configs.Config) (alerts.Journal, error) {
	if cfg.Journal.Backend == configs.BackendRedis {
		r := cfg.Journal.Redis
		var tlsCfg *tls.Config
		if r.TLS {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return redisjournal.New(redisjournal.Options{Addr: r.Addr, Username: r.Username, Password: r.Password.Reveal(), DB: r.DB, TLS: tlsCfg})
	}
	j, err := boltjournal.Open(boltjournal.Options{Path: cfg.Journal.Path, OpenTimeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w (is the service running? it holds the journal; use GET /api/v1/reports instead)", err)
	}
	return j, nil
}
