package app

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestReloadAppliesCameras: of three cameras one is removed, one added, one
// only gets a new name, site, grid and webhook secret; that one keeps its
// RTSP and recording sessions under its new labels, and a revoked token
// stops working.
func TestReloadAppliesCameras(t *testing.T) {
	sim := startCamsim(t, "cam/a", "cam/b", "cam/c")
	// A site a rule names must have a camera, before and after the reload.
	cfg := simConfig(t, sim, map[string]string{"a": "hall", "b": "key-site"})
	a := startApp(t, cfg, io.Discard)
	waitFor(t, 10*time.Second, "a and b online", func() bool {
		return cameraStatus(t, a, "a") == "online" && cameraStatus(t, a, "b") == "online"
	})
	// Let a's recording get going before the reload.
	waitFor(t, 15*time.Second, "a recorded", func() bool {
		segs, _, _ := a.recorder.Catalog().List("a", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return len(segs) > 0
	})
	// A desk's alert stream, open before its token is revoked.
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream",
		http.Header{"Authorization": {"Bearer " + deskToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.ReadJSON(&struct{}{}); err != nil {
		t.Fatalf("hello: %v", err)
	}
	reloaded := time.Now()

	cams := "cameras:\n" +
		"  - {id: a, name: Gate A, site: yard, grid: G2, url: \"" + sim.URL("cam/a") + "\", transport: tcp, events: {webhook_secret: new-secret-0123456789}}\n" +
		"  - {id: c, name: c, site: key-site, url: \"" + sim.URL("cam/c") + "\", transport: tcp}\n"
	if err := os.WriteFile(cfg.CamerasPath, []byte(cams), 0o600); err != nil {
		t.Fatal(err)
	}
	// The desk token is revoked in the same reload.
	vigil, _ := os.ReadFile(cfg.Path)
	lines := strings.Split(string(vigil), "\n")
	var kept []string
	for _, l := range lines {
		if !strings.Contains(l, "name: desk-1") {
			kept = append(kept, l)
		}
	}
	os.WriteFile(cfg.Path, []byte(strings.Join(kept, "\n")), 0o600)

	code, body := call(t, "POST", a.URL()+"/api/v1/admin/reload", adminToken, "")
	if code != 200 || !strings.Contains(body, `"added":["c"]`) || !strings.Contains(body, `"removed":["b"]`) || !strings.Contains(body, `"changed":["a"]`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, _ := call(t, "GET", a.URL()+"/api/v1/cameras", deskToken, ""); code != 401 {
		t.Fatalf("revoked desk token: %d", code)
	}
	// The open stream is closed too, and cannot come back with that token.
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m struct{ Kind string }
		err := ws.ReadJSON(&m)
		if err == nil {
			continue // messages sent before the reload
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("the revoked token's stream: %v, want close 1001", err)
		}
		break
	}
	if _, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream",
		http.Header{"Authorization": {"Bearer " + deskToken}}); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("reconnect with the revoked token: %v %v", resp, err)
	}
	waitFor(t, 10*time.Second, "c online, b gone", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/cameras", invToken, "")
		return strings.Contains(body, `"id":"c","name":"c","site":"key-site","grid":"","status":"online"`) && !strings.Contains(body, `"id":"b"`)
	})
	a.camMu.Lock()
	_, recB := a.recSubs["b"]
	_, recC := a.recSubs["c"]
	a.camMu.Unlock()
	if recB || !recC {
		t.Fatalf("recording subscriptions after reload: b %v c %v", recB, recC)
	}
	// a got new labels in place: no reconnect, vigil_camera_up moved to the
	// new site.
	if st, err := a.streams.Status("a"); err != nil || st.Name != "Gate A" || st.Site != "yard" || st.Grid != "G2" || st.Reconnects != 0 {
		t.Fatalf("a after the reload: %+v %v", st, err)
	}
	waitFor(t, 15*time.Second, "vigil_camera_up of a under site yard only", func() bool {
		mfs, err := a.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		sites := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "vigil_camera_up" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["camera"] == "a" {
					sites[l["site"]] = m.GetGauge().GetValue()
				}
			}
		}
		_, old := sites["hall"]
		return !old && sites["yard"] == 1
	})
	// a's recording was not restarted, and the new secret works.
	if code, body := call(t, "POST", a.URL()+"/api/v1/hooks/a/events?key=new-secret-0123456789", "", `{"type":"motion","state":"active"}`); code != http.StatusAccepted {
		t.Fatalf("hook with the new secret: %d %s", code, body)
	}
	// Had a's recording restarted, the segment open at the reload would have
	// been cut and the next one would start at a later keyframe: a gap.
	waitFor(t, 15*time.Second, "two segments of a after the reload", func() bool {
		segs, _, _ := a.recorder.Catalog().List("a", reloaded, time.Now().Add(time.Hour))
		n := 0
		for _, s := range segs {
			if s.Start.After(reloaded) {
				n++
			}
		}
		return n >= 2
	})
	segs, gaps, err := a.recorder.Catalog().List("a", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 0 {
		t.Fatalf("camera a has gaps after a reload that only changed labels and secret: %v (segments %d)", gaps, len(segs))
	}
}
