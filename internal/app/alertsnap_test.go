package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/live"
)

// Every new alert gets the picture of its moment: the alert first, then an
// updated change with reason snapshot; the JPEG is served with the hash the
// alert carries, and a picture changed on disk is refused as evidence.
func TestAlertSnapshotEndToEnd(t *testing.T) {
	sim := startCamsim(t, "cam/gate")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site"}), io.Discard)
	if !a.Snapshots().Available() {
		t.Fatal("ffmpeg is required (Debian package ffmpeg)")
	}
	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream",
		http.Header{"Authorization": {"Bearer " + deskToken}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer ws.Close()
	var hello map[string]any
	if err := ws.ReadJSON(&hello); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Trigger("cam/gate", camsim.Intrusion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	type change struct {
		Kind   string       `json:"kind"`
		Reason string       `json:"reason"`
		Alert  alerts.Alert `json:"alert"`
	}
	var kinds []string
	var snapped alerts.Alert
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for snapped.Snapshot == nil {
		var c change
		if err := ws.ReadJSON(&c); err != nil {
			t.Fatalf("stream (seen %v): %v", kinds, err)
		}
		kinds = append(kinds, c.Kind+"/"+c.Reason)
		if c.Kind == "updated" && c.Reason == "snapshot" {
			snapped = c.Alert
		}
	}
	if kinds[0] != "raised/" {
		t.Fatalf("changes %v: the alert must be delivered before its snapshot", kinds)
	}
	s := snapped.Snapshot
	if s.URL != "/api/v1/alerts/"+snapped.ID+"/snapshot" || len(s.SHA256) != 64 || s.At.Before(snapped.RaisedAt.Add(-time.Minute)) {
		t.Fatalf("snapshot %+v of alert raised at %v", s, snapped.RaisedAt)
	}
	code, ct, img := getJPEG(t, a.URL()+s.URL, deskToken)
	if code != 200 || ct != "image/jpeg" {
		t.Fatalf("alert snapshot: %d %s", code, ct)
	}
	if sum := sha256.Sum256(img); hex.EncodeToString(sum[:]) != s.SHA256 {
		t.Fatal("the served snapshot does not match the alert's hash")
	}
	if p, err := jpeg.Decode(bytes.NewReader(img)); err != nil || p.Bounds().Dx() != 640 {
		t.Fatalf("alert snapshot does not decode at 640 wide: %v", err)
	}
	// The alert as stored carries it too.
	code, body := call(t, "GET", a.URL()+"/api/v1/alerts/"+snapped.ID, invToken, "")
	var stored alerts.Alert
	if code != 200 || json.Unmarshal([]byte(body), &stored) != nil || stored.Snapshot == nil || stored.Snapshot.SHA256 != s.SHA256 {
		t.Fatalf("stored alert: %d %s", code, body)
	}
	// Evidence: a picture changed on disk is refused, not served.
	path := a.alertSnaps.path("gate", s.At)
	if err := os.WriteFile(path, append(img, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "GET", a.URL()+s.URL, deskToken, ""); code != 409 || !strings.Contains(body, `"integrity"`) {
		t.Fatalf("tampered snapshot: %d %s", code, body)
	}
	if code, _ := call(t, "GET", a.URL()+"/api/v1/alerts/NOPE/snapshot", deskToken, ""); code != 404 {
		t.Fatalf("unknown alert: %d", code)
	}
}

// Without ffmpeg alerts still flow, and an alert's snapshot answers 503.
func TestAlertsFlowWithoutFFmpeg(t *testing.T) {
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	t.Setenv("PATH", "")
	a := startApp(t, cfg, io.Discard)
	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	if _, err := sim.Trigger("cam/gate", camsim.Intrusion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	var list alertList
	waitFor(t, 15*time.Second, "the alert without ffmpeg", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts", deskToken, "")
		list = alertList{}
		json.Unmarshal([]byte(body), &list)
		return len(list.Alerts) == 1
	})
	if code, body := call(t, "GET", a.URL()+"/api/v1/alerts/"+list.Alerts[0].ID+"/snapshot", deskToken, ""); code != 503 || !strings.Contains(body, "snapshots_unavailable") {
		t.Fatalf("alert snapshot without ffmpeg: %d %s", code, body)
	}
}

// An alert's picture is the keyframe of its moment even when ffmpeg is
// busy: the keyframe is held as soon as it arrives, and only the decoding
// waits for a free decoder. Four alerts at once, two decoders that each
// take two seconds, the next keyframe a second into them: all four pictures
// are of the keyframe that followed the raise, not of the one that came
// while the first two were decoding (the third and fourth alerts' keyframes
// were taken only once a decoder was free).
func TestAlertSnapshotsHoldTheMomentWhileDecodersAreBusy(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is required (Debian package ffmpeg)")
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	slow := filepath.Join(dir, "slow-ffmpeg")
	script := "#!/bin/sh\necho x >> '" + started + "'\nsleep 2\nexec '" + ffmpeg + "' \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	feeds := live.NewFeeds(nil)
	snaps, err := live.NewSnapshots(live.SnapshotsOptions{
		Feeds: feeds, Known: func(string) bool { return true }, FFmpeg: slow, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newAlertSnapshots(snaps, dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	got := map[string]alerts.Snapshot{}
	s.attach = func(_ context.Context, id string, snap alerts.Snapshot) error {
		mu.Lock()
		defer mu.Unlock()
		got[id] = snap
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	clip := camsim.DefaultClip()
	cams := []string{"a", "b", "c", "d"}
	for _, c := range cams {
		feeds.Feed(c).OnStream(media.Stream{Camera: c, Session: 1, Started: time.Now(),
			Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS, Width: clip.Width, Height: clip.Height}})
	}
	keyframe := func(wall time.Time) {
		for _, c := range cams {
			feeds.Feed(c).OnAccessUnit(media.AccessUnit{Kind: media.Video, Key: true, Payload: clip.Frames[0].NALUs, Wall: wall})
		}
	}
	raised := time.Now()
	for i, c := range cams {
		s.raised(alerts.Alert{ID: fmt.Sprintf("A%d", i), Camera: c, RaisedAt: raised})
	}
	moment := raised.Add(100 * time.Millisecond)
	keyframe(moment)
	// Both decoders busy: a second later the next keyframe arrives.
	waitFor(t, 20*time.Second, "two decoders started", func() bool {
		b, _ := os.ReadFile(started)
		return bytes.Count(b, []byte("x")) >= 2
	})
	time.Sleep(time.Second)
	keyframe(raised.Add(2 * time.Second))
	waitFor(t, 60*time.Second, "four pictures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(cams)
	})
	for id, snap := range got {
		if !snap.At.Equal(moment.UTC()) {
			t.Errorf("alert %s pictures the keyframe at %v, want the one at its moment %v", id, snap.At, moment.UTC())
		}
	}
}

// A picture another node stores is checked here against the alert's hash
// like a local one: bytes that do not match, or a node that says its copy
// no longer matches, are 409 integrity, never served or passed over as 404.
func TestAlertSnapshotFromAnotherNodeIsChecked(t *testing.T) {
	dir := t.TempDir()
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(dir, "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	pic := []byte("\xff\xd8 a picture \xff\xd9")
	sum := sha256.Sum256(pic)
	now := time.Now().UTC()
	if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: now, Alert: alerts.Alert{
		ID: "A1", Camera: "gate", Type: alerts.Intrusion, Severity: alerts.Critical, Status: alerts.StatusNew, RaisedAt: now, LastSeenAt: now, Count: 1,
		Snapshot: &alerts.Snapshot{URL: "/api/v1/alerts/A1/snapshot", At: now, SHA256: hex.EncodeToString(sum[:])},
	}}, 0); err != nil {
		t.Fatal(err)
	}
	feeds := live.NewFeeds(nil)
	snaps, err := live.NewSnapshots(live.SnapshotsOptions{Feeds: feeds, Known: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	s := newAlertSnapshots(snaps, dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name     string
		b        []byte
		err      error
		code     int
		wantBody []byte
	}{
		{"the picture, unchanged", pic, nil, 200, pic},
		{"bytes that no longer match", append([]byte{}, pic[:len(pic)-1]...), nil, 409, nil},
		{"the other node's copy no longer matches", nil, errSnapshotMismatch, 409, nil},
		{"no node has it", nil, nil, 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := s.serve(j, func(*http.Request, string) ([]byte, string, error) { return tc.b, "village-2", tc.err })
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/api/v1/alerts/A1/snapshot", nil)
			req.SetPathValue("id", "A1")
			h(rec, req)
			if rec.Code != tc.code || (tc.wantBody != nil && !bytes.Equal(rec.Body.Bytes(), tc.wantBody)) {
				t.Errorf("%d %q, want %d", rec.Code, rec.Body.Bytes(), tc.code)
			}
			if tc.code == 409 && !strings.Contains(rec.Body.String(), `"integrity"`) {
				t.Errorf("409 without the integrity code: %s", rec.Body.String())
			}
		})
	}
}
