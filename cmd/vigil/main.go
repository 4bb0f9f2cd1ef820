// Command vigil is the video surveillance and alert ingestion service. main
// only parses flags, turns signals into a context and calls into the packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// command is one subcommand: it gets its arguments (after the subcommand
// name) and returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"version":      {"print version, Go version and module versions", runVersion},
		"check-config": {"validate vigil.yaml and the camera registry; print every problem", runCheckConfig},
		"camsim":       {"serve simulated cameras (RTSP, ONVIF events, faults) for demo, tests and bench", runCamsim},
		"demo":         {"the whole service with four simulated cameras, on the embedded journal", runDemo},
		"serve":        {"run the service: serve -config configs/vigil.yaml", runServe},
		"export":       {"export a time range as one MP4 with a manifest", runExport},
		"report":       {"the period's review report: report -config F -from T -to T -o report.xlsx|.csv|.html", runReport},
	}
}

func main() {
	// go-redis reports every failed dial through its own global logger; the
	// Redis journal already reports outages once, as state changes.
	redis.SetLogger(quietRedis{})
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// quietRedis drops go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		usage(stderr, cmds)
		return 2
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second signal exits at once.
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		os.Exit(1)
	}()
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
}
