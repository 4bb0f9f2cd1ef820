package recorder

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// TestParseMoofMatchesMediacommon reads every fragment of recorded segments
// with both parseMoof and mediacommon's fmp4 reader and compares them.
func TestParseMoofMatchesMediacommon(t *testing.T) {
	rec := recordWithGap(t)
	segs, _, err := rec.catalog.List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range segs {
		b, err := os.ReadFile(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		var scratch []byte
		src, err := scanExportSource(seg, nil, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		var ps fmp4.Parts
		moofs := 0
		for off := 0; off+8 <= len(b); {
			size := int(binary.BigEndian.Uint32(b[off:]))
			if string(b[off+4:off+8]) == "moof" {
				moofs++
			}
			off += size
		}
		first := bytes.Index(b, []byte("moof")) - 4
		if err := ps.Unmarshal(b[first:]); err != nil {
			t.Fatal(err)
		}
		if len(ps) != len(src.parts) || len(ps) != moofs {
			t.Fatalf("segment %s: %d parts by parseMoof, %d by mediacommon, %d moofs", seg.ID, len(src.parts), len(ps), moofs)
		}
		frames := 0
		for i, p := range ps {
			for _, pt := range p.Tracks {
				got := src.parts[i].tracks[trackIndex(&src.init, pt.ID)]
				if len(got) != len(pt.Samples) {
					t.Fatalf("part %d: %d samples, want %d", i, len(got), len(pt.Samples))
				}
				for j, s := range pt.Samples {
					g := got[j]
					if g.dur != s.Duration || g.cts != s.PTSOffset || g.sync == s.IsNonSyncSample || !bytes.Equal(b[g.off:g.off+int64(g.size)], s.Payload) {
						t.Fatalf("part %d sample %d: %+v, want %+v", i, j, g, s)
					}
				}
				frames += len(got)
			}
		}
		if frames != seg.Frames {
			t.Errorf("segment %s: %d frames, index says %d", seg.ID, frames, seg.Frames)
		}
	}
}

func FuzzParseMoof(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'})
	f.Add(appendMoof(nil, 1, &fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000}}}, []uint64{0},
		[][]srcSample{{{size: 10, dur: 3600, sync: true}, {size: 20, dur: 3600, cts: 100}}}))
	init := &fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000}, {ID: 2, TimeScale: 8000}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		end := int64(len(b)) + 1000
		sp, err := parseMoof(b, 0, int64(len(b)), end, init, t0)
		if err != nil {
			return
		}
		for _, tr := range sp.tracks {
			for _, s := range tr {
				if s.off < int64(len(b)) || s.off+int64(s.size) > end || s.size == 0 {
					t.Fatalf("sample outside the mdat: %+v", s)
				}
			}
		}
	})
}
