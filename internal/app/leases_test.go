package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/cluster"
	"vigil/configs"
	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

// Event pulls run on the holder of the camera only; a device's on the
// holder of its first camera.
func TestStreamSpecsOnlyOnTheHolder(t *testing.T) {
	cfg := &configs.Config{
		Cameras: []configs.Camera{
			{ID: "gate", Enabled: true, URL: "rtsp://192.0.2.1/", Events: configs.CameraEvents{ONVIFPullPoint: true}},
			{ID: "hall", Enabled: true, URL: "rtsp://192.0.2.2/", Events: configs.CameraEvents{HikvisionStream: true}},
			{ID: "ch-1", Enabled: true, URL: "rtsp://192.0.2.3/"},
			{ID: "ch-2", Enabled: true, URL: "rtsp://192.0.2.3/"},
		},
		Devices: []configs.Device{{ID: "nvr-1", Kind: configs.PullHikvision, URL: "http://192.0.2.3", Stream: true,
			Channels: map[string]string{"1": "ch-1", "2": "ch-2"}}},
	}
	for _, tc := range []struct {
		name string
		held []string
		want []string
	}{
		{"single node: all", nil, []string{"gate", "hall", "nvr-1"}},
		{"holder of gate", []string{"gate"}, []string{"gate"}},
		{"holder of the device's first camera", []string{"hall", "ch-1"}, []string{"hall", "nvr-1"}},
		{"holder of the device's second camera only", []string{"ch-2"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			holds := func(string) bool { return true }
			if tc.held != nil {
				holds = func(c string) bool { return slices.Contains(tc.held, c) }
			}
			got := slices.Sorted(maps.Keys(streamSpecs(cfg, holds)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("subscriptions %v, want %v", got, tc.want)
			}
		})
	}
}

// clusterSimConfig is simConfig on the Redis journal at addr as node id:
// cams as simConfig takes them.
func clusterSimConfig(t *testing.T, sim *camsim.Server, cams map[string]string, addr, id string) *configs.Config {
	t.Helper()
	cfg := simConfig(t, sim, cams)
	body, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(body), "journal: {path: ./journal.db}",
		"journal: {backend: redis, path: ./journal.db, redis: {addr: \""+addr+"\"}}", 1)
	s += "node: {id: " + id + ", zone: town, advertise_url: \"http://127.0.0.1:1\"}\n"
	if err := os.WriteFile(cfg.Path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = configs.Load(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Two nodes on one Redis share four cameras: each pulls and records only
// the two it holds, under its node ID and lease epoch; the others show
// disabled on it; vigil_cluster_cameras_held counts them; and no failover
// or lost lease raises camera_offline.
func TestClusterNodesRecordOnlyHeldCameras(t *testing.T) {
	r := testutil.StartRedis(t)
	sim := startCamsim(t, "cam/c0", "cam/c1", "cam/c2", "cam/c3")
	ids := []string{"c0", "c1", "c2", "c3"}
	cams := map[string]string{"c0": "key-site", "c1": "hall", "c2": "hall", "c3": "hall"} // the test rules name key-site
	a := startApp(t, clusterSimConfig(t, sim, cams, r.Addr(), "a"), io.Discard)
	b := startApp(t, clusterSimConfig(t, sim, cams, r.Addr(), "b"), io.Discard)
	held := func(x *App) []string { h, _ := x.heldAndRecording(); return h }
	recording := func(x *App) []string { _, rec := x.heldAndRecording(); return rec }
	waitFor(t, 20*time.Second, "two cameras recording on each node", func() bool {
		return len(recording(a)) == 2 && len(recording(b)) == 2 && len(held(a)) == 2 && len(held(b)) == 2
	})
	if got := slices.Sorted(slices.Values(append(held(a), held(b)...))); !slices.Equal(got, ids) {
		t.Fatalf("held by a %v and b %v", held(a), held(b))
	}
	for _, x := range []*App{a, b} {
		if v := gaugeValue(t, x, "vigil_cluster_cameras_held"); v != 2 {
			waitFor(t, 5*time.Second, "vigil_cluster_cameras_held at 2", func() bool { return gaugeValue(t, x, "vigil_cluster_cameras_held") == 2 })
		}
		mine := held(x)
		for _, id := range ids {
			st, err := x.streams.Status(id)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(mine, id) != (st.Status != "disabled") {
				t.Errorf("node %s: camera %s status %s, held %v", x.nodeID, id, st.Status, mine)
			}
		}
	}
	// Segments close every 2 s: each node's index lines are its own
	// cameras', with its ID and an epoch.
	waitFor(t, 15*time.Second, "an indexed segment per camera", func() bool {
		for _, x := range []*App{a, b} {
			for _, id := range held(x) {
				segs, _, _ := x.recorder.Catalog().List(id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				if len(segs) == 0 {
					return false
				}
			}
		}
		return true
	})
	// Every index line names its node and epoch (a node that started
	// first recorded every camera until the other joined and took its
	// share: those lines are its own too).
	for _, x := range []*App{a, b} {
		files, _ := filepath.Glob(filepath.Join(x.config().Storage.Dir, "*", "*", "index.jsonl"))
		for _, f := range files {
			body, _ := os.ReadFile(f)
			for line := range strings.Lines(string(body)) {
				var rec struct {
					Node  string
					Epoch int64
				}
				if json.Unmarshal([]byte(line), &rec) != nil || rec.Node != x.nodeID || rec.Epoch < 1 {
					t.Errorf("node %s: index line %s", x.nodeID, line)
				}
			}
		}
	}
	code, body := call(t, "GET", a.URL()+"/api/v1/alerts?camera=c0", deskToken, "")
	if code != 200 || strings.Contains(body, "camera_offline") {
		t.Fatalf("alerts: %d %s", code, body)
	}
}

// withIngestOfflineAfter is cfg with ingest.offline_after set to d.
func withIngestOfflineAfter(t *testing.T, cfg *configs.Config, d string) *configs.Config {
	t.Helper()
	f, err := os.OpenFile(cfg.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("ingest: {offline_after: " + d + "}\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = configs.Load(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A camera_offline raised by the node recording the camera ends when the
// camera records again on the node its lease moved to: the new holder
// adopts the alert (it started before the alert was raised, so it did not
// load it) and its first session with the camera ends it. No second
// camera_offline is raised for the same outage.
func TestOfflineAlertEndsOnTheNewHolder(t *testing.T) {
	r := testutil.StartRedis(t)
	sim := startCamsim(t, "cam/gate")
	cams := map[string]string{"gate": "key-site"} // the test rules name key-site
	holder := cluster.Assign([]cluster.Camera{{ID: "gate"}}, []cluster.Node{{ID: "a", Zone: "town"}, {ID: "b", Zone: "town"}})["gate"]
	next := map[string]string{"a": "b", "b": "a"}[holder]
	// The holder reports the outage at once; the next holder would only
	// after a minute, so that its first session with the camera is what
	// ends the alert.
	h, err := New(Options{Config: withIngestOfflineAfter(t, clusterSimConfig(t, sim, cams, r.Addr(), holder), "1s"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stopHolder := runStoppableApp(t, h)
	o := startApp(t, withIngestOfflineAfter(t, clusterSimConfig(t, sim, cams, r.Addr(), next), "1m"), io.Discard)
	waitFor(t, 30*time.Second, "gate recording on "+holder, func() bool {
		_, rec := h.heldAndRecording()
		held, _ := o.heldAndRecording()
		return slices.Equal(rec, []string{"gate"}) && len(held) == 0
	})

	type alert struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Signal string `json:"signal"`
		Count  int    `json:"count"`
	}
	offline := func() []alert {
		code, body := call(t, "GET", o.URL()+"/api/v1/alerts?camera=gate", deskToken, "")
		var l struct{ Alerts []alert }
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("alerts: %d %s", code, body)
		}
		var out []alert
		for _, a := range l.Alerts {
			if a.Type == "camera_offline" {
				out = append(out, a)
			}
		}
		return out
	}
	if err := sim.Fault("cam/gate", camsim.FaultStop); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "camera_offline raised by "+holder, func() bool {
		as := offline()
		return len(as) == 1 && as[0].Signal == "active"
	})
	raised := offline()[0]

	// The holder stops while the camera is down; the camera comes back
	// and the lease moves to the other node.
	stopHolder()
	if err := sim.Fault("cam/gate", camsim.FaultRestart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 40*time.Second, "gate recording on "+next, func() bool {
		_, rec := o.heldAndRecording()
		return slices.Equal(rec, []string{"gate"})
	})
	waitFor(t, 15*time.Second, "the camera_offline ended by "+next, func() bool {
		as := offline()
		return len(as) == 1 && as[0].ID == raised.ID && as[0].Signal == "ended"
	})
}

// A node taking many cameras' leases at once applies them to ingest and
// the recorder once, not once per camera (which made a start with N
// cameras cost N applies of the whole registry).
func TestLeasesTakenTogetherAppliedOnce(t *testing.T) {
	r := testutil.StartRedis(t)
	const n = 12
	var cams strings.Builder
	cams.WriteString("cameras:\n")
	for i := range n {
		fmt.Fprintf(&cams, "  - {id: cam-%02d, name: cam-%02d, site: hall, url: \"rtsp://127.0.0.1:1/cam/%d\"}\n", i, i, i)
	}
	cfg := writeConfigFiles(t, "node: {id: a, zone: town, advertise_url: \"http://127.0.0.1:1\"}\n", cams.String())
	body, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), "journal: {path: ./journal.db}",
		"journal: {backend: redis, path: ./journal.db, redis: {addr: \""+r.Addr()+"\"}}", 1))
	if err := os.WriteFile(cfg.Path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = configs.Load(cfg.Path); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	a := startApp(t, cfg, logs)
	waitFor(t, 20*time.Second, "every camera held and pulled", func() bool {
		held, _ := a.heldAndRecording()
		if len(held) != n {
			return false
		}
		for _, id := range held {
			if st, err := a.streams.Status(id); err != nil || st.Status == "disabled" {
				return false
			}
		}
		return true
	})
	// At start every camera is registered disabled (one apply), then the
	// tick that took the leases enables them all (one more).
	applied := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `msg="cameras applied"`) {
			applied++
		}
	}
	if applied > 2 {
		t.Fatalf("%d applies of the cameras for %d leases taken in one tick, want at most 2", applied, n)
	}
}
