package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/internal/testutil"
	"vigil/live/whepclient"
)

// startViewers runs Viewers on a loopback UDP port until the test ends and
// checks that Run leaves no viewer goroutine behind.
func startViewers(t testing.TB, feeds *Feeds, opts ViewersOptions) *Viewers {
	t.Helper()
	opts.Feeds = feeds
	opts.UDPAddr = "127.0.0.1:0"
	if opts.Known == nil {
		opts.Known = known("cam-1", "cam-265", "cam-off")
	}
	opts.Registerer = prometheus.NewRegistry()
	vs, err := NewViewers(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return vs
}

func TestWHEPViewerGetsFramesFromAKeyframeAndDeleteEndsIt(t *testing.T) {
	feeds := NewFeeds(nil)
	play(t, feeds.Feed("cam-1"), true)
	vs := startViewers(t, feeds, ViewersOptions{})
	srv := serve(t, vs, nil)
	ctx := t.Context()
	before := runtime.NumGoroutine()

	// Let the camera get well into a GOP, so a viewer starting at "now"
	// would not start at a keyframe.
	k, next, _ := feeds.Feed("cam-1").Keyframe()
	<-next
	_ = k

	s, err := whepclient.Dial(ctx, srv.URL+"/api/v1/cameras/cam-1/whep", whepclient.Options{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "30 video frames and some audio", func() bool {
		st := s.Stats()
		return st.Frames >= 30 && st.AudioPackets > 0
	})
	st := s.Stats()
	if !st.StartedAtKeyframe {
		t.Errorf("first packet does not start a keyframe: %+v", st)
	}
	if st.Lost != 0 {
		t.Errorf("lost %d packets on loopback", st.Lost)
	}
	// The frames left in batches, not a system call per packet.
	if sent := vs.conn.sent.Load(); sent == 0 || sent > uint64(st.Frames)*2 {
		t.Errorf("%d sendmmsg calls for %d frames of %d packets", sent, st.Frames, st.VideoPackets)
	}
	if gsoAvailable && vs.conn.segmented.Load() == 0 {
		t.Error("no frame's packets were segmented by the kernel")
	}
	if vs.Count() != 1 {
		t.Errorf("Count = %d, want 1", vs.Count())
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	if vs.Count() != 0 {
		t.Errorf("Count after DELETE = %d", vs.Count())
	}
	f := feeds.Feed("cam-1")
	f.mu.Lock()
	n := len(f.viewers)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("feed still has %d viewers", n)
	}
	// The session is gone: a second DELETE is 404.
	if err := s.Delete(ctx); !isStatus(err, http.StatusNotFound) {
		t.Errorf("second DELETE: %v, want 404", err)
	}
	// Trickle ICE is refused as RFC 9725 wants.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, s.Location(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PATCH: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Every goroutine the session started, on either side, ends with it
	// (the HTTP connections are closed first: they are not the session's).
	http.DefaultClient.CloseIdleConnections()
	srv.CloseClientConnections()
	testutil.WaitFor(t, 5*time.Second, "the session's goroutines to end", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func isStatus(err error, status int) bool {
	var he *whepclient.HTTPError
	return errors.As(err, &he) && he.Status == status
}

func TestWHEPRefusals(t *testing.T) {
	feeds := NewFeeds(nil)
	play(t, feeds.Feed("cam-1"), false)
	k := h265Keyframe(t)
	f265 := feeds.Feed("cam-265")
	f265.OnStream(media.Stream{Camera: "cam-265", Video: &k.Video})
	f265.OnAccessUnit(k.Unit)
	feeds.Feed("cam-off") // known, never streamed
	vs := startViewers(t, feeds, ViewersOptions{MaxViewers: 1})
	srv := serve(t, vs, nil)
	ctx := t.Context()
	url := func(cam string) string { return srv.URL + "/api/v1/cameras/" + cam + "/whep" }

	raw := []struct {
		name   string
		camera string
		body   string
		status int
		code   string
	}{
		{"malformed SDP", "cam-1", "this is not SDP", http.StatusBadRequest, "bad_offer"},
		{"empty offer", "cam-1", "", http.StatusBadRequest, "bad_offer"},
		{"SDP without media", "cam-1", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", http.StatusBadRequest, "bad_offer"},
		{"unknown camera", "nope", "v=0\r\n", http.StatusNotFound, "not_found"},
		{"invalid camera id", "..%2Fetc", "v=0\r\n", http.StatusNotFound, "not_found"},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _, err := whepclient.Post(ctx, http.DefaultClient, url(tc.camera), "", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !hasCode(body, tc.code) {
				t.Errorf("got %d %s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}

	dialed := []struct {
		name   string
		camera string
		opts   whepclient.Options
		status int
		code   string
	}{
		{"offer without H.264", "cam-1", whepclient.Options{VideoCodec: "video/VP8"}, http.StatusNotAcceptable, "no_h264"},
		{"H.265 camera", "cam-265", whepclient.Options{}, http.StatusNotAcceptable, "h265_not_supported"},
		{"offline camera", "cam-off", whepclient.Options{}, http.StatusConflict, "camera_offline"},
	}
	for _, tc := range dialed {
		t.Run(tc.name, func(t *testing.T) {
			s, err := whepclient.Dial(ctx, url(tc.camera), tc.opts)
			if err == nil {
				s.Close(ctx)
				t.Fatalf("offer accepted, want %d", tc.status)
			}
			var he *whepclient.HTTPError
			if !errors.As(err, &he) || he.Status != tc.status || !hasCode(he.Body, tc.code) {
				t.Errorf("got %v, want %d %s", err, tc.status, tc.code)
			}
		})
	}

	t.Run("camera removed", func(t *testing.T) {
		s, err := whepclient.Dial(ctx, url("cam-1"), whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Abandon()
		vs.EndCamera("cam-1")
		if n := vs.Count(); n != 0 {
			t.Errorf("%d sessions after EndCamera", n)
		}
		if err := s.Delete(ctx); !isStatus(err, http.StatusNotFound) {
			t.Errorf("DELETE after EndCamera: %v, want 404", err)
		}
	})
	t.Run("max viewers", func(t *testing.T) {
		first, err := whepclient.Dial(ctx, url("cam-1"), whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close(ctx)
		_, err = whepclient.Dial(ctx, url("cam-1"), whepclient.Options{})
		if !isStatus(err, http.StatusServiceUnavailable) {
			t.Errorf("second viewer: %v, want 503", err)
		}
		if err := first.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The slot is free again.
		again, err := whepclient.Dial(ctx, url("cam-1"), whepclient.Options{})
		if err != nil {
			t.Fatalf("after the first left: %v", err)
		}
		again.Close(ctx)
	})
}

func TestVanishedViewersAreCleanedUp(t *testing.T) {
	feeds := NewFeeds(nil)
	play(t, feeds.Feed("cam-1"), false)
	// Short timers stand in for the 5 s + 10 s of production: what is
	// tested is that each path ends the session, not how long it takes.
	vs := startViewers(t, feeds, ViewersOptions{ConnectTimeout: 300 * time.Millisecond,
		DisconnectedTimeout: 300 * time.Millisecond, FailedTimeout: 300 * time.Millisecond})
	srv := serve(t, vs, nil)
	ctx := t.Context()
	url := srv.URL + "/api/v1/cameras/cam-1/whep"

	t.Run("never connects", func(t *testing.T) {
		s, err := whepclient.Dial(ctx, url, whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The browser went away before ICE: close its side at once.
		s.Abandon()
		testutil.WaitFor(t, 5*time.Second, "the session to end", func() bool { return vs.Count() == 0 })
	})
	t.Run("connected, then gone", func(t *testing.T) {
		http.DefaultClient.CloseIdleConnections()
		srv.CloseClientConnections()
		before := runtime.NumGoroutine()
		s, err := whepclient.Dial(ctx, url, whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.FirstKeyframe():
		case <-time.After(testutil.Slack * 5 * time.Second):
			t.Fatal("no keyframe")
		}
		s.Abandon()
		testutil.WaitFor(t, 5*time.Second, "the session to end", func() bool { return vs.Count() == 0 })
		http.DefaultClient.CloseIdleConnections()
		srv.CloseClientConnections()
		testutil.WaitFor(t, 5*time.Second, "the session's goroutines to end", func() bool {
			return runtime.NumGoroutine() <= before
		})
	})
}

// An answered offer's slot becomes its session's: the viewer counts once
// against live.max_viewers from the moment it is a session (it counted
// twice until its offer's handler returned, so the 32nd of 32 bench viewers
// opening at once was refused).
func TestAnsweredOfferCountsOnce(t *testing.T) {
	feeds := NewFeeds(nil)
	play(t, feeds.Feed("cam-1"), false)
	vs := startViewers(t, feeds, ViewersOptions{MaxViewers: 2})
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	off, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(off); err != nil {
		t.Fatal(err)
	}
	<-gathered
	sdp := pc.LocalDescription().SDP
	o, err := parseOffer([]byte(sdp))
	if err != nil || !o.h264 {
		t.Fatalf("offer %+v: %v", o, err)
	}
	stream, _ := feeds.Feed("cam-1").Online()
	if ok, _ := vs.reserve(); !ok {
		t.Fatal("no slot for the first viewer")
	}
	v, _, err := vs.open(t.Context(), "cam-1", sdp, stream, o, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer vs.end(v, "test over")
	vs.mu.Lock()
	inUse := len(vs.sessions) + vs.reserved
	vs.mu.Unlock()
	if inUse != 1 {
		t.Errorf("one viewer takes %d of the max_viewers slots", inUse)
	}
	if ok, _ := vs.reserve(); !ok {
		t.Error("the second of two viewers refused")
	} else {
		vs.release()
	}
}

// directFeed is a feed of cam-1 with n pion viewers that have caught up
// (turned direct); frames carries the RTP timestamp of every frame's last
// packet at any viewer. unit makes the i-th 40-ms unit of one NAL unit.
type directFeed struct {
	f      *Feed
	vs     *Viewers
	frames chan uint32
}

var (
	testKey   = append([]byte{0x65}, bytes.Repeat([]byte{0x5a}, 20_000)...)
	testInter = append([]byte{0x41}, bytes.Repeat([]byte{0x5a}, 15_000)...) // 13 packets a viewer
)

func testStream(session uint64) media.Stream {
	clip := camsim.DefaultClip()
	return media.Stream{Camera: "cam-1", Session: session, Started: time.Now(),
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS, Width: clip.Width, Height: clip.Height}}
}

func testUnit(i int, n []byte) media.AccessUnit {
	pts := time.Duration(i) * 40 * time.Millisecond
	return media.AccessUnit{Kind: media.Video, PTS: pts, DTS: pts, Key: n[0] == 0x65, Payload: [][]byte{n}, Wall: time.Now()}
}

func startDirectFeed(t *testing.T, n int) *directFeed {
	t.Helper()
	feeds := NewFeeds(nil)
	d := &directFeed{f: feeds.Feed("cam-1"), frames: make(chan uint32, 1024)}
	d.f.OnStream(testStream(1))
	d.f.OnAccessUnit(testUnit(0, testKey))
	d.vs = startViewers(t, feeds, ViewersOptions{})
	srv := serve(t, d.vs, nil)
	for range n {
		s, err := whepclient.Dial(t.Context(), srv.URL+"/api/v1/cameras/cam-1/whep", whepclient.Options{
			OnVideo: func(p *rtp.Packet, _ time.Time) {
				if p.Marker {
					d.frames <- p.Timestamp
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	d.next(t, n, "the starting keyframe")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		d.f.mu.Lock()
		direct := 0
		for v := range d.f.viewers {
			if v.direct {
				direct++
			}
		}
		d.f.mu.Unlock()
		if direct == n {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d viewers caught up", direct, n)
		}
	}
}

// next waits for n frames and returns their RTP timestamps.
func (d *directFeed) next(t *testing.T, n int, what string) []uint32 {
	t.Helper()
	var ts []uint32
	for range n {
		select {
		case x := <-d.frames:
			ts = append(ts, x)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not reach every viewer (%d of %d)", what, len(ts), n)
		}
	}
	return ts
}

// TestCaughtUpViewersShareOneSend: once its viewers have caught up, a
// camera's frame is written to all of them by the feed in one hold of the
// socket, one sendmmsg for the four.
func TestCaughtUpViewersShareOneSend(t *testing.T) {
	const viewers, frames = 4, 20
	d := startDirectFeed(t, viewers)
	sent0 := d.vs.conn.sent.Load()
	for i := 1; i <= frames; i++ {
		d.f.OnAccessUnit(testUnit(i, testInter))
		d.next(t, viewers, fmt.Sprintf("frame %d", i))
	}
	if n := d.vs.conn.sent.Load() - sent0; n != frames {
		t.Errorf("%d sendmmsg calls for %d frames to %d viewers, want one a frame", n, frames, viewers)
	}
}

// TestDirectViewersFollowAReconnect: after a break, caught-up viewers wait
// for the new session's keyframe, and RTP time runs on across it.
func TestDirectViewersFollowAReconnect(t *testing.T) {
	const viewers = 2
	d := startDirectFeed(t, viewers)
	d.f.OnAccessUnit(testUnit(1, testInter))
	before := d.next(t, viewers, "a frame before the break")
	d.f.OnBreak("disconnected", 0)
	d.f.OnStream(testStream(2))
	d.f.OnAccessUnit(testUnit(0, testInter)) // not a keyframe: no viewer may get it
	d.f.OnAccessUnit(testUnit(1, testKey))
	d.f.OnAccessUnit(testUnit(2, testInter))
	after := d.next(t, 2*viewers, "the new session's keyframe and the frame after it")
	select {
	case x := <-d.frames:
		t.Fatalf("a further frame (RTP time %d): the new session's first unit was not a keyframe", x)
	case <-time.After(100 * time.Millisecond):
	}
	for _, x := range after {
		if int32(x-before[0]) <= 0 {
			t.Errorf("RTP time %d after the reconnect does not run on from %d", x, before[0])
		}
	}
}
