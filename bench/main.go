// Command bench runs Vigil's benchmarks and fault drills on loopback:
//
//	go run ./bench <ingest|alerts|export|live|scale|faults|timeline|stats|cluster|all> [flags]
//
// Each scenario starts its own simulated cameras, Vigil node and, where
// asked, redis-server; prints one JSON line of results on stdout and a
// human summary on stderr; and is bounded in time. docs/performance.md
// records the results and how to read them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"
)

// scenario is one benchmark or drill: it parses its flags and returns the
// result to print as JSON.
type scenario struct {
	summary string
	run     func(ctx context.Context, args []string, log *slog.Logger) (any, error)
}

func scenarios() map[string]scenario {
	return map[string]scenario{
		"ingest":          {"N cameras at B Mbit/s, recorded: CPU and RSS per stream, frames sent/received/recorded", runIngest},
		"alerts":          {"R events/s from ONVIF tracks to C websocket clients: end-to-end latency", runAlerts},
		"export":          {"export throughput and time to first byte for 1 h; catalog listing with 30 days x 32 cameras", runExport},
		"alertsnap":       {"N cameras raising alerts at once: event -> snapshot at the desk (p95 goal 1.5 s)", runAlertSnap},
		"live":            {"N cameras x M WHEP viewers at B Mbit/s: added latency, CPU per viewer, loss, first keyframe; snapshot latency", runLive},
		"scale":           {"largest N of 4 Mbit/s cameras recorded without loss under 1.6 cores", runScale},
		"faults":          {"fault drills: camera restarts, SIGKILL, Redis outage, slow client, malformed input", runFaults},
		"timeline":        {"one camera-day for the footage view (1,440 segments, 50 alerts, holds): recordings + alerts + holds load time", runTimeline},
		"stats":           {"alert statistics over 30 days x 100 cameras x 50 alerts/day from the embedded journal", runStats},
		"cluster":         {"3 nodes on one Redis: failover time and footage gap over 10 kill -9 of a camera's holder", runCluster},
		"cluster-footage": {"3 nodes on Redis: export of 1 h through another node vs directly, one camera-day listed across 3 nodes", runClusterFootage},
		"all":             {"every scenario with short defaults", runAll},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	all := scenarios()
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		usage(stderr, all)
		return 2
	}
	sc, ok := all[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "bench: unknown scenario %q\n", args[0])
		usage(stderr, all)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := sc.run(ctx, args[1:], log)
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", args[0], err)
		if isNil(res) {
			return 1
		}
	}
	b, merr := json.Marshal(res)
	if merr != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", args[0], merr)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	if err != nil {
		return 1
	}
	return 0
}

func usage(w io.Writer, all map[string]scenario) {
	fmt.Fprintln(w, "usage: go run ./bench <scenario> [flags]   (-h after a scenario lists its flags)")
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-7s %s\n", n, all[n].summary)
	}
}

// summary prints a human summary: a title and aligned key: value lines.
func summary(w io.Writer, title string, kv ...any) {
	fmt.Fprintf(w, "== %s\n", title)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(w, "  %-34s %v\n", fmt.Sprint(kv[i])+":", kv[i+1])
	}
}

// bounded returns a context that ends after d (plus the parent's end).
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// round keeps n significant decimals for JSON output.
func round(v float64, n int) float64 {
	p := 1.0
	for range n {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

func mib(b int64) float64 { return round(float64(b)/(1<<20), 2) }

// check is a list of failed expectations of a scenario.
type check []string

func (c *check) failf(format string, args ...any) { *c = append(*c, fmt.Sprintf(format, args...)) }
func (c check) err() error {
	if len(c) == 0 {
		return nil
	}
	return errors.New(strings.Join(c, "; "))
}

// isNil reports whether a scenario returned no result (a nil interface or a
// typed nil pointer).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
