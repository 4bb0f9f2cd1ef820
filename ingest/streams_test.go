package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"

	"vigil/internal/media"
)

func TestPullTransports(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		server    []serverOption
		want      string // transport in use
	}{
		{name: "tcp", transport: TransportTCP, server: []serverOption{withMetadata()}, want: "TCP"},
		{name: "udp", transport: TransportUDP, server: []serverOption{withUDP(), withAudio()}, want: "UDP"},
		{name: "auto falls back to tcp", transport: TransportAuto, want: "TCP"},
		{name: "auto prefers udp", transport: TransportAuto, server: []serverOption{withUDP()}, want: "UDP"},
		{name: "h265", transport: TransportTCP, server: []serverOption{withH265()}, want: "TCP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startCameraServer(t, tc.server...)
			h := startStreams(t, testOptions(), camFor("cam-1", srv, tc.transport))
			sink := &recordingSink{}
			defer h.s.Subscribe("cam-1", "test", sink, 256)()
			var mu sync.Mutex
			var docs [][]byte
			defer h.s.SubscribeMetadata(MetadataSinkFunc(func(camera string, doc []byte, _ time.Time) {
				mu.Lock()
				defer mu.Unlock()
				docs = append(docs, doc)
			}))()

			h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
			waitFor(t, 4*time.Second, "10 frames", func() bool { return sink.count(isVideo) >= 10 }) // up to one GOP (2 s) before the first keyframe

			if !strings.Contains(h.logs.String(), "transport="+tc.want+"\n") {
				t.Fatalf("not playing over %s:\n%s", tc.want, h.logs.String())
			}
			ev := sink.snapshot()
			if ev[0].stream == nil {
				t.Fatalf("first event is not a stream: %+v", ev[0])
			}
			s := ev[0].stream
			codec, w, hgt := media.H264, 640, 360
			if tc.name == "h265" {
				codec, w, hgt = media.H265, 320, 180
			}
			if s.Video.Codec != codec || s.Video.Width != w || s.Video.Height != hgt || s.Session != 1 || (codec == media.H265 && s.Video.VPS == nil) {
				t.Fatalf("stream %+v video %+v", s, s.Video)
			}
			if !ev[1].au.Key || ev[1].au.PTS != 0 {
				t.Fatalf("first unit: key %v pts %v", ev[1].au.Key, ev[1].au.PTS)
			}
			var prev time.Duration = -1
			for _, e := range ev {
				if e.au != nil && (e.au.Received.IsZero() || e.au.Received.After(e.at)) {
					t.Fatalf("unit handed on at %v with arrival time %v", e.at, e.au.Received)
				}
				if isVideo(e) {
					if prev >= 0 && e.au.DTS-prev != 40*time.Millisecond {
						t.Fatalf("DTS step %v, want 40ms", e.au.DTS-prev)
					}
					prev = e.au.DTS
				}
			}
			if tc.name == "udp" {
				if s.Audio == nil || s.Audio.Codec != media.G711 {
					t.Fatalf("audio %+v", s.Audio)
				}
				waitFor(t, 2*time.Second, "audio", func() bool {
					return sink.count(func(e sinkEvent) bool { return e.au != nil && e.au.Kind == media.Audio }) > 0
				})
			}
			if tc.name == "tcp" {
				waitFor(t, 2*time.Second, "metadata", func() bool { mu.Lock(); defer mu.Unlock(); return len(docs) > 0 })
				mu.Lock()
				d := docs[0]
				mu.Unlock()
				if !bytes.HasPrefix(d, []byte("<?xml")) || !bytes.HasSuffix(d, []byte("</tt:MetadataStream>")) {
					t.Fatalf("metadata doc %q", d)
				}
			}
			waitFor(t, 3*time.Second, "rates", func() bool {
				st := h.status(t, "cam-1")
				return st.FPS > 15 && st.BitrateBps > 50_000
			})
			st := h.status(t, "cam-1")
			if st.Codec != string(codec) || st.Width != w || st.LastFrameAt == nil || st.FPS > 30 {
				t.Fatalf("status %+v", st)
			}
			if got := counter(h.s.m.frames.WithLabelValues("cam-1")); got < 10 {
				t.Fatalf("frames metric %v", got)
			}
			if got := counter(h.s.m.up.WithLabelValues("cam-1", "hall")); got != 1 {
				t.Fatalf("camera_up %v", got)
			}
		})
	}
}

func TestReconnectAndHealth(t *testing.T) {
	srv := startCameraServer(t)
	opts := testOptions()
	var mu sync.Mutex
	var states []CameraState
	opts.OnState = func(s CameraState) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, s)
	}
	h := startStreams(t, opts, camFor("cam-1", srv, TransportTCP))
	sink := &recordingSink{}
	defer h.s.Subscribe("cam-1", "test", sink, 256)()
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	waitFor(t, 4*time.Second, "frames", func() bool { return sink.count(isVideo) > 0 })
	// The first session is reported too: an outage reported before it
	// (by another node, or before a restart) is over.
	waitFor(t, 2*time.Second, "first online health event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) == 1
	})
	mu.Lock()
	if !states[0].Online || !states[0].First || states[0].Camera != "cam-1" {
		t.Fatalf("state %+v", states[0])
	}
	mu.Unlock()

	srv.Stop()
	h.waitStatus(t, "cam-1", StatusOffline, 10*time.Second)
	waitFor(t, 2*time.Second, "offline health event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) == 2
	})
	mu.Lock()
	if states[1].Online || states[1].Camera != "cam-1" {
		t.Fatalf("state %+v", states[1])
	}
	mu.Unlock()
	if sink.count(func(e sinkEvent) bool { return e.brk == "disconnect" }) != 1 {
		t.Fatal("no disconnect break")
	}

	srv.Start()
	// Back within the backoff cap (400ms ±20%) plus connect time.
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	waitFor(t, time.Second, "online health event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) == 3 && states[2].Online && !states[2].First
	})
	st := h.status(t, "cam-1")
	if st.Reconnects < 1 {
		t.Fatalf("reconnects %d", st.Reconnects)
	}
	if got := counter(h.s.m.reconnects.WithLabelValues("cam-1")); got < 1 {
		t.Fatalf("reconnects metric %v", got)
	}
	waitFor(t, 4*time.Second, "second session", func() bool {
		ev := sink.snapshot()
		for _, e := range ev {
			if e.stream != nil && e.stream.Session == 2 {
				return true
			}
		}
		return false
	})
	if n := strings.Count(h.logs.String(), `msg="camera offline"`); n != 1 {
		t.Fatalf("%d offline log lines, want 1:\n%s", n, h.logs.String())
	}
}

func TestStallDetected(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	srv.paused.Store(true)
	waitFor(t, 6*time.Second, "stall", func() bool { return strings.Contains(h.logs.String(), "reason=stall") })
	srv.paused.Store(false)
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
}

func TestSPSChangeWithoutReconnect(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	sink := &recordingSink{}
	defer h.s.Subscribe("cam-1", "test", sink, 256)()
	waitFor(t, 4*time.Second, "frames", func() bool { return sink.count(isVideo) >= 5 })
	srv.changeSPS.Store(true)
	waitFor(t, 4*time.Second, "second stream", func() bool { return sink.count(isStream) >= 2 })
	var streams []*media.Stream
	for _, e := range sink.snapshot() {
		if e.brk != "" {
			t.Fatalf("break %q during SPS change", e.brk)
		}
		if e.stream != nil {
			streams = append(streams, e.stream)
		}
	}
	if bytes.Equal(streams[0].Video.SPS, streams[1].Video.SPS) || streams[1].Video.SPS[3] != streams[0].Video.SPS[3]+1 {
		t.Fatal("second stream does not carry the new SPS")
	}
	if h.status(t, "cam-1").Reconnects != 0 {
		t.Fatal("reconnected on SPS change")
	}
}

func TestGarbageRTP(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	sink := &recordingSink{}
	defer h.s.Subscribe("cam-1", "test", sink, 256)()
	waitFor(t, 4*time.Second, "frames", func() bool { return sink.count(isVideo) > 0 })
	srv.garbage.Store(300)
	waitFor(t, 2*time.Second, "garbage sent", func() bool { return srv.garbage.Load() == 0 })
	n := sink.count(isVideo)
	waitFor(t, 3*time.Second, "frames after garbage", func() bool { return sink.count(isVideo) >= n+25 })
	if got := counter(h.s.m.decodeErrors.WithLabelValues("cam-1")); got == 0 {
		t.Fatal("garbage not counted")
	}
}

func TestSlowSubscriberDoesNotSlowOthers(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	stuck := &recordingSink{block: make(chan struct{})}
	unsubStuck := h.s.Subscribe("cam-1", "stuck", stuck, 4)
	defer func() {
		close(stuck.block) // lets it take its queue, so that unsubscribing returns
		unsubStuck()
	}()
	fast := &recordingSink{}
	defer h.s.Subscribe("cam-1", "fast", fast, 256)()

	waitFor(t, 6*time.Second, "50 frames", func() bool { return fast.count(isVideo) >= 50 })
	if counter(h.s.m.dropped.WithLabelValues("cam-1", "stuck")) == 0 {
		t.Fatal("stuck subscriber's drops not counted")
	}
	if counter(h.s.m.dropped.WithLabelValues("cam-1", "fast")) != 0 {
		t.Fatal("fast subscriber dropped")
	}
	var prev time.Duration = -1
	for _, e := range fast.snapshot() {
		if e.brk != "" {
			t.Fatalf("fast subscriber got break %q", e.brk)
		}
		if isVideo(e) {
			if prev >= 0 && e.au.PTS-prev != 40*time.Millisecond {
				t.Fatalf("fast subscriber missed a frame: step %v", e.au.PTS-prev)
			}
			prev = e.au.PTS
		}
	}
}

func TestSlowSubscriberGetsDroppedBreak(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	slow := &recordingSink{block: make(chan struct{})}
	defer h.s.Subscribe("cam-1", "slow", slow, 2)()
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	waitFor(t, 2*time.Second, "drops", func() bool { return counter(h.s.m.dropped.WithLabelValues("cam-1", "slow")) >= 3 })
	close(slow.block)
	waitFor(t, 2*time.Second, "dropped break", func() bool {
		return slow.count(func(e sinkEvent) bool { return e.brk == "dropped" && e.dropped > 0 }) > 0
	})
}

func TestReloadKeepsUntouchedStreaming(t *testing.T) {
	a, b, c := startCameraServer(t), startCameraServer(t), startCameraServer(t)
	camA, camB, camC := camFor("cam-a", a, TransportTCP), camFor("cam-b", b, TransportTCP), camFor("cam-c", c, TransportTCP)
	h := startStreams(t, testOptions(), camA, camB)
	sink := &recordingSink{}
	defer h.s.Subscribe("cam-a", "test", sink, 256)()
	h.waitStatus(t, "cam-a", StatusOnline, 10*time.Second)
	h.waitStatus(t, "cam-b", StatusOnline, 10*time.Second)
	waitFor(t, 4*time.Second, "cam-a frames", func() bool { return sink.count(isVideo) > 0 })
	before := sink.count(isVideo)

	res, err := h.s.Apply([]Camera{camA, camC})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 1 || res.Added[0] != "cam-c" || len(res.Removed) != 1 || res.Removed[0] != "cam-b" || len(res.Changed) != 0 {
		t.Fatalf("apply %+v", res)
	}
	h.waitStatus(t, "cam-c", StatusOnline, 10*time.Second)
	if _, err := h.s.Status("cam-b"); err == nil {
		t.Fatal("cam-b still registered")
	}
	waitFor(t, 2*time.Second, "cam-b series deleted", func() bool {
		n, _ := h.reg.Gather()
		for _, mf := range n {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == "cam-b" {
						return false
					}
				}
			}
		}
		return true
	})
	waitFor(t, 2*time.Second, "cam-a frames after reload", func() bool { return sink.count(isVideo) >= before+15 })

	frame := 40 * time.Millisecond
	var prevPTS time.Duration = -1
	var prevAt time.Time
	var maxGap time.Duration
	for _, e := range sink.snapshot() {
		if e.brk != "" || (e.stream != nil && e.stream.Session != 1) {
			t.Fatalf("cam-a interrupted: %+v", e)
		}
		if isVideo(e) {
			if prevPTS >= 0 && e.au.PTS-prevPTS != frame {
				t.Fatalf("cam-a lost a frame: PTS step %v", e.au.PTS-prevPTS)
			}
			if !prevAt.IsZero() {
				maxGap = max(maxGap, e.at.Sub(prevAt))
			}
			prevPTS, prevAt = e.au.PTS, e.at
		}
	}
	t.Logf("largest arrival gap of cam-a across the reload: %v", maxGap)
	// The contract is checked on media time above (every PTS step is one
	// frame interval, so no gap exceeds two). Arrival times add scheduler
	// noise on a shared machine, so they only catch a gross stall here.
	if maxGap > 10*frame {
		t.Errorf("arrival gap %v", maxGap)
	}

	// A change of stream restarts the camera.
	camA.ONVIFMetadata = false
	res, err = h.s.Apply([]Camera{camA, camC})
	if err != nil || len(res.Changed) != 1 || len(res.Restarted) != 1 || res.Restarted[0] != "cam-a" {
		t.Fatalf("apply %+v %v", res, err)
	}
	waitFor(t, 5*time.Second, "cam-a restarted", func() bool {
		return sink.count(func(e sinkEvent) bool { return e.stream != nil && e.stream.Session == 2 }) == 1
	})
}

func TestCredentialsAndUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method auth.VerifyMethod
	}{
		{"basic", auth.VerifyMethodBasic},
		{"digest", auth.VerifyMethodDigestMD5},
	} {
		t.Run(tc.name, func(t *testing.T) { testCredentials(t, tc.method) })
	}
}

func testCredentials(t *testing.T, method auth.VerifyMethod) {
	const pass = "s3cr3t-P@ss"
	srv := startCameraServer(t, withAuth("admin", pass, method))
	good := camFor("good", srv, TransportTCP)
	good.Username, good.Password = "admin", pass
	bad := camFor("bad", srv, TransportTCP)
	bad.Username, bad.Password = "admin", "wrong-"+pass

	opts := testOptions()
	var mu sync.Mutex
	var pauses []time.Duration
	after := time.After
	opts.After = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		pauses = append(pauses, d)
		mu.Unlock()
		return after(d)
	}
	h := startStreams(t, opts, good, bad)
	h.waitStatus(t, "good", StatusOnline, 10*time.Second)
	waitFor(t, 3*time.Second, "bad camera retries", func() bool { return h.status(t, "bad").Attempts >= 3 })
	h.waitStatus(t, "bad", StatusOffline, 10*time.Second)
	if st := h.status(t, "bad"); st.Reconnects != 0 || st.LastError == nil || st.LastError.Reason != ReasonUnauthorized {
		t.Fatalf("bad camera %+v", st)
	}
	if !strings.Contains(h.logs.String(), "reason=unauthorized") {
		t.Fatalf("no unauthorized in logs:\n%s", h.logs.String())
	}
	mu.Lock()
	p := append([]time.Duration(nil), pauses...)
	mu.Unlock()
	if len(p) < 3 || p[0] > 60*time.Millisecond || p[1] < 75*time.Millisecond || p[2] != 5*time.Minute {
		t.Fatalf("pauses %v do not back off, to auth_retry after 3 refusals", p)
	}

	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cameras", nil))
	for name, out := range map[string]string{"logs": h.logs.String(), "api": rec.Body.String()} {
		if strings.Contains(out, pass) || strings.Contains(out, "s3cr3t") {
			t.Fatalf("password in %s:\n%s", name, out)
		}
	}
}

func TestCamerasAPI(t *testing.T) {
	srv := startCameraServer(t)
	off := camFor("off", srv, TransportTCP)
	off.Enabled = false
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP), off)
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	h.s.SetRecording("cam-1", true)
	h.s.Wrote("cam-1")
	tests := []struct {
		name, path string
		code       int
		check      func(t *testing.T, body []byte)
	}{
		{"list", "/api/v1/cameras", 200, func(t *testing.T, body []byte) {
			var v struct{ Cameras []map[string]any }
			if err := json.Unmarshal(body, &v); err != nil || len(v.Cameras) != 2 {
				t.Fatalf("%s %v", body, err)
			}
			for _, k := range []string{"id", "name", "site", "grid", "status", "since", "last_frame_at", "codec", "width", "height", "bitrate_bps", "fps", "recording", "reconnects", "attempts", "last_error"} {
				if _, ok := v.Cameras[0][k]; !ok {
					t.Fatalf("no %q in %s", k, body)
				}
			}
			if v.Cameras[0]["recording"] != true || v.Cameras[1]["status"] != "disabled" {
				t.Fatalf("%s", body)
			}
		}},
		{"one", "/api/v1/cameras/cam-1", 200, func(t *testing.T, body []byte) {
			var st CameraStatus
			if err := json.Unmarshal(body, &st); err != nil || st.ID != "cam-1" || st.Status != StatusOnline {
				t.Fatalf("%s %v", body, err)
			}
		}},
		{"unknown", "/api/v1/cameras/nope", 404, nil},
		{"bad id", "/api/v1/cameras/Bad_ID", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if tc.code >= 400 {
				var e struct{ Error, Code string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
					t.Fatalf("error body %s", rec.Body)
				}
				return
			}
			tc.check(t, rec.Body.Bytes())
		})
	}
}

func TestLateSubscriberStartsWithStream(t *testing.T) {
	srv := startCameraServer(t)
	h := startStreams(t, testOptions(), camFor("cam-1", srv, TransportTCP))
	first := &recordingSink{}
	defer h.s.Subscribe("cam-1", "first", first, 256)()
	waitFor(t, 4*time.Second, "frames", func() bool { return first.count(isVideo) >= 3 })

	late := &recordingSink{}
	defer h.s.Subscribe("cam-1", "late", late, 256)()
	waitFor(t, 2*time.Second, "late frames", func() bool { return late.count(isVideo) >= 3 })
	ev := late.snapshot()
	if ev[0].stream == nil || ev[0].stream.Session != 1 {
		t.Fatalf("late subscriber's first event %+v", ev[0])
	}
}

// TestRelabelKeepsStreaming: a new name, site and grid reach the status and
// vigil_camera_up without reconnecting the camera or breaking a subscriber.
func TestRelabelKeepsStreaming(t *testing.T) {
	srv := startCameraServer(t)
	cam := camFor("cam-1", srv, TransportTCP)
	h := startStreams(t, testOptions(), cam)
	sink := &recordingSink{}
	defer h.s.Subscribe("cam-1", "test", sink, 256)()
	h.waitStatus(t, "cam-1", StatusOnline, 10*time.Second)
	waitFor(t, 4*time.Second, "frames", func() bool { return sink.count(isVideo) > 0 })
	before := sink.count(isVideo)

	cam.Name, cam.Site, cam.Grid = "Gate", "yard", "G09"
	res, err := h.s.Apply([]Camera{cam})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || res.Changed[0] != "cam-1" || len(res.Restarted) != 0 {
		t.Fatalf("apply %+v", res)
	}
	if st := h.status(t, "cam-1"); st.Name != "Gate" || st.Site != "yard" || st.Grid != "G09" {
		t.Fatalf("status after relabel: %+v", st)
	}
	waitFor(t, 2*time.Second, "vigil_camera_up under the new site only", func() bool {
		up := cameraUp(t, h, "cam-1")
		_, old := up["hall"]
		return !old && up["yard"] == 1
	})
	waitFor(t, 4*time.Second, "frames after relabel", func() bool { return sink.count(isVideo) >= before+15 })

	for _, e := range sink.snapshot() {
		if e.brk != "" || (e.stream != nil && e.stream.Session != 1) {
			t.Fatalf("cam-1 interrupted by a relabel: %+v", e)
		}
	}
	if n := counter(h.s.m.reconnects.WithLabelValues("cam-1")); n != 0 {
		t.Fatalf("reconnects %v", n)
	}
	if st := h.status(t, "cam-1"); st.Status != StatusOnline || st.Reconnects != 0 || st.Site != "yard" {
		t.Fatalf("status: %+v", st)
	}
}

// cameraUp returns camera's vigil_camera_up series by site, read from the
// registry so that looking does not create a series.
func cameraUp(t *testing.T, h *harness, camera string) map[string]float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_camera_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["camera"] == camera {
				out[labels["site"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestUnsubscribeDeliversQueued: units queued for a slow sink reach it
// before unsubscribing returns, whether a Run drains the queue or not, and
// before Run returns when its context ends.
func TestUnsubscribeDeliversQueued(t *testing.T) {
	const n = 50
	for _, tc := range []string{"unsubscribe while running", "unsubscribe without run", "run ends"} {
		t.Run(tc, func(t *testing.T) {
			s, err := New(Options{Registerer: newTestRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			sink := &recordingSink{block: make(chan struct{})}
			unsub := s.Subscribe("cam-1", "recorder", sink, 2*n)
			s.mu.Lock()
			sub := s.subs[0]
			s.mu.Unlock()
			f := s.feeds["cam-1"]
			f.announce(media.Stream{Camera: "cam-1"})
			for i := range n {
				f.publish(&media.AccessUnit{Kind: media.Video, PTS: time.Duration(i) * 40 * time.Millisecond})
			}

			if tc == "unsubscribe without run" {
				close(sink.block)
				unsub()
				if got := sink.count(isVideo); got != n {
					t.Fatalf("%d of %d units delivered", got, n)
				}
				return
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ran := make(chan error, 1)
			go func() { ran <- s.Run(ctx) }()
			// The sink holds the first unit; the rest stay queued.
			waitFor(t, 2*time.Second, "the stream delivered", func() bool { return sink.count(isStream) == 1 })

			if tc == "run ends" {
				cancel()
				close(sink.block)
				select {
				case err := <-ran:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Run did not return")
				}
				if got := sink.count(isVideo); got != n {
					t.Fatalf("%d of %d units delivered before Run returned", got, n)
				}
				unsub()
				return
			}

			delivered := make(chan int, 1)
			go func() {
				unsub()
				delivered <- sink.count(isVideo)
			}()
			select {
			case <-sub.quit:
			case <-time.After(5 * time.Second):
				t.Fatal("unsubscribe did not stop the subscriber")
			}
			close(sink.block)
			select {
			case got := <-delivered:
				if got != n {
					t.Fatalf("%d of %d units delivered before unsubscribe returned", got, n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("unsubscribe did not return")
			}
			for _, e := range sink.snapshot() {
				if e.brk != "" {
					t.Fatalf("break %q", e.brk)
				}
			}
			cancel()
			if err := <-ran; err != nil {
				t.Fatal(err)
			}
		})
	}
}
