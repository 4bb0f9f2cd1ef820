package recorder

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// faultFS fails writes with err while armed, after writing half the bytes
// like a file system running out of space mid-write.
type faultFS struct {
	osFS
	err atomic.Pointer[error]
}

func (f *faultFS) arm(err error) { f.err.Store(&err) }
func (f *faultFS) disarm()       { f.err.Store(nil) }

func (f *faultFS) failing() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFS) Create(name string) (File, error) {
	if err := f.failing(); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	o, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return faultFile{o, f}, nil
}

func (f *faultFS) Append(name string) (File, error) {
	o, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return faultFile{o, f}, nil
}

func (f faultFile) Write(b []byte) (int, error) {
	if err := f.fs.failing(); err != nil {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.Write(b)
}

type healthLog struct {
	mu     sync.Mutex
	events []string
}

func (h *healthLog) on(camera, kind string, active bool, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("%s/%s=%v", camera, kind, active))
}

func (h *healthLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		camera string
		kind   string
	}{
		{"disk full", syscall.ENOSPC, "", HealthStorageFull},
		{"io error", syscall.EIO, "hall-entrance", HealthRecordingFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t)
			clock := &fakeClock{t: t0}
			fsys := &faultFS{}
			var health healthLog
			r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second, Now: clock.Now, FS: fsys, OnHealth: health.on, RetryInterval: 5 * time.Second})
			w, _ := r.Camera("hall-entrance", 0)
			w.OnStream(stream(c, "hall-entrance", 1, t0))
			f := &feeder{c: c, wall: t0}
			feed := func(n int) {
				for range n {
					au := f.next()
					clock.Set(au.Wall)
					w.OnAccessUnit(au)
				}
			}
			feed(140) // 5.6 s
			fsys.arm(tc.err)
			feed(110) // to 10 s
			want := []string{tc.camera + "/" + tc.kind + "=true"}
			if got := health.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("health while failing: %v, want %v", got, want)
			}
			if n := testutil.ToFloat64(r.m.writeErrors.WithLabelValues("hall-entrance")); n < 1 {
				t.Errorf("write_errors_total = %v", n)
			}
			fsys.disarm()
			feed(200) // to 18 s
			want = append(want, tc.camera+"/"+tc.kind+"=false")
			if got := health.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("health after recovery: %v, want %v", got, want)
			}
			if err := r.CloseCamera("hall-entrance"); err != nil {
				t.Fatal(err)
			}
			segs, gaps, err := r.Catalog().List("hall-entrance", t0, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			// 0-4 s whole; 4-5 s kept of the broken one; from the first
			// keyframe after the retry (12 s) on
			if len(segs) != 4 || len(gaps) != 1 {
				t.Fatalf("segments %+v gaps %+v", segs, gaps)
			}
			if !segs[1].Start.Equal(t0.Add(4*time.Second)) || !segs[1].End.Equal(t0.Add(5*time.Second)) || !segs[2].Start.Equal(t0.Add(12*time.Second)) {
				t.Errorf("segments %+v", segs)
			}
			for _, s := range segs {
				p := ffprobe(t, s.Path)
				if p.Stderr != "" || p.Frames != s.Frames {
					t.Errorf("%s: ffprobe %+v, index frames %d", s.ID, p, s.Frames)
				}
				if got := fileSHA256(t, s.Path); got != s.SHA256 {
					t.Errorf("%s: sha256 mismatch", s.ID)
				}
			}
		})
	}
}
