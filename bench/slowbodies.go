package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// drillSlowBodies opens o.TrickleConns unauthenticated POST /api/v1/session
// requests that send their body one byte a second, each reopened a second
// after the node closes it (an attacker keeping o.TrickleConns going, at a
// connection rate as slowhttptest's, not a connection flood), for
// o.TrickleFor, while a camera records: /healthz
// must answer within 100 ms throughout, no trickling connection may be held
// much past the body deadline (10 s), the unauthenticated connections stay
// under their cap, recording goes on and RSS stays bounded.
func drillSlowBodies(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	if o.TrickleConns <= 0 {
		o.TrickleConns = 300
	}
	if o.TrickleFor <= 0 {
		o.TrickleFor = 30 * time.Second
	}
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := simInProcess(ctx, e, 1, false)
	if err != nil {
		return nil, err
	}
	node, err := e.startNode(ctx, serviceConfig{Cameras: []cameraConfig{{ID: "cam-0", URL: sim.URL("cam/0"), Record: true}}})
	if err != nil {
		return nil, err
	}
	reg := node.app.Registry()
	base := node.app.URL()
	addr := node.app.Addr()
	maxConns := int(node.cfg.HTTP.MaxConns)
	frames := func() float64 { return counterWhere(reg, "vigil_ingest_frames_total", "camera", "cam-0") }
	var chk check
	if err := waitFor(ctx, 30*time.Second, func() bool { return frames() > 25 }); err != nil {
		chk.failf("cam-0 never delivered frames")
	}
	runtime.GC()
	before := sampleSelf()

	dctx, stop := context.WithTimeout(ctx, o.TrickleFor)
	defer stop()
	var (
		mu                 sync.Mutex
		held               []time.Duration // how long each trickling connection stayed open
		answered408, shed  int64
		connectErrs, bytes atomic.Int64
	)
	var wg sync.WaitGroup
	for range o.TrickleConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dctx.Err() == nil {
				d, status, err := trickle(dctx, addr, &bytes)
				if err != nil {
					connectErrs.Add(1)
					select { // the node refused or the backlog is full: try again shortly
					case <-dctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				if dctx.Err() != nil && status == 0 {
					return // ended by the drill, not by the node
				}
				mu.Lock()
				held = append(held, d)
				if status == http.StatusRequestTimeout {
					answered408++
				} else {
					shed++
				}
				mu.Unlock()
				select {
				case <-dctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}

	// /healthz from a monitoring client: a new connection every time, as
	// a load balancer's probe.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []int64 // microseconds
	failures := 0
	maxUnauth, maxOpen := 0.0, 0.0
	rssMax := before.rss
	f0 := frames()
	tick := time.NewTicker(50 * time.Millisecond)
	for i := 0; dctx.Err() == nil; i++ {
		select {
		case <-dctx.Done():
		case <-tick.C:
		}
		if dctx.Err() != nil {
			break
		}
		t0 := time.Now()
		resp, err := probe.Get(base + "/healthz")
		took := time.Since(t0)
		if err != nil || resp.StatusCode != 200 {
			failures++
		}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		lat = append(lat, took.Microseconds())
		if i%10 == 0 {
			maxUnauth = max(maxUnauth, counterWhere(reg, "vigil_http_connections", "state", "unauthenticated"))
			maxOpen = max(maxOpen, counterSum(reg, "vigil_http_connections"))
			rssMax = max(rssMax, sampleSelf().rss)
		}
	}
	tick.Stop()
	wg.Wait()
	recorded := frames() - f0
	runtime.GC()
	after := sampleSelf()

	slices.Sort(lat)
	mu.Lock()
	slices.Sort(held)
	heldMax := time.Duration(0)
	if len(held) > 0 {
		heldMax = held[len(held)-1]
	}
	heldP50 := time.Duration(0)
	if len(held) > 0 {
		heldP50 = held[len(held)/2]
	}
	r := map[string]any{
		"trickling_conns": o.TrickleConns, "seconds": o.TrickleFor.Seconds(), "max_conns": maxConns,
		"healthz_probes": len(lat), "healthz_failures": failures,
		"healthz_p50_ms": round(float64(pick(lat, 0.5))/1000, 2), "healthz_p99_ms": round(float64(pick(lat, 0.99))/1000, 2),
		"healthz_max_ms": round(float64(pick(lat, 1))/1000, 2),
		"trickles_ended": len(held), "answered_408": answered408, "shed": shed, "connect_errors": connectErrs.Load(),
		"held_p50_s": round(heldP50.Seconds(), 2), "held_max_s": round(heldMax.Seconds(), 2),
		"body_bytes_trickled":       bytes.Load(),
		"max_unauthenticated_conns": maxUnauth, "max_open_conns": maxOpen,
		"shed_total":                counterSum(reg, "vigil_http_connections_shed_total"),
		"frames_recorded_meanwhile": recorded,
		"rss_before_mib":            mib(before.rss), "rss_max_mib": mib(rssMax), "rss_after_mib": mib(after.rss),
	}
	mu.Unlock()
	if failures > 0 || len(lat) == 0 {
		chk.failf("%d of %d /healthz probes failed", failures, len(lat))
	}
	if m := pick(lat, 1); m > 100_000 {
		chk.failf("/healthz took %.1f ms at worst, want ≤ 100 ms", float64(m)/1000)
	}
	if heldMax > 15*time.Second {
		chk.failf("a trickling connection was held %.1f s", heldMax.Seconds())
	}
	if limit := float64(maxConns / 4); maxUnauth > limit+1 {
		chk.failf("%.0f unauthenticated connections open, cap %.0f", maxUnauth, limit)
	}
	if recorded < 25*o.TrickleFor.Seconds()/2 {
		chk.failf("cam-0 recorded only %.0f frames in %.0f s", recorded, o.TrickleFor.Seconds())
	}
	if rssMax-before.rss > 128<<20 {
		chk.failf("RSS grew by %.0f MiB", float64(rssMax-before.rss)/(1<<20))
	}
	return r, chk.err()
}

// trickle sends one POST /api/v1/session whose 1,000-byte body arrives a
// byte a second, until the node answers or closes the connection or ctx
// ends. It returns how long the connection was open and the status the
// node answered (0 when it closed without one).
func trickle(ctx context.Context, addr string, sent *atomic.Int64) (time.Duration, int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /api/v1/session HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		return time.Since(start), 0, nil
	}
	// The answer (or the close) is read while the body trickles.
	status := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < 999; i++ {
		select {
		case s := <-status:
			return time.Since(start), s, nil
		case <-ctx.Done():
			c.Close()
			return time.Since(start), 0, nil
		case <-tick.C:
		}
		if _, err := c.Write([]byte(" ")); err != nil {
			c.Close()
			return time.Since(start), <-status, nil
		}
		sent.Add(1)
	}
	c.Close()
	return time.Since(start), <-status, nil
}
