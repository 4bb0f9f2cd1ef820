package live

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"

	"vigil/internal/media"
	"vigil/live/whepclient"
)

// BenchmarkViewerFrames measures what writing one 4 Mbit/s frame to one
// viewer costs: a feed with four real pion viewers on loopback, each
// frame handed to the feed as ingest would and waited for at every
// viewer before the next, so nothing queues and nothing is dropped. The
// viewers' side runs in the same process; profile it with -cpuprofile and
// read the server's share under viewer.run.
func BenchmarkViewerFrames(b *testing.B) {
	const viewers = 4
	feeds := NewFeeds(nil)
	f := feeds.Feed("cam-1")
	sps := []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc9, 0x20}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	f.OnStream(media.Stream{Camera: "cam-1", Session: 1, Started: time.Now(),
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: sps, PPS: pps, Width: 1920, Height: 1080}})
	// A 4 Mbit/s, 25 fps stream with a keyframe every 50 frames: keyframes
	// of 100 KB, other frames of 18 KB.
	key := append([]byte{0x65}, bytes.Repeat([]byte{0x5a}, 100_000)...)
	inter := append([]byte{0x41}, bytes.Repeat([]byte{0x5a}, 18_000)...)
	frame := func(i int) media.AccessUnit {
		n := inter
		if i%50 == 0 {
			n = key
		}
		pts := time.Duration(i) * 40 * time.Millisecond
		return media.AccessUnit{Kind: media.Video, PTS: pts, DTS: pts, Key: i%50 == 0, Payload: [][]byte{n}, Wall: time.Now()}
	}
	f.OnAccessUnit(frame(0))

	vs := startViewers(b, feeds, ViewersOptions{})
	srv := serve(b, vs, nil)
	frames := make(chan struct{}, viewers*4)
	var sessions []*whepclient.Session
	for range viewers {
		s, err := whepclient.Dial(b.Context(), srv.URL+"/api/v1/cameras/cam-1/whep", whepclient.Options{
			OnVideo: func(p *rtp.Packet, _ time.Time) {
				if p.Marker {
					frames <- struct{}{}
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(b.Context()) })
		sessions = append(sessions, s)
		select {
		case <-frames: // the starting GOP of one keyframe
		case <-time.After(10 * time.Second):
			b.Fatal("no first frame")
		}
	}
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		f.OnAccessUnit(frame(i))
		for range viewers {
			select {
			case <-frames:
			case <-time.After(5 * time.Second):
				b.Fatalf("frame %d did not arrive", i)
			}
		}
	}
	b.StopTimer()
	lost, pkts := 0, 0
	for _, s := range sessions {
		lost += s.Stats().Lost
		pkts += s.Stats().VideoPackets
	}
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(pkts)/float64(b.N*viewers), "packets/viewer-frame")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*viewers), "ns/viewer-frame")
}
