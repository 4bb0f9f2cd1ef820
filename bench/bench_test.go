package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"
)

// These tests run each scenario's core with tiny parameters: they prove the
// programs still work (finish, sane JSON, zero loss where loss must be
// zero), not how fast Vigil is. Timing figures are never asserted.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is required (apt-get install %s): %v", b, b, err)
		}
	}
}

func mustJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIngestAndScale(t *testing.T) {
	need(t, "ffmpeg")
	o := ingestOpts{Cameras: 2, Mbps: 1, Size: "640x360", Duration: 3 * time.Second, Warmup: time.Second, Record: true, Fsync: "part"}
	r, err := ingestBench(t.Context(), quiet(), o)
	if err != nil {
		t.Fatal(err)
	}
	m := mustJSON(t, r)
	if r.FramesReceived == 0 || r.FramesRecorded == 0 || r.Lost != 0 || r.CPUMsPerSecPerStream <= 0 || r.Segments < 2 {
		t.Errorf("implausible ingest result: %v", m)
	}
	s, err := scaleBench(t.Context(), quiet(), o, []int{2}, 1.6)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 1 || s.Steps[0].FramesLost != 0 {
		t.Errorf("scale: %v", mustJSON(t, s))
	}
}

func TestAlerts(t *testing.T) {
	for _, tc := range []struct{ name, source string }{{"onvif", "onvif"}, {"hook", "hook"}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := alertsBench(t.Context(), quiet(), alertsOpts{Rate: 40, Cameras: 2, Clients: 3, Duration: 2 * time.Second, Journal: "embedded", Source: tc.source})
			if err != nil {
				t.Fatal(err)
			}
			if r.EventsSent < 40 || r.Missing != 0 || r.Duplicates != 0 || r.Delivered != r.Expected || r.Latency.P50 <= 0 {
				t.Errorf("alerts: %v", mustJSON(t, r))
			}
		})
	}
}

func TestAlertsRedis(t *testing.T) {
	need(t, "redis-server")
	r, err := alertsBench(t.Context(), quiet(), alertsOpts{Rate: 40, Cameras: 2, Clients: 2, Duration: 2 * time.Second, Journal: "redis", Source: "onvif"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Missing != 0 || r.Duplicates != 0 {
		t.Errorf("alerts on redis: %v", mustJSON(t, r))
	}
}

func TestExportCatalog(t *testing.T) {
	need(t, "ffmpeg")
	r, err := exportBench(t.Context(), quiet(), exportOpts{Footage: []time.Duration{time.Minute}, Repeat: 1, Days: 2, Cameras: 2, Listings: 10, Mbps: 1, Size: "640x360"})
	if r == nil {
		t.Fatal(err)
	}
	if !r.ExportAPI {
		// The export endpoint is not in every build yet; the catalog part
		// must still work.
		t.Logf("no export API: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	if r.CatalogLines != 2*2*1440 || r.ListingCold.P50 <= 0 {
		t.Errorf("export: %v", mustJSON(t, r))
	}
}

func TestFaults(t *testing.T) {
	need(t, "ffprobe", "redis-server")
	o := faultsOpts{Restarts: 2, Kills: 1, KillEvery: 3 * time.Second, KillCameras: 2, RedisStop: 2 * time.Second, AbuseRate: 200, AbuseFor: 2 * time.Second, SlowEvents: 30000}
	// slow-client is left to `go run ./bench faults`: whether the hub's queue
	// overflows before its ping deadline depends on how fast the drill can
	// raise events, which a loaded CI machine does not guarantee. The hub's
	// own tests cover 4008 and the closing handshake deterministically.
	// slow-bodies is left out for the same reason (it asserts /healthz
	// latency); internal/httpx and internal/app test its limits without
	// timing. tamper too: it asserts detection within one verify pass;
	// recorder and internal/app test the verifier without timing.
	for _, name := range []string{"camera-restarts", "vigil-kill", "redis-outage", "malformed"} {
		t.Run(name, func(t *testing.T) {
			o.Drill = name
			r, err := faultsBench(t.Context(), quiet(), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Failed) != 0 || r.Drills[name] == nil {
				t.Errorf("%s: %v", name, mustJSON(t, r))
			}
		})
	}
}

func TestUnknownScenarioAndDrill(t *testing.T) {
	if code := run([]string{"nope"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2", code)
	}
	if _, err := faultsBench(t.Context(), quiet(), faultsOpts{Drill: "nope"}); err == nil {
		t.Error("unknown drill accepted")
	}
}

func TestStats(t *testing.T) {
	r, err := statsBench(t.Context(), quiet(), statsOpts{Days: 2, Cameras: 5, PerDay: 10, Runs: 2, GroupBy: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Alerts != 100 || r.Total != 100 || r.Groups != 3 || len(r.RunsMs) != 2 {
		t.Errorf("stats: %v", mustJSON(t, r))
	}
}

func TestLive(t *testing.T) {
	need(t, "ffmpeg")
	o := liveOpts{Cameras: 1, Viewers: 2, Mbps: 1, Size: "640x360", Duration: 3 * time.Second, Baseline: time.Second, Snapshots: 1}
	r, err := liveBench(t.Context(), quiet(), o)
	if r == nil {
		t.Fatal(err)
	}
	// Loss at the viewers depends on the machine's load (the pion clients
	// share it); the program's own checks are what is tested here.
	if r.Frames == 0 || r.StartedAtKey != 2 || r.SnapshotN != 1 || r.DelaySamples == 0 {
		t.Errorf("implausible live result: %v (%v)", mustJSON(t, r), err)
	}
}

func TestTimeline(t *testing.T) {
	r, err := timelineBench(t.Context(), quiet(), timelineOpts{Alerts: 5, Holds: 2, Loads: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 5 alert holds beside the 2 manual ones
	if r.Segments != 1440 || r.Gaps != 4 || r.Alerts != 5 || r.Holds != 7 || r.Loads.Max <= 0 || r.CPUPerLoad <= 0 {
		t.Errorf("implausible timeline result: %v", mustJSON(t, r))
	}
}

func TestCluster(t *testing.T) {
	need(t, "redis-server")
	res, err := runCluster(t.Context(), []string{"-nodes", "2", "-cameras", "2", "-kills", "1"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	f, ok := res.(*clusterResult).Parts["failover"].(*failoverResult)
	if !ok || f.Kills != 1 || len(f.FailoverMs) != 1 || f.FailoverMsMax <= 0 || f.FootageGapMsMax <= 0 || f.CamerasPerKill != 1 {
		t.Errorf("implausible cluster result: %v", mustJSON(t, res))
	}
}
