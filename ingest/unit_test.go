package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/sdp/v3"

	"vigil/internal/backoff"
	"vigil/internal/media"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"no jitter", 0.5, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"jitter low", 0, []time.Duration{400 * time.Millisecond, 800 * time.Millisecond}},
		{"jitter high", 0.999999, []time.Duration{600 * time.Millisecond, 1200 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff.New(backoff.Policy{Min: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2})
			b.Rand = func() float64 { return tc.rand }
			for i, w := range tc.want {
				if got := b.Pause(); got.Round(time.Millisecond) != w {
					t.Fatalf("pause %d = %v, want %v", i, got, w)
				}
			}
			b.Reset()
			if got := b.Pause().Round(time.Millisecond); got != tc.want[0] {
				t.Fatalf("after reset %v", got)
			}
		})
	}
}

func TestRateWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := rateWindow{span: 5 * time.Second}
	w.reset(t0)
	for i := range 250 { // 10 s at 25 fps, 5000 bytes per frame
		w.add(t0.Add(time.Duration(i)*40*time.Millisecond), 5000, true)
	}
	bps, fps := w.rates(t0.Add(10 * time.Second))
	if fps < 24 || fps > 26 || bps < 960_000 || bps > 1_040_000 {
		t.Fatalf("bps %d fps %v", bps, fps)
	}
	if bps, fps := w.rates(t0.Add(30 * time.Second)); bps != 0 || fps != 0 {
		t.Fatalf("stale window: %d %v", bps, fps)
	}
}

func TestRedact(t *testing.T) {
	c := Camera{ID: "cam", URL: "rtsp://192.0.2.1/x", Username: "admin", Password: "p@ss/w0rd"}
	u, err := pullURL(c)
	if err != nil {
		t.Fatal(err)
	}
	err = redactError(errors.New("describe "+u.String()+": p@ss/w0rd"), c)
	if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "w0rd") {
		t.Fatalf("not redacted: %v", err)
	}
	if !strings.Contains(err.Error(), "admin:***@192.0.2.1") {
		t.Fatalf("unexpected form: %v", err)
	}
}

func TestApplyValidates(t *testing.T) {
	s, err := New(Options{Registerer: newTestRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply([]Camera{
		{ID: "Bad", URL: "rtsp://h/x"},
		{ID: "ok", URL: "http://h/x"},
		{ID: "ok2", URL: "rtsp://admin:pw@h/x"},
		{ID: "ok3", URL: "rtsp://h/x", Transport: "sctp"},
		{ID: "ok4", URL: "rtsp://h/x"},
		{ID: "ok4", URL: "rtsp://h/x"},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"Bad"`, "scheme", "credentials", "transport", "duplicate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("password in error: %v", err)
	}
	if len(s.Statuses()) != 0 {
		t.Fatal("invalid list applied")
	}
}

func TestDamageLoggedInAggregate(t *testing.T) {
	s, err := New(Options{Registerer: newTestRegistry(), LostLogInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := s.newCamera(Camera{ID: "cam", URL: "rtsp://h/x", Enabled: true})
	t0 := time.Unix(1000, 0)
	type step struct {
		at        time.Duration
		lost      int
		decode    int
		wantLost  uint64
		wantDecod uint64
	}
	steps := []step{
		{at: 0, lost: 500, decode: 3, wantLost: 500, wantDecod: 3}, // first report at once
		{at: time.Second, lost: 100},                               // inside the interval: held back
		{at: 5 * time.Second, lost: 100},
		{at: 10 * time.Second, wantLost: 200}, // one line for both
		{at: 25 * time.Second},                // nothing pending: no line
		{at: 26 * time.Second, decode: 1, wantDecod: 1},
	}
	for i, st := range steps {
		for range st.lost {
			c.onLost(1)
		}
		for range st.decode {
			c.onDecodeError(errors.New("bad packet"))
		}
		c.mu.Lock()
		lost, decode, _ := c.takeDamageLocked(t0.Add(st.at))
		c.mu.Unlock()
		if lost != st.wantLost || decode != st.wantDecod {
			t.Fatalf("step %d: lost %d decode %d, want %d %d", i, lost, decode, st.wantLost, st.wantDecod)
		}
	}
	if got := counter(s.m.lost.WithLabelValues("cam")); got != 700 {
		t.Fatalf("lost counter %v", got)
	}
}

func TestPickTracks(t *testing.T) {
	const sdpText = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n" +
		"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:trackID=1\r\n" +
		"m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata+gzip/90000\r\na=control:trackID=2\r\n"
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(sdpText)); err != nil {
		t.Fatal(err)
	}
	var desc description.Session
	if err := desc.Unmarshal2(&sd); err != nil {
		t.Fatal(err)
	}
	for _, onvif := range []bool{true, false} {
		s, err := New(Options{Registerer: newTestRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		p := &puller{cam: s.newCamera(Camera{ID: "cam", ONVIFMetadata: onvif})}
		if err := p.pick(&desc); err != nil {
			t.Fatal(err)
		}
		if p.codec != media.H264 || p.audioTrack == nil || p.audioTrack.Codec != media.G711 || !p.audioTrack.MULaw {
			t.Fatalf("video %v audio %+v", p.codec, p.audioTrack)
		}
		if (p.metaMedia != nil) != onvif {
			t.Fatalf("onvif %v: metadata track picked %v", onvif, p.metaMedia != nil)
		}
		if want := 2 + map[bool]int{true: 1}[onvif]; len(p.medias()) != want {
			t.Fatalf("%d medias, want %d", len(p.medias()), want)
		}
	}
}
