package live

import (
	"bytes"
	"context"
	"image/jpeg"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/internal/testutil"
)

// runSnapshots runs ss.Run until the test ends, and checks then that it
// returned with no ffmpeg process left.
func runSnapshots(t *testing.T, ss *Snapshots) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ss.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if ss.dec != nil {
			ss.dec.mu.Lock()
			alive := ss.dec.alive
			ss.dec.mu.Unlock()
			if alive != 0 {
				t.Errorf("%d ffmpeg processes alive after Run returned", alive)
			}
		}
	})
}

// spares returns the formats of ss's spare processes.
func spares(ss *Snapshots) []string {
	ss.dec.mu.Lock()
	defer ss.dec.mu.Unlock()
	var f []string
	for _, d := range ss.dec.spares {
		f = append(f, d.format)
	}
	return f
}

// fakeFFmpeg writes a stand-in for ffmpeg that reads its stdin and writes
// a few bytes starting like a JPEG. Each process leaves its PID in dir and
// appends to dir/counts how many of them were alive (not yet reaped) as it
// started: the largest of those is the most ever alive at once.
func fakeFFmpeg(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "ffmpeg")
	script := `#!/bin/sh
dir='` + dir + `'
echo "$*" > "$dir/$$.pid"
echo "$GLIBC_TUNABLES" > "$dir/tunables"
n=0
for f in "$dir"/*.pid; do
	kill -0 "$(basename "$f" .pid)" 2>/dev/null && n=$((n+1))
done
echo $n >> "$dir/counts"
` + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// fakeCounts returns what each fake process counted as it started.
func fakeCounts(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "counts"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var n []int
	for _, l := range strings.Fields(string(b)) {
		c, err := strconv.Atoi(l)
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, c)
	}
	return n
}

func TestSnapshotSparesWaitStartedAndStayWithinConcurrency(t *testing.T) {
	t.Setenv("GLIBC_TUNABLES", "")
	bin, dir := fakeFFmpeg(t, `cat > /dev/null
printf '\377\330fake\377\331'`)
	ss := newSnapshots(t, NewFeeds(nil), SnapshotsOptions{FFmpeg: bin})
	runSnapshots(t, ss)
	testutil.WaitFor(t, 2*time.Second, "two spare processes after start", func() bool {
		return len(spares(ss)) == 2
	})
	if got := spares(ss); got[0] != "h264" || got[1] != "h264" {
		t.Errorf("spares for %v, want h264 before any snapshot", got)
	}

	var tunables []byte
	testutil.WaitFor(t, 2*time.Second, "a spare running its script", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "tunables"))
		tunables = b
		return err == nil && bytes.HasSuffix(b, []byte("\n"))
	})
	if got := strings.TrimSpace(string(tunables)); got != mallocTunables {
		t.Errorf("ffmpeg ran with GLIBC_TUNABLES %q, want %q", got, mallocTunables)
	}

	// A burst of both codecs, more than there are slots.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		k := Keyframe{Camera: "cam-" + strconv.Itoa(i), Video: media.VideoTrack{Codec: media.H264},
			Unit: media.AccessUnit{Key: true, Payload: [][]byte{{0x65, 0x88}}, Wall: time.Now()}}
		if i%4 == 3 {
			k.Video.Codec = media.H265
		}
		wg.Go(func() {
			s, err := ss.Keyframe(t.Context(), k)
			if err == nil && !bytes.HasPrefix(s.JPEG, []byte{0xff, 0xd8}) {
				t.Errorf("%s: %q is no JPEG", k.Camera, s.JPEG)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := testutilCounter(ss.m.processes.WithLabelValues("spare")); n < 1 {
		t.Errorf("%v snapshots used a spare", n)
	}
	counts := fakeCounts(t, dir)
	if len(counts) < 8 { // a spare killed to free its slot may not get to count
		t.Errorf("%d ffmpeg processes counted, want at least 8", len(counts))
	}
	for _, n := range counts {
		if n > 2 {
			t.Errorf("%d ffmpeg processes alive at once, want at most 2: %v", n, counts)
			break
		}
	}
	testutil.WaitFor(t, 2*time.Second, "two spares again after the burst", func() bool {
		return len(spares(ss)) == 2
	})
}

func TestSnapshotSpareThatExitsIsNotRestartedInALoop(t *testing.T) {
	bin, dir := fakeFFmpeg(t, "exit 1")
	ss := newSnapshots(t, NewFeeds(nil), SnapshotsOptions{FFmpeg: bin})
	runSnapshots(t, ss)
	testutil.WaitFor(t, 2*time.Second, "both spares exited", func() bool {
		ss.dec.mu.Lock()
		defer ss.dec.mu.Unlock()
		return ss.dec.spareFailed && ss.dec.alive == 0
	})
	if n := len(fakeCounts(t, dir)); n != 2 {
		t.Errorf("%d processes started, want the 2 first spares only", n)
	}
	// A snapshot still starts its own process, and reports its failure.
	k := Keyframe{Camera: "cam-1", Video: media.VideoTrack{Codec: media.H264},
		Unit: media.AccessUnit{Key: true, Payload: [][]byte{{0x65}}, Wall: time.Now()}}
	if _, err := ss.Keyframe(t.Context(), k); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("snapshot with a failing ffmpeg: %v", err)
	}
	if n := testutilCounter(ss.m.processes.WithLabelValues("started")); n != 1 {
		t.Errorf("%v processes started for snapshots, want 1", n)
	}
}

func TestSnapshotSparesDecodeH264AndH265(t *testing.T) {
	needTool(t, "ffmpeg")
	clip := camsim.DefaultClip()
	h264 := Keyframe{Camera: "cam-1", Video: media.VideoTrack{Codec: media.H264, SPS: clip.SPS, PPS: clip.PPS},
		Unit: media.AccessUnit{Kind: media.Video, Key: true, Payload: clip.Frames[0].NALUs, Wall: time.Now()}}
	h265 := h265Keyframe(t)
	ss := newSnapshots(t, NewFeeds(nil), SnapshotsOptions{Width: 320})
	runSnapshots(t, ss)
	used := func(how string) float64 { return testutilCounter(ss.m.processes.WithLabelValues(how)) }

	for _, step := range []struct {
		name          string
		k             Keyframe
		spareFormat   string  // a spare to wait for first
		spare, starts float64 // processes given so far, by how
	}{
		{"h264 from a spare", h264, "h264", 1, 0},
		{"h265 in the slot of an h264 spare", h265, "", 1, 1},
		{"h265 from a spare", h265, "hevc", 2, 1},
		{"h264 again from a spare", h264, "h264", 3, 1},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.spareFormat != "" {
				testutil.WaitFor(t, 2*time.Second, "a spare for "+step.spareFormat, func() bool {
					return strings.Contains(strings.Join(spares(ss), ","), step.spareFormat)
				})
			}
			s, err := ss.Keyframe(t.Context(), step.k)
			if err != nil {
				t.Fatal(err)
			}
			img, err := jpeg.Decode(bytes.NewReader(s.JPEG))
			if err != nil {
				t.Fatalf("not a JPEG: %v", err)
			}
			if w := img.Bounds().Dx(); w != 320 {
				t.Errorf("width %d, want 320", w)
			}
			if used("spare") != step.spare || used("started") != step.starts {
				t.Errorf("processes given: %v spare, %v started; want %v, %v", used("spare"), used("started"), step.spare, step.starts)
			}
		})
	}
}

// Snapshots waiting for a slot get it in the order they asked: for alerts,
// the order their keyframes arrived, so the earliest keyframe is decoded
// first.
func TestSnapshotsWaitingForASlotAreServedInOrder(t *testing.T) {
	bin, dir := fakeFFmpeg(t, `in=$(cat | tail -c 1)
while [ -e "$dir/hold" ]; do sleep 0.01; done
echo "$in" >> "$dir/order"
printf '\377\330fake\377\331'`)
	if err := os.WriteFile(filepath.Join(dir, "hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ss := newSnapshots(t, NewFeeds(nil), SnapshotsOptions{FFmpeg: bin, Concurrency: 1})
	waiting := func() int {
		ss.dec.mu.Lock()
		defer ss.dec.mu.Unlock()
		return len(ss.dec.waiting)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, name := range "ABCD" {
		k := Keyframe{Camera: "cam-1", Video: media.VideoTrack{Codec: media.H264},
			Unit: media.AccessUnit{Key: true, Payload: [][]byte{{0x65, byte(name)}}, Wall: time.Now()}}
		wg.Go(func() {
			if _, err := ss.Keyframe(t.Context(), k); err != nil {
				t.Error(err)
			}
		})
		if i > 0 { // A holds the slot; B, C and D queue behind it
			testutil.WaitFor(t, 2*time.Second, "snapshot "+string(name)+" waiting", func() bool { return waiting() == i })
		} else {
			testutil.WaitFor(t, 2*time.Second, "A decoding", func() bool { return len(fakeCounts(t, dir)) == 1 })
		}
	}
	if err := os.Remove(filepath.Join(dir, "hold")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(dir, "order"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(b)), ""); got != "ABCD" {
		t.Errorf("decoded in the order %s, want ABCD", got)
	}
}
