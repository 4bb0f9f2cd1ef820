package live

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"vigil/internal/camsim"
	"vigil/internal/media"
)

// needTool fails the test when a tool it needs is missing: these tests
// never skip, under CI=true or not.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required (Debian package ffmpeg): %v", name, err)
	}
	return p
}

// play feeds the camsim clip into f as ingest would, one frame per tick,
// with a stream announced first and G.711 audio when audio is set, until
// the test ends. Frames are paced by a ticker, not asserted on.
func play(t *testing.T, f *Feed, audio bool) {
	t.Helper()
	clip := camsim.DefaultClip()
	s := media.Stream{Camera: "cam-1", Session: 1, Started: time.Now(),
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS, Width: clip.Width, Height: clip.Height}}
	if audio {
		s.Audio = &media.AudioTrack{Codec: media.G711, ClockRate: 8000, ChannelCount: 1, MULaw: true}
	}
	f.OnStream(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(clip.FrameDuration())
		defer tick.Stop()
		silence := make([]byte, 320)
		for i := 0; ; i++ {
			fr := clip.Frames[i%len(clip.Frames)]
			pts := time.Duration(i) * clip.FrameDuration()
			f.OnAccessUnit(media.AccessUnit{Kind: media.Video, PTS: pts, DTS: pts, Key: fr.Key, Payload: fr.NALUs, Wall: time.Now()})
			if audio {
				f.OnAccessUnit(media.AccessUnit{Kind: media.Audio, PTS: pts, DTS: pts, Payload: [][]byte{silence}, Wall: time.Now()})
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// h265Keyframe is the first keyframe of ingest's H.265 fixture.
func h265Keyframe(t *testing.T) Keyframe {
	t.Helper()
	buf, err := os.ReadFile("../ingest/testdata/small.h265")
	if err != nil {
		t.Fatal(err)
	}
	k := Keyframe{Camera: "cam-265", Video: media.VideoTrack{Codec: media.H265, ClockRate: 90000, Width: 320, Height: 180}}
	for _, n := range camsim.SplitAnnexB(buf) {
		if len(n) < 2 {
			continue
		}
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); {
		case typ == h265.NALUType_VPS_NUT:
			k.Video.VPS = n
		case typ == h265.NALUType_SPS_NUT:
			k.Video.SPS = n
		case typ == h265.NALUType_PPS_NUT:
			k.Video.PPS = n
		case typ == h265.NALUType_AUD_NUT:
			if len(k.Unit.Payload) > 0 {
				k.Unit.Kind, k.Unit.Key, k.Unit.Wall = media.Video, true, time.Now()
				return k
			}
		case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT, typ < 10:
			k.Unit.Payload = append(k.Unit.Payload, n)
		}
	}
	t.Fatal("no keyframe in small.h265")
	return k
}

// serve runs the viewers' and snapshots' routes as internal/app does.
func serve(t testing.TB, vs *Viewers, ss *Snapshots) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if vs != nil {
		mux.HandleFunc("POST /api/v1/cameras/{id}/whep", vs.ServeOffer)
		mux.HandleFunc("DELETE /api/v1/cameras/{id}/whep/{session}", vs.ServeEnd)
		mux.HandleFunc("PATCH /api/v1/cameras/{id}/whep/{session}", vs.ServePatch)
	}
	if ss != nil {
		mux.Handle("GET /api/v1/cameras/{id}/snapshot", ss)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func known(ids ...string) func(string) bool {
	return func(id string) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
}

func hasCode(body, code string) bool { return strings.Contains(body, `"code":"`+code+`"`) }

func testutilCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
