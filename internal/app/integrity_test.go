package app

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/recorder"
)

// recordClosedSegments writes a few closed segments of camera into dir, as
// an earlier run of the node would have, and returns them.
func recordClosedSegments(t *testing.T, dir, camera string) []recorder.Segment {
	t.Helper()
	clip, err := camsim.LoadClip(filepath.Join("..", "camsim", "testdata", "hall.h264"), 25)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(recorder.Options{Dir: dir, Segment: 2 * time.Second, Part: 500 * time.Millisecond, Fsync: recorder.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Camera(camera, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	w.OnStream(media.Stream{Camera: camera, Session: 1, Started: start,
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS, Width: clip.Width, Height: clip.Height}})
	for n := range 150 {
		fr := clip.Frames[n%len(clip.Frames)]
		dts := time.Duration(n) * clip.FrameDuration()
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, PTS: dts, DTS: dts, Key: fr.Key, Payload: fr.NALUs, Wall: start.Add(dts)})
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(camera, start, start.Add(time.Minute))
	if err != nil || len(segs) < 2 {
		t.Fatalf("recorded %d segments: %v", len(segs), err)
	}
	return segs
}

// A segment altered on disk is found by the node's verifier and raised as
// a critical recording_tampered alert on its camera; the listing marks it
// damaged and its manifest is refused.
func TestTamperedRecordingRaisesCriticalAlert(t *testing.T) {
	cfg := writeConfig(t, `  rules:
    - {match: {type: recording_tampered}, severity: critical, ack_within: 10m, resolve_within: 24h}
    - {match: {}, severity: minor, ack_within: 15m, resolve_within: 24h}
`)
	cfg.Storage.VerifyRate = 0 // no cap
	segs := recordClosedSegments(t, cfg.Storage.Dir, "hall-entrance")
	victim := segs[1]
	b, err := os.ReadFile(victim.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+100; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(victim.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, io.Discard)

	var list struct {
		Alerts []struct {
			Camera, Type, Severity string
			Detail                 map[string]string
		} `json:"alerts"`
	}
	waitFor(t, 15*time.Second, "the recording_tampered alert", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts?camera=hall-entrance", deskToken, "")
		json.Unmarshal([]byte(body), &list)
		return len(list.Alerts) > 0
	})
	al := list.Alerts[0]
	if al.Type != "recording_tampered" || al.Severity != "critical" || !strings.Contains(al.Detail["detail"], victim.ID) {
		t.Fatalf("alert %+v", al)
	}
	q := "?start=" + segs[0].Start.Format(time.RFC3339Nano) + "&end=" + segs[len(segs)-1].End.Format(time.RFC3339Nano)
	code, body := call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance/recordings"+q, invToken, "")
	if code != 200 || !strings.Contains(body, `"id":"`+victim.ID+`"`) || strings.Count(body, `"damaged":true`) != 1 {
		t.Errorf("listing: %d %s", code, body)
	}
	code, body = call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance/export/manifest"+q, invToken, "")
	if code != 409 || !strings.Contains(body, `"code":"integrity"`) {
		t.Errorf("manifest: %d %s", code, body)
	}
	_, scrape := call(t, "GET", a.URL()+"/metrics", adminToken, "")
	if !strings.Contains(scrape, "vigil_recording_integrity_failures_total 1") {
		t.Errorf("scrape lacks the failure count")
	}
}

// Through the whole node: a segment altered after the verifier's pass is
// caught by the download itself, which is cut rather than completed, and
// audited as an integrity failure.
func TestTamperedDownloadAbortedEndToEnd(t *testing.T) {
	cfg := writeConfig(t, "")
	cfg.Storage.VerifyRate = 0
	cfg.Storage.VerifyEvery = 24 * time.Hour // one pass, at start
	segs := recordClosedSegments(t, cfg.Storage.Dir, "hall-entrance")
	a := startApp(t, cfg, io.Discard)
	waitFor(t, 15*time.Second, "the first verify pass", func() bool {
		_, scrape := call(t, "GET", a.URL()+"/metrics", adminToken, "")
		return strings.Contains(scrape, "vigil_recording_verified_bytes_total ") && !strings.Contains(scrape, "vigil_recording_verified_bytes_total 0\n")
	})
	victim := segs[0]
	b, err := os.ReadFile(victim.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+100; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(victim.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", a.URL()+"/api/v1/cameras/hall-entrance/recordings/"+victim.ID, nil)
	req.Header.Set("Authorization", "Bearer "+invToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if readErr == nil && int64(len(body)) == victim.Bytes {
		t.Fatalf("tampered segment downloaded whole: status %d, %d bytes", resp.StatusCode, len(body))
	}
	waitFor(t, 10*time.Second, "the audited integrity failure", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/audit?limit=100", adminToken, "")
		return strings.Contains(body, `"integrity":"failed"`) && strings.Contains(body, victim.ID)
	})
	code, body2 := call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance/recordings/"+victim.ID, invToken, "")
	if code != 409 || !strings.Contains(body2, `"code":"integrity"`) {
		t.Errorf("second download: %d %s", code, body2)
	}
}
