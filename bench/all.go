package main

import (
	"context"
	"log/slog"
	"time"
)

type allResult struct {
	Scenario string            `json:"scenario"`
	Results  map[string]any    `json:"results"`
	Errors   map[string]string `json:"errors"`
}

// runAll runs every scenario with short defaults (a few minutes in all).
func runAll(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	res := &allResult{Scenario: "all", Results: map[string]any{}, Errors: map[string]string{}}
	note := func(name string, r any, err error) {
		if !isNil(r) {
			res.Results[name] = r
		}
		if err != nil {
			res.Errors[name] = err.Error()
		}
	}
	r1, err := ingestBench(ctx, log, ingestOpts{Cameras: 8, Mbps: 4, Size: "1920x1080", Duration: 15 * time.Second, Warmup: 3 * time.Second, Record: true, Fsync: "part"})
	note("ingest", r1, err)
	r2, err := alertsBench(ctx, log, alertsOpts{Rate: 200, Cameras: 8, Clients: 10, Duration: 10 * time.Second, Journal: "embedded", Source: "onvif"})
	note("alerts", r2, err)
	r3, err := exportBench(ctx, log, exportOpts{Footage: []time.Duration{2 * time.Minute}, Repeat: 1, Days: 3, Cameras: 4, Listings: 20, Mbps: 4, Size: "1920x1080"})
	note("export", r3, err)
	r4, err := scaleBench(ctx, log, ingestOpts{Mbps: 4, Size: "1920x1080", Duration: 10 * time.Second, Warmup: 3 * time.Second, Record: true, Fsync: "part"}, []int{8, 16}, 1.6)
	note("scale", r4, err)
	r5, err := faultsBench(ctx, log, faultsOpts{Drill: "all", Restarts: 3, Kills: 2, KillEvery: 5 * time.Second, KillCameras: 2, RedisStop: 5 * time.Second, AbuseRate: 300, AbuseFor: 3 * time.Second, SlowEvents: 30000, TrickleConns: 300, TrickleFor: 12 * time.Second})
	note("faults", r5, err)
	if len(res.Errors) > 0 {
		return res, errString(res.Errors)
	}
	return res, nil
}

type errString map[string]string

func (e errString) Error() string {
	s := ""
	for k, v := range e {
		s += k + ": " + v + "; "
	}
	return s
}
