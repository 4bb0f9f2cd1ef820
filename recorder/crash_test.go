package recorder

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "VIGIL_RECORDER_CRASH_DIR"

// chunkFS splits every write into small ones so a kill lands mid-part.
type chunkFS struct{ osFS }

type chunkFile struct{ *os.File }

func (c chunkFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return chunkFile{f}, nil
}

func (c chunkFile) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), 997)
		m, err := c.File.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// TestCrashChild is the child of TestCrashRecovery: it records the fixture
// until it is killed. Outside that test it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return
	}
	c := fixture(t)
	r, err := New(Options{Dir: dir, Segment: time.Hour, Part: 200 * time.Millisecond, Fsync: FsyncPart, FS: chunkFS{}})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := r.Camera("hall-counter", 0)
	w.OnStream(stream(c, "hall-counter", 1, t0))
	f := &feeder{c: c, wall: t0}
	for i := 1; i < 100000; i++ {
		f.feed(w, 1)
		if i%25 == 0 {
			fmt.Printf("fed %d\n", i)
		}
		time.Sleep(time.Millisecond) // give the parent's kill a chance to land anywhere
	}
	t.Fatal("not killed")
}

func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	fed := 0
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "fed "); ok {
			fed, _ = strconv.Atoi(n)
			if fed >= 160 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if fed < 160 {
		t.Fatalf("child fed only %d frames", fed)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "hall-counter", "*", "*.mp4"))
	if len(files) != 1 {
		t.Fatalf("segment files after the crash: %v", files)
	}
	before, _ := os.Stat(files[0])

	r, _ := newTestRecorder(t, Options{Dir: dir})
	segs, _, err := r.Catalog().List("hall-counter", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 {
		t.Fatalf("after recovery: %d segments", len(segs))
	}
	s := segs[0]
	t.Logf("child fed %d frames; file was %d bytes, recovered %d bytes with %d frames", fed, before.Size(), s.Bytes, s.Frames)
	// frames fed before the report, minus the part being filled (5 frames
	// at 200 ms) and the frame waiting for its duration
	if min := fed - 5 - 1; s.Frames < min {
		t.Errorf("recovered %d frames; at least %d had been written", s.Frames, min)
	}
	p := ffprobe(t, s.Path)
	if p.Stderr != "" || p.Frames != s.Frames {
		t.Errorf("recovered segment: ffprobe %+v, index frames %d", p, s.Frames)
	}
	if got := fileSHA256(t, s.Path); got != s.SHA256 {
		t.Errorf("sha256 %s, index %s", got, s.SHA256)
	}
	if want := t0.Add(time.Duration(s.Frames) * fixture(t).FrameDuration()); !s.End.Equal(want) {
		t.Errorf("end %v, want %v", s.End, want)
	}
	// a second start finds nothing to do
	r2, _ := newTestRecorder(t, Options{Dir: dir})
	if segs, _, _ := r2.Catalog().List("hall-counter", t0, t0.Add(time.Hour)); len(segs) != 1 {
		t.Errorf("second start: %d segments", len(segs))
	}
}
