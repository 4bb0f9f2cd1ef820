package recorder

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// closeFaultFS fails the Sync or the Close of segment files while armed,
// after dropping the file's last third, as a disk that lost the pages it
// could not write back.
type closeFaultFS struct {
	osFS
	syncErr, closeErr atomic.Pointer[error]
}

type closeFaultFile struct {
	*os.File
	fs *closeFaultFS
}

func (f *closeFaultFS) Create(name string) (File, error) {
	o, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return closeFaultFile{o, f}, nil
}

func loseLastThird(path string) {
	if st, err := os.Stat(path); err == nil {
		os.Truncate(path, st.Size()*2/3)
	}
}

func (f closeFaultFile) Sync() error {
	if p := f.fs.syncErr.Load(); p != nil {
		loseLastThird(f.Name())
		return &os.PathError{Op: "sync", Path: f.Name(), Err: *p}
	}
	return f.File.Sync()
}

func (f closeFaultFile) Close() error {
	err := f.File.Close()
	if p := f.fs.closeErr.Load(); p != nil {
		loseLastThird(f.Name())
		return &os.PathError{Op: "close", Path: f.Name(), Err: *p}
	}
	return err
}

// A segment whose Sync or Close failed is not indexed with the hash of
// the bytes the writer meant to write: the failure counts as a write
// error and raises recording_failure, and the segment is indexed from the
// file as it is on disk, with that file's hash, once a part was written
// again; if the writer stops first, startup recovery does it.
func TestCloseSegmentErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fsync   string
		sync    bool // the Sync fails, else the Close
		restart bool // the writer stops before writing works again
	}{
		{"sync fails", FsyncSegment, true, false},
		{"close fails", FsyncPart, false, false},
		{"sync fails, then the writer stops", FsyncSegment, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t)
			clock := &fakeClock{t: t0}
			fsys := &closeFaultFS{}
			var health healthLog
			opts := Options{Node: "node-a", Segment: 4 * time.Second, Part: time.Second, Fsync: tc.fsync, Now: clock.Now, FS: fsys, OnHealth: health.on, RetryInterval: 5 * time.Second}
			r, _ := newTestRecorder(t, opts)
			w, _ := r.Camera("hall-entrance", 0)
			w.SetEpoch(7)
			w.OnStream(stream(c, "hall-entrance", 1, t0))
			f := &feeder{c: c, wall: t0}
			feed := func(n int) {
				for range n {
					au := f.next()
					clock.Set(au.Wall)
					w.OnAccessUnit(au)
				}
			}
			feed(100) // to 3.96 s; the keyframe at 4 s closes the first segment
			eio := error(syscall.EIO)
			if tc.sync {
				fsys.syncErr.Store(&eio)
			} else {
				fsys.closeErr.Store(&eio)
			}
			feed(1)
			fsys.syncErr.Store(nil)
			fsys.closeErr.Store(nil)

			first := filepath.Join(r.opts.Dir, "hall-entrance", t0.Format(dayLayout), "21-05-00.000Z.mp4")
			if _, err := os.Stat(first); err != nil {
				t.Fatal(err)
			}
			if n := testutil.ToFloat64(r.m.writeErrors.WithLabelValues("hall-entrance")); n != 1 {
				t.Errorf("write_errors_total = %v, want 1", n)
			}
			want := []string{"hall-entrance/" + HealthRecordingFailure + "=true"}
			if got := health.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("health: %v, want %v", got, want)
			}
			idx := filepath.Join(r.opts.Dir, "hall-entrance", t0.Format(dayLayout), indexFile)
			if b, err := os.ReadFile(idx); len(b) != 0 || !os.IsNotExist(err) {
				t.Fatalf("indexed after the failure: %q %v", b, err)
			}

			if tc.restart {
				if err := r.CloseCamera("hall-entrance"); err == nil {
					t.Error("closing the camera did not report the segment left unindexed")
				}
				r, _ = newTestRecorder(t, Options{Dir: r.opts.Dir, Segment: 4 * time.Second, Part: time.Second})
			} else {
				feed(250) // to 14 s: the retry at 9 s, a segment from the next keyframe
				want = append(want, "hall-entrance/"+HealthRecordingFailure+"=false")
				if got := health.get(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("health after writing again: %v, want %v", got, want)
				}
				if err := r.CloseCamera("hall-entrance"); err != nil {
					t.Fatal(err)
				}
			}
			segs, _, err := r.Catalog().List("hall-entrance", t0, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) == 0 || segs[0].Path != first || (!tc.restart && len(segs) < 2) {
				t.Fatalf("segments %+v", segs)
			}
			if !tc.restart && (segs[0].Node != "node-a" || segs[0].Epoch != 7) {
				t.Errorf("first segment recorded by %q epoch %d, want node-a epoch 7", segs[0].Node, segs[0].Epoch)
			}
			if segs[0].Frames >= 100 || segs[0].Frames == 0 {
				t.Errorf("first segment indexed with %d frames; the file lost its last third", segs[0].Frames)
			}
			for _, s := range segs {
				st, err := os.Stat(s.Path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fileSHA256(t, s.Path); got != s.SHA256 || st.Size() != s.Bytes {
					t.Errorf("%s: indexed %d bytes sha256 %s; the file has %d bytes sha256 %s", s.ID, s.Bytes, s.SHA256, st.Size(), got)
				}
				if p := ffprobe(t, s.Path); p.Stderr != "" || p.Frames != s.Frames {
					t.Errorf("%s: ffprobe %+v, index frames %d", s.ID, p, s.Frames)
				}
			}
			raw, err := os.ReadFile(idx)
			if err != nil || bytes.Count(raw, []byte("21-05-00.000Z.mp4")) != 1 {
				t.Errorf("index: %v\n%s", err, raw)
			}
		})
	}
}

// tornFS is faultFS whose files cannot be truncated either while armed:
// the half part a failed write left stays in the file.
type tornFS struct{ faultFS }

type tornFile struct{ faultFile }

func (f *tornFS) Create(name string) (File, error) {
	file, err := f.faultFS.Create(name)
	if err != nil {
		return nil, err
	}
	return tornFile{file.(faultFile)}, nil
}

func (f tornFile) Truncate(size int64) error {
	if err := f.fs.failing(); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return f.File.Truncate(size)
}

// A write that failed mid-part and whose broken tail could not be cut
// leaves a file longer than what was hashed: the segment is indexed from
// the file read back, cut to its complete parts, once writing works again.
func TestBrokenTailNotCut(t *testing.T) {
	c := fixture(t)
	clock := &fakeClock{t: t0}
	fsys := &tornFS{}
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second, Now: clock.Now, FS: fsys, RetryInterval: 5 * time.Second})
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
	fsys.arm(syscall.EIO)
	feed(20) // the part at 6 s: half written, not cut
	fsys.disarm()
	broken := filepath.Join(r.opts.Dir, "hall-entrance", t0.Format(dayLayout), "21-05-04.000Z.mp4")
	if _, err := r.Catalog().Segment("hall-entrance", segmentID(t0.Format(dayLayout), "21-05-04.000Z.mp4")); err == nil {
		t.Fatal("the segment with the broken tail was indexed before it was read back")
	}
	feed(200) // to 14.4 s: the retry, a segment from 12 s
	if err := r.CloseCamera("hall-entrance"); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List("hall-entrance", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 || segs[1].Path != broken || !segs[1].End.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("segments %+v", segs)
	}
	for _, s := range segs {
		st, err := os.Stat(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fileSHA256(t, s.Path); got != s.SHA256 || st.Size() != s.Bytes {
			t.Errorf("%s: indexed %d bytes sha256 %s; the file has %d bytes sha256 %s", s.ID, s.Bytes, s.SHA256, st.Size(), got)
		}
		if p := ffprobe(t, s.Path); p.Stderr != "" || p.Frames != s.Frames {
			t.Errorf("%s: ffprobe %+v, index frames %d", s.ID, p, s.Frames)
		}
	}
}
