package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"syscall"

	"vigil/internal/app"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./data-demo", "where the demo keeps its configuration, recordings and journal")
	listen := fs.String("listen", "127.0.0.1:8080", "desk and API address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := app.Demo(ctx, app.DemoOptions{Dir: *dir, Listen: *listen, Out: stdout}); err != nil {
		fmt.Fprintln(stderr, "vigil demo:", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "vigil demo: %s is taken (another demo still running?): choose another address with -listen, e.g. "+
				"vigil demo -listen 127.0.0.1:8081, and a separate -dir (now %s) to run a second demo beside it\n", *listen, *dir)
		}
		return 1
	}
	return 0
}
