package recorder

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	free := int64(10 << 20)
	r, err := New(Options{Dir: t.TempDir(), MinFreeBytes: 5 << 20,
		Statfs: func(string) (int64, int64, error) { return free, 100 << 20, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ready(); err != nil {
		t.Fatalf("ready with space: %v", err)
	}
	free = 1 << 20
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "below min_free_bytes") {
		t.Fatalf("ready below min_free: %v", err)
	}
}

// With min_free_bytes 0 the directory check passes on a full disk (an
// empty file fits); the cameras' failing writes make the node not ready.
func TestNotReadyWhileEveryCameraFailsToWrite(t *testing.T) {
	c := fixture(t)
	clock := &fakeClock{t: t0}
	fsys := &faultFS{}
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second, Now: clock.Now, FS: fsys, RetryInterval: 5 * time.Second,
		Statfs: func(string) (int64, int64, error) { return 0, 100 << 20, nil }})
	feeders := map[string]*feeder{}
	for _, cam := range []string{"hall-entrance", "key-site-gate"} {
		w, _ := r.Camera(cam, 0)
		w.OnStream(stream(c, cam, 1, t0))
		feeders[cam] = &feeder{c: c, wall: t0}
	}
	idle, _ := r.Camera("never-connected", 0) // no stream: neither recording nor failing
	_ = idle
	feed := func(n int) {
		for range n {
			for cam, f := range feeders {
				au := f.next()
				clock.Set(au.Wall)
				w, _ := r.Camera(cam, 0)
				w.OnAccessUnit(au)
			}
		}
	}
	feed(60)
	if err := r.Ready(); err != nil {
		t.Fatalf("recording: %v", err)
	}
	fsys.arm(syscall.ENOSPC)
	feed(60)
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "every recording camera (2) fails to write") {
		t.Fatalf("every camera failing: %v", err)
	}
	fsys.disarm()
	feed(200)
	if err := r.Ready(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
