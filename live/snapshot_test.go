package live

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/camsim"
	"vigil/internal/media"
)

func newSnapshots(t *testing.T, feeds *Feeds, opts SnapshotsOptions) *Snapshots {
	t.Helper()
	opts.Feeds = feeds
	if opts.Known == nil {
		opts.Known = known("cam-1", "cam-265", "cam-off")
	}
	opts.Registerer = prometheus.NewRegistry()
	s, err := NewSnapshots(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, url, accept string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestSnapshotIsAJPEGOfTheConfiguredWidth(t *testing.T) {
	needTool(t, "ffmpeg")
	feeds := NewFeeds(nil)
	clip := camsim.DefaultClip()
	f := feeds.Feed("cam-1")
	f.OnStream(media.Stream{Camera: "cam-1", Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS}})
	// The clip's frames carry their SPS and PPS in-band; strip them, as a
	// camera announcing them only in its SDP would.
	var nalus [][]byte
	for _, n := range clip.Frames[0].NALUs {
		if typ := n[0] & 0x1f; typ != 7 && typ != 8 {
			nalus = append(nalus, n)
		}
	}
	f.OnAccessUnit(media.AccessUnit{Kind: media.Video, Key: true, Payload: nalus, Wall: time.Now()})
	k := h265Keyframe(t)
	f265 := feeds.Feed("cam-265")
	f265.OnStream(media.Stream{Camera: "cam-265", Video: &k.Video})
	f265.OnAccessUnit(k.Unit)

	ss := newSnapshots(t, feeds, SnapshotsOptions{Width: 320})
	srv := serve(t, nil, ss)
	for _, cam := range []string{"cam-1", "cam-265"} {
		t.Run(cam, func(t *testing.T) {
			status, ct, body := get(t, srv.URL+"/api/v1/cameras/"+cam+"/snapshot", "")
			if status != http.StatusOK || ct != "image/jpeg" {
				t.Fatalf("got %d %s: %.200s", status, ct, body)
			}
			img, err := jpeg.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("not a JPEG: %v", err)
			}
			if w := img.Bounds().Dx(); w != 320 {
				t.Errorf("width %d, want 320", w)
			}
		})
	}
	t.Run("offline camera", func(t *testing.T) {
		status, _, body := get(t, srv.URL+"/api/v1/cameras/cam-off/snapshot", "")
		if status != http.StatusConflict || !hasCode(string(body), "camera_offline") {
			t.Errorf("got %d %s", status, body)
		}
	})
	t.Run("unknown camera", func(t *testing.T) {
		status, _, body := get(t, srv.URL+"/api/v1/cameras/nope/snapshot", "")
		if status != http.StatusNotFound {
			t.Errorf("got %d %s", status, body)
		}
	})
	t.Run("bad at", func(t *testing.T) {
		status, _, body := get(t, srv.URL+"/api/v1/cameras/cam-1/snapshot?at=yesterday", "")
		if status != http.StatusBadRequest || !hasCode(string(body), "bad_time") {
			t.Errorf("got %d %s", status, body)
		}
	})
	t.Run("at without recordings", func(t *testing.T) {
		status, _, body := get(t, srv.URL+"/api/v1/cameras/cam-1/snapshot?at=2026-12-06T10:00:00Z", "")
		if status != http.StatusNotFound || !hasCode(string(body), "no_footage") {
			t.Errorf("got %d %s", status, body)
		}
	})
}

func TestSnapshotsCacheAndShareDecodes(t *testing.T) {
	needTool(t, "ffmpeg")
	feeds := NewFeeds(nil)
	k := h265Keyframe(t)
	f := feeds.Feed("cam-265")
	f.OnStream(media.Stream{Camera: "cam-265", Video: &k.Video})
	f.OnAccessUnit(k.Unit)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ss := newSnapshots(t, feeds, SnapshotsOptions{Width: 160, Now: func() time.Time { return now }})
	ctx := t.Context()
	decoded := func() float64 {
		return testutilCounter(ss.m.snapshots.WithLabelValues("ok"))
	}
	a, err := ss.Latest(ctx, "cam-265")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ss.Latest(ctx, "cam-265")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.JPEG, b.JPEG) || decoded() != 1 {
		t.Errorf("second snapshot of the same keyframe decoded again: %v decodes", decoded())
	}
	// A new keyframe, 3 s later: decoded afresh.
	now = now.Add(3 * time.Second)
	k.Unit.Wall = k.Unit.Wall.Add(3 * time.Second)
	f.OnAccessUnit(k.Unit)
	if _, err := ss.Latest(ctx, "cam-265"); err != nil || decoded() != 2 {
		t.Errorf("new keyframe: %v, %v decodes", err, decoded())
	}
}

func TestSnapshotAfterWaitsForTheNextKeyframe(t *testing.T) {
	needTool(t, "ffmpeg")
	feeds := NewFeeds(nil)
	k := h265Keyframe(t)
	f := feeds.Feed("cam-265")
	f.OnStream(media.Stream{Camera: "cam-265", Video: &k.Video})
	t0 := time.Now()
	k.Unit.Wall = t0.Add(-time.Second)
	f.OnAccessUnit(k.Unit) // before the alert
	ss := newSnapshots(t, feeds, SnapshotsOptions{Width: 160})
	got := make(chan Snapshot, 1)
	errc := make(chan error, 1)
	go func() {
		s, err := ss.After(t.Context(), "cam-265", t0, time.Hour)
		got <- s
		errc <- err
	}()
	later := k.Unit
	later.Wall = t0.Add(500 * time.Millisecond)
	// Whether After is already waiting or not, it must pick the keyframe
	// after t0, not the one before.
	f.OnAccessUnit(later)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if s := <-got; !s.At.Equal(later.Wall) {
		t.Errorf("snapshot of the keyframe at %v, want %v", s.At, later.Wall)
	}

	// Nothing after t within the window: the last keyframe before it.
	s, err := ss.After(t.Context(), "cam-265", time.Now(), time.Nanosecond)
	if err != nil || !s.At.Equal(later.Wall) {
		t.Errorf("fallback: %v at %v, want %v", err, s.At, later.Wall)
	}
}

func TestSnapshotsWithoutFFmpegAnswer503(t *testing.T) {
	t.Setenv("PATH", "") // no ffmpeg to be found
	feeds := NewFeeds(nil)
	ss := newSnapshots(t, feeds, SnapshotsOptions{})
	if ss.Available() {
		t.Fatal("ffmpeg found with an empty PATH")
	}
	srv := serve(t, nil, ss)
	status, _, body := get(t, srv.URL+"/api/v1/cameras/cam-1/snapshot", "")
	if status != http.StatusServiceUnavailable || !hasCode(string(body), "snapshots_unavailable") {
		t.Errorf("got %d %s", status, body)
	}
	if _, err := ss.After(context.Background(), "cam-1", time.Now(), time.Second); !errors.Is(err, ErrSnapshotsUnavailable) {
		t.Errorf("After: %v", err)
	}
}
