package main

import (
	"context"
	"flag"
	"fmt"
	"io"

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
		return 1
	}
	return 0
}
