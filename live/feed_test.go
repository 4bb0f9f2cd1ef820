package live

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/media"
)

// TestFeedCutsVideoOnceForAllViewers checks that a video unit is cut into
// RTP payloads once, by the feed, and that every viewer is handed the
// same payloads; and that a feed nobody watches does no such work.
func TestFeedCutsVideoOnceForAllViewers(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xc0, 0x1f}, []byte{0x68, 0xce, 0x3c, 0x80}
	stream := media.Stream{Camera: "cam-1", Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: sps, PPS: pps}}
	idr := append([]byte{0x65}, bytes.Repeat([]byte{7}, 3*rtpMTU)...)
	key := media.AccessUnit{Kind: media.Video, Key: true, Payload: [][]byte{idr}}

	f := NewFeeds(nil).Feed("cam-1")
	f.OnStream(stream)
	f.OnAccessUnit(key)
	w := &viewer{}
	_, gop := f.join(w)
	f.leave(w)
	if len(gop) != 1 || gop[0].rtp != nil {
		t.Fatalf("GOP of an unwatched feed: %d units, payloads cut: %v", len(gop), len(gop) == 1 && gop[0].rtp != nil)
	}

	m := newMetrics(prometheus.NewRegistry())
	a := &viewer{queue: make(chan item, 4), m: m}
	b := &viewer{queue: make(chan item, 4), m: m}
	f = NewFeeds(nil).Feed("cam-1")
	f.OnStream(stream)
	f.join(a)
	f.join(b)
	f.OnAccessUnit(key)
	ia, ib := <-a.queue, <-b.queue
	if ia.u == nil || ia.u != ib.u {
		t.Fatalf("viewers were handed different units: %p %p", ia.u, ib.u)
	}
	want := packetizeH264(nil, [][]byte{sps, pps, idr}, rtpMTU) // parameter sets before the keyframe that lacks them
	if len(ia.u.rtp) != len(want) {
		t.Fatalf("%d payloads, want %d", len(ia.u.rtp), len(want))
	}
	for i := range want {
		if !bytes.Equal(ia.u.rtp[i], want[i]) {
			t.Fatalf("payload %d differs", i)
		}
	}
	if ia.in.IsZero() {
		t.Error("a live unit without its receipt time")
	}
}

func TestLiveDelayRunsFromIngestArrival(t *testing.T) {
	in := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	camera := in.Add(-800 * time.Millisecond) // the camera's clock, via sender reports
	for _, tc := range []struct {
		name     string
		received time.Time
		want     time.Time
	}{
		{"arrival at ingest", in.Add(-2 * time.Millisecond), in.Add(-2 * time.Millisecond)},
		{"no arrival time", time.Time{}, in},
		{"arrival after the feed's receipt (another clock)", in.Add(time.Millisecond), in},
	} {
		it := item{u: &unit{au: media.AccessUnit{Kind: media.Video, Wall: camera, Received: tc.received}}, in: in}
		if got := it.delayFrom(); !got.Equal(tc.want) {
			t.Errorf("%s: delay from %v, want %v", tc.name, got, tc.want)
		}
	}
}
