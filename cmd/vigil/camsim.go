package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"vigil/internal/camsim"
)

// runCamsim serves simulated cameras until the context ends.
func runCamsim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP address")
	udp := fs.String("udp", "", "even UDP port address for RTP (RTCP on the next port); empty picks a free pair")
	control := fs.String("control", "127.0.0.1:8555", "HTTP control address (loopback only); empty for none")
	n := fs.Int("cameras", 4, "number of cameras at cam/0 … cam/{N-1}")
	names := fs.String("names", "", "comma-separated extra camera names, served at cam/{name}")
	clip := fs.String("clip", "", "H.264 clip to loop: MP4 or Annex B, starting with an IDR frame, no B-frames (default: the built-in 640x360 clip)")
	events := fs.String("events", "", "YAML event schedule")
	metadata := fs.Bool("metadata", true, "add the ONVIF metadata track to every camera")
	speed := fs.Float64("speed", 1, "pace relative to real time")
	vendorEvents := fs.String("vendor-events", "", "hikvision or dahua: every camera delivers its events through a Hikvision alertStream or Dahua eventManager attach endpoint (digest auth) instead of the metadata track")
	vendorListen := fs.String("vendor-listen", "127.0.0.1:8556", "HTTP address of the -vendor-events endpoints (loopback only)")
	vendorUser := fs.String("vendor-user", "admin", "account of the -vendor-events endpoints")
	vendorPassword := fs.String("vendor-password", "admin", "password of the -vendor-events endpoints")
	verbose := fs.Bool("v", false, "log every session and fault")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "camsim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	opts := camsim.Options{
		Listen:        *listen,
		UDPRTPAddress: *udp,
		Control:       *control,
		Cameras:       camsim.Cameras(*n, *metadata),
		Speed:         *speed,
		Logger:        slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	for _, name := range strings.Split(*names, ",") {
		if name = strings.TrimSpace(name); name != "" {
			opts.Cameras = append(opts.Cameras, camsim.CameraSpec{Path: "cam/" + name, Events: *metadata})
		}
	}
	if *vendorEvents != "" {
		opts.VendorListen, opts.VendorUser, opts.VendorPassword = *vendorListen, *vendorUser, *vendorPassword
		for i := range opts.Cameras {
			opts.Cameras[i].Vendor = *vendorEvents
		}
	}
	if *clip != "" {
		c, err := camsim.LoadClip(*clip, 0)
		if err != nil {
			fmt.Fprintf(stderr, "camsim: %v\n", err)
			return 1
		}
		opts.Clip = c
	}
	if *events != "" {
		sched, err := camsim.LoadSchedule(*events)
		if err != nil {
			fmt.Fprintf(stderr, "camsim: %v\n", err)
			return 1
		}
		opts.Schedule = sched
	}
	srv, err := camsim.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	for _, p := range srv.Paths() {
		if v := srv.VendorURL(p); v != "" {
			fmt.Fprintf(stdout, "%s  events: %s (events.url, %s_stream: true)\n", srv.URL(p), v, *vendorEvents)
			continue
		}
		fmt.Fprintln(stdout, srv.URL(p))
	}
	if a := srv.ControlAddr(); a != "" {
		fmt.Fprintf(stdout, "control: http://%s/trigger  http://%s/fault\n", a, a)
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "camsim: %v\n", err)
		return 1
	}
	return 0
}
