package recorder

import (
	"testing"
	"time"
)

// TestListHandoverIsNoGap: between a segment closed at its keyframe and
// the first part of the next one on disk, the listing shows no outage: the
// camera is recording all along. The footage view showed that second as
// a gap of "09:19:18 – 09:19:18". A real break stays a gap, ending where
// recording starts again, also before that segment's first part.
func TestListHandoverIsNoGap(t *testing.T) {
	o := startOpenRecording(t)
	list := func() ([]Segment, []Gap) {
		t.Helper()
		segs, gaps, err := o.r.Catalog().List(exportCamera, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return segs, gaps
	}
	// Frame by frame up to the handover: the first segment is indexed and
	// the next one has its file but no part yet.
	var segs []Segment
	for range 3 * 60 * 25 {
		au := o.f.next()
		o.w.OnAccessUnit(au)
		o.clock.Set(au.Wall)
		if segs, _ = list(); len(segs) == 1 && !segs[0].Open {
			break
		}
	}
	if len(segs) != 1 || segs[0].Open {
		t.Fatalf("no handover seen: %+v", segs)
	}
	for _, d := range []time.Duration{0, 500 * time.Millisecond} {
		o.clock.Set(segs[0].End.Add(40*time.Millisecond + d))
		if _, gaps := list(); len(gaps) != 0 {
			t.Errorf("handover, %v after the close: gaps %+v", d, gaps)
		}
	}

	// A break: from the end of the last segment to now is an outage.
	o.until(segs[0].End.Add(3 * time.Second))
	o.w.OnBreak("test", 0)
	segs, _ = list()
	last := segs[len(segs)-1]
	o.clock.Set(last.End.Add(5 * time.Second))
	if _, gaps := list(); len(gaps) != 1 || !gaps[0].Start.Equal(last.End) || !gaps[0].End.Equal(o.clock.Now()) {
		t.Fatalf("during the outage: gaps %+v, want %v to now %v", gaps, last.End, o.clock.Now())
	}
	// Recording again from a keyframe 5 s later, its first part not on disk
	// yet: the outage ends where the new segment starts.
	o.f = &feeder{c: o.f.c, wall: last.End.Add(5 * time.Second)}
	o.w.OnStream(stream(o.f.c, exportCamera, 2, o.f.wall))
	o.w.OnAccessUnit(o.f.next())
	o.clock.Set(o.f.wall.Add(300 * time.Millisecond))
	if segs, _ := list(); segs[len(segs)-1].Open {
		t.Fatalf("the new segment has a part already: %+v", segs[len(segs)-1])
	}
	if _, gaps := list(); len(gaps) != 1 || !gaps[0].Start.Equal(last.End) || !gaps[0].End.Equal(o.f.wall) {
		t.Errorf("recording again: gaps %+v, want %v – %v", gaps, last.End, o.f.wall)
	}
}
