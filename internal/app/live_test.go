package app

import (
	"bytes"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"vigil/internal/testutil"
	"vigil/live/whepclient"
)

// getJPEG fetches a snapshot and returns its status and body.
func getJPEG(t *testing.T, url, token string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestLiveViewAndSnapshotsEndToEnd: a camsim camera pulled by ingest is
// watched over WHEP by a pion client from its keyframe on, and its
// snapshot, live and recorded, is a JPEG of snapshots.width.
func TestLiveViewAndSnapshotsEndToEnd(t *testing.T) {
	sim := startCamsim(t, "cam/gate")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site"}), io.Discard)
	if !a.Snapshots().Available() {
		t.Fatal("ffmpeg is required (Debian package ffmpeg)")
	}
	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })

	var img []byte
	waitFor(t, 10*time.Second, "a live snapshot", func() bool {
		code, ct, b := getJPEG(t, a.URL()+"/api/v1/cameras/gate/snapshot", deskToken)
		img = b
		return code == 200 && ct == "image/jpeg"
	})
	if p, err := jpeg.Decode(bytes.NewReader(img)); err != nil || p.Bounds().Dx() != 640 {
		t.Fatalf("live snapshot: %v", err)
	}

	// The snapshot above came from a keyframe: the live stream is up.
	endpoint := a.URL() + "/api/v1/cameras/gate/whep"
	s, err := whepclient.Dial(t.Context(), endpoint, whepclient.Options{Token: deskToken})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "25 frames at the viewer", func() bool { return s.Stats().Frames >= 25 })
	if st := s.Stats(); !st.StartedAtKeyframe || st.Lost != 0 {
		t.Errorf("viewer stats %+v", st)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	if n := a.viewers.Count(); n != 0 {
		t.Errorf("%d viewers after DELETE", n)
	}

	for _, tc := range []struct {
		name, url, token string
		want             int
	}{
		{"whep without a token", endpoint, "", 401},
		{"whep as admin of an unknown camera", a.URL() + "/api/v1/cameras/nope/whep", adminToken, 404},
		{"recorded snapshot as desk", a.URL() + "/api/v1/cameras/gate/snapshot?at=2026-01-01T00:00:00Z", deskToken, 403},
		{"recorded snapshot before any recording", a.URL() + "/api/v1/cameras/gate/snapshot?at=2020-01-01T00:00:00Z", invToken, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.url == endpoint || tc.want == 404 && tc.token == adminToken {
				method = "POST"
			}
			if code, body := call(t, method, tc.url, tc.token, ""); code != tc.want {
				t.Errorf("%s: %d %s, want %d", method, code, body, tc.want)
			}
		})
	}

	// A recorded keyframe: once a segment is closed, ?at inside it.
	var from time.Time
	waitFor(t, 15*time.Second, "a recorded segment", func() bool {
		segs, _, err := a.recorder.Catalog().List("gate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil || len(segs) == 0 {
			return false
		}
		from = segs[0].Start
		return true
	})
	at := from.Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	code, ct, b := getJPEG(t, a.URL()+"/api/v1/cameras/gate/snapshot?at="+at, invToken)
	if code != 200 || ct != "image/jpeg" {
		t.Fatalf("recorded snapshot: %d %s", code, b)
	}
	if p, err := jpeg.Decode(bytes.NewReader(b)); err != nil || p.Bounds().Dx() != 640 {
		t.Fatalf("recorded snapshot: %v", err)
	}
	// A picture from the recordings is footage retrieved: audited.
	waitFor(t, 5*time.Second, "the snapshot in the audit log", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/audit", adminToken, "")
		return strings.Contains(body, `"object":"camera/gate/snapshot"`) && strings.Contains(body, `"by":"inv-1"`)
	})
}

// TestWithoutFFmpegSnapshotsAnswer503: with nothing on PATH the node
// starts, warns, answers snapshots with 503 and still serves live views.
func TestWithoutFFmpegSnapshotsAnswer503(t *testing.T) {
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	t.Setenv("PATH", "")
	var logs testutil.Buffer
	a := startApp(t, cfg, &logs)
	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	code, body := call(t, "GET", a.URL()+"/api/v1/cameras/gate/snapshot", deskToken, "")
	if code != 503 || !bytes.Contains([]byte(body), []byte(`"code":"snapshots_unavailable"`)) {
		t.Fatalf("snapshot without ffmpeg: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "ffmpeg not found") {
		t.Errorf("no warning about ffmpeg in the logs")
	}
	// Online comes with the first frame, the live stream with the first
	// keyframe: until then the offer is refused with 409.
	var s *whepclient.Session
	waitFor(t, 10*time.Second, "a live view without ffmpeg", func() bool {
		var err error
		s, err = whepclient.Dial(t.Context(), a.URL()+"/api/v1/cameras/gate/whep", whepclient.Options{Token: deskToken})
		return err == nil
	})
	waitFor(t, 5*time.Second, "frames at the viewer", func() bool { return s.Stats().Frames > 0 })
	s.Close(t.Context())
}

// TestRecordedSnapshotInAGap: a time in a gap after recorded footage (a
// camera_offline alert's moment) is pictured by the last keyframe before
// it, within keyframeLookBack, stamped with that keyframe's own time; a
// time further from any footage has none.
func TestRecordedSnapshotInAGap(t *testing.T) {
	cfg := writeConfig(t, "")
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	segs := recordAsNode(t, cfg.Storage.Dir, "", 0, "hall-entrance", start, 300) // 12 s
	end := segs[len(segs)-1].End
	a := startApp(t, cfg, io.Discard)
	if !a.Snapshots().Available() {
		t.Fatal("ffmpeg is required (Debian package ffmpeg)")
	}
	get := func(at time.Time) (*http.Response, []byte) {
		return getWith(t, a.URL()+"/api/v1/cameras/hall-entrance/snapshot?at="+url.QueryEscape(at.Format(time.RFC3339Nano)), "Authorization", "Bearer "+invToken)
	}
	resp, b := get(end.Add(30 * time.Second))
	if resp.StatusCode != 200 {
		t.Fatalf("30 s into the gap: %d %s", resp.StatusCode, b)
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("30 s into the gap: %v", err)
	}
	from, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Snapshot-At"))
	if err != nil || from.Before(segs[len(segs)-1].Start) || !from.Before(end) {
		t.Errorf("picture of %v (%v), want a keyframe of the last segment %v–%v", from, err, segs[len(segs)-1].Start, end)
	}
	if resp, b := get(end.Add(keyframeLookBack + time.Minute)); resp.StatusCode != 404 {
		t.Errorf("%v after the footage: %d %s, want 404", keyframeLookBack+time.Minute, resp.StatusCode, b)
	}
}
