package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"vigil/configs"
	"vigil/internal/testutil"
)

// redisConfig is writeConfig on the Redis journal at addr, with its own
// data directory.
func redisConfig(t *testing.T, addr string) *configs.Config {
	t.Helper()
	cfg := writeConfig(t, "")
	dir := filepath.Dir(cfg.Path)
	body, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), "journal: {path: ./journal.db}",
		"journal: {backend: redis, path: ./journal.db, redis: {addr: \""+addr+"\"}}", 1))
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = configs.Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTwoNodesShareRedis: an alert raised on node A reaches a desk client
// of node B; an ack on B is seen on A.
func TestTwoNodesShareRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	nodeA := startApp(t, redisConfig(t, r.Addr()), io.Discard)
	nodeB := startApp(t, redisConfig(t, r.Addr()), io.Discard)

	hdr := http.Header{"Authorization": {"Bearer " + deskToken}}
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+nodeB.Addr()+"/api/v1/alerts/stream", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg struct {
		Kind  string `json:"kind"`
		Seq   uint64 `json:"seq"`
		Alert struct {
			ID      string `json:"id"`
			Camera  string `json:"camera"`
			Version int64  `json:"version"`
			Status  string `json:"status"`
		} `json:"alert"`
	}
	if err := ws.ReadJSON(&msg); err != nil || msg.Kind != "hello" {
		t.Fatalf("hello: %v %+v", err, msg)
	}

	if code, body := call(t, "POST", nodeA.URL()+"/api/v1/hooks/hall-entrance/events?key="+hookSecret, "",
		`{"type":"motion","state":"active"}`); code != 202 {
		t.Fatalf("hook on A: %d %s", code, body)
	}
	for msg.Kind != "raised" {
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("B's stream: %v", err)
		}
	}
	if msg.Alert.Camera != "hall-entrance" {
		t.Fatalf("raised on B: %+v", msg)
	}
	// Wait for the raise's follow-up changes to settle, then ack on B.
	var version int64
	waitFor(t, 15*time.Second, "the alert on B", func() bool {
		code, body := call(t, "GET", nodeB.URL()+"/api/v1/alerts/"+msg.Alert.ID, deskToken, "")
		var al struct{ Version int64 }
		json.Unmarshal([]byte(body), &al)
		version = al.Version
		return code == 200
	})
	if code, body := call(t, "POST", nodeB.URL()+"/api/v1/alerts/"+msg.Alert.ID+"/ack", deskToken,
		fmt.Sprintf(`{"note":"B took it","version":%d}`, version)); code != 200 {
		t.Fatalf("ack on B: %d %s", code, body)
	}
	waitFor(t, 15*time.Second, "the ack seen on A", func() bool {
		_, body := call(t, "GET", nodeA.URL()+"/api/v1/alerts/"+msg.Alert.ID, deskToken, "")
		return strings.Contains(body, `"status":"acknowledged"`) && strings.Contains(body, "B took it")
	})
}

// TestRedisDownAtStart: with Redis unreachable the node still serves,
// pulls and records its cameras; the journal reports degraded; a camera
// event meanwhile becomes an alert in the local spool (on disk, not in
// memory), and in the journal once Redis is there.
func TestRedisDownAtStart(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	cfg.Journal.Backend = "redis"
	cfg.Journal.Redis.Addr = r.Addr()
	a := startApp(t, cfg, io.Discard)

	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	waitFor(t, 15*time.Second, "a recorded segment", func() bool {
		segs, _, _ := a.recorder.Catalog().List("gate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return len(segs) > 0
	})
	code, body := call(t, "GET", a.URL()+"/readyz", "", "")
	if code != 200 || !strings.Contains(body, "degraded") {
		t.Fatalf("readyz with Redis down: %d %s", code, body)
	}
	if _, err := sim.Trigger("cam/gate", "intrusion", "active"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the alert in the spool", func() bool { return gaugeValue(t, a, "vigil_journal_spool_events") >= 1 })

	r.Restart()
	waitFor(t, 20*time.Second, "the journal back", func() bool {
		_, body := call(t, "GET", a.URL()+"/readyz", "", "")
		return strings.Contains(body, `"journal":"ok"`)
	})
	// The desk's live stream works once the journal is back.
	var ws *websocket.Conn
	waitFor(t, 15*time.Second, "the desk stream", func() bool {
		c, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream",
			http.Header{"Authorization": {"Bearer " + deskToken}})
		ws = c
		return err == nil
	})
	defer ws.Close()
	waitFor(t, 15*time.Second, "the alert raised during the outage in the journal", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts?camera=gate", deskToken, "")
		return strings.Contains(body, `"type":"intrusion"`)
	})
	// The desk's live stream carries what the camera sends now: the same
	// intrusion again bumps that alert.
	if _, err := sim.Trigger("cam/gate", "intrusion", "active"); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg struct{ Kind string }
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("desk stream after the outage: %v", err)
		}
		if msg.Kind == "raised" || msg.Kind == "updated" {
			break
		}
	}
}

// gaugeValue is the sum of a gauge's series in a's registry.
func gaugeValue(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetGauge().GetValue()
			}
		}
	}
	return v
}

// nodeConfig is redisConfig for a node named id in zone.
func nodeConfig(t *testing.T, addr, id, zone string) *configs.Config {
	t.Helper()
	cfg := redisConfig(t, addr)
	body, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	body = append(body, []byte("node: {id: "+id+", zone: "+zone+", advertise_url: \"http://127.0.0.1:1\"}\n")...)
	if err := os.WriteFile(cfg.Path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = configs.Load(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNodesListedAcrossTheCluster: nodes on one Redis list each other with
// zone, cameras and registry hash; the embedded node lists itself alone;
// only admins may ask.
func TestNodesListedAcrossTheCluster(t *testing.T) {
	r := testutil.StartRedis(t)
	town := startApp(t, nodeConfig(t, r.Addr(), "town-1", "town"), io.Discard)
	startApp(t, nodeConfig(t, r.Addr(), "village-3", "village-3"), io.Discard)
	type list struct {
		Cluster bool `json:"cluster"`
		Nodes   []struct {
			ID              string   `json:"id"`
			Zone            string   `json:"zone"`
			Cameras         []string `json:"cameras"`
			RegistryHash    string   `json:"registry_hash"`
			RegistryDiffers bool     `json:"registry_differs"`
		} `json:"nodes"`
	}
	var l list
	// The two cameras have no zone: one each.
	waitFor(t, 15*time.Second, "both nodes listed, holding a camera each", func() bool {
		code, body := call(t, "GET", town.URL()+"/api/v1/nodes", adminToken, "")
		l = list{}
		return code == 200 && json.Unmarshal([]byte(body), &l) == nil && len(l.Nodes) == 2 &&
			len(l.Nodes[0].Cameras) == 1 && len(l.Nodes[1].Cameras) == 1 && l.Nodes[0].Cameras[0] != l.Nodes[1].Cameras[0]
	})
	if !l.Cluster || l.Nodes[0].ID != "town-1" || l.Nodes[1].ID != "village-3" || l.Nodes[1].Zone != "village-3" {
		t.Fatalf("nodes %+v", l)
	}
	for _, n := range l.Nodes {
		if len(n.RegistryHash) != 64 || len(n.Cameras) == 0 {
			t.Errorf("node %+v", n)
		}
	}
	if code, _ := call(t, "GET", town.URL()+"/api/v1/nodes", deskToken, ""); code != 403 {
		t.Fatalf("nodes as desk: %d", code)
	}
	waitFor(t, 10*time.Second, "vigil_cluster_nodes at 2", func() bool { return gaugeValue(t, town, "vigil_cluster_nodes") == 2 })

	alone := startApp(t, writeConfig(t, ""), io.Discard)
	code, body := call(t, "GET", alone.URL()+"/api/v1/nodes", adminToken, "")
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.Cluster || len(l.Nodes) != 1 {
		t.Fatalf("embedded node: %d %s", code, body)
	}
}
