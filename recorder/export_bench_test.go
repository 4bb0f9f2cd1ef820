package recorder

import (
	"testing"
	"time"

	"vigil/internal/media"
)

// record4Mbps records d of a 4 Mbit/s camera into dir: the fixture's frames
// padded with filler-data NAL units to 20 kB, 25 fps, 60-s segments of
// 1-s parts, fed as fast as the recorder takes them.
func record4Mbps(b *testing.B, dir string, d time.Duration) {
	c := fixture(b)
	const frameBytes = 4_000_000 / 8 / 25
	frames := make([][][]byte, len(c.Frames))
	for i, fr := range c.Frames {
		n := 0
		for _, nalu := range fr.NALUs {
			n += len(nalu)
		}
		nalus := append([][]byte(nil), fr.NALUs...)
		if pad := frameBytes - n; pad > 1 {
			filler := make([]byte, pad)
			filler[0] = 12
			for j := 1; j < pad-1; j++ {
				filler[j] = 0xff
			}
			filler[pad-1] = 0x80
			nalus = append(nalus, filler)
		}
		frames[i] = nalus
	}
	r, err := New(Options{Dir: dir, Fsync: FsyncNever, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	w, _ := r.Camera("cam", 0)
	w.OnStream(stream(c, "cam", 1, t0))
	fd := c.FrameDuration()
	for i := range int(d / fd) {
		dts := time.Duration(i) * fd
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, DTS: dts, PTS: dts, Key: c.Frames[i%len(c.Frames)].Key, Payload: frames[i%len(frames)], Wall: t0.Add(dts)})
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}
