package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"vigil/internal/camsim"
	"vigil/internal/media"
)

var (
	clipOnce sync.Once
	clip     *camsim.Clip
	clipErr  error
)

func fixture(t testing.TB) *camsim.Clip {
	t.Helper()
	clipOnce.Do(func() {
		clip, clipErr = camsim.LoadClip(filepath.Join("..", "internal", "camsim", "testdata", "hall.h264"), 25)
	})
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	return clip
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func stream(c *camsim.Clip, camera string, session uint64, started time.Time) media.Stream {
	return media.Stream{
		Camera:  camera,
		Session: session,
		Video:   &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: c.SPS, PPS: c.PPS, Width: c.Width, Height: c.Height},
		Started: started,
	}
}

// feeder turns the looped fixture into access units of one session.
type feeder struct {
	c    *camsim.Clip
	wall time.Time // wall time of DTS 0
	n    int       // frames fed
}

func (f *feeder) next() media.AccessUnit {
	fr := f.c.Frames[f.n%len(f.c.Frames)]
	dts := time.Duration(f.n) * f.c.FrameDuration()
	f.n++
	return media.AccessUnit{Kind: media.Video, PTS: dts, DTS: dts, Key: fr.Key, Payload: fr.NALUs, Wall: f.wall.Add(dts)}
}

func (f *feeder) feed(s media.Sink, frames int) {
	for range frames {
		s.OnAccessUnit(f.next())
	}
}

type probeResult struct {
	Frames   int
	Duration time.Duration
	Stderr   string
	Tags     map[string]string // the container's: creation_time, comment
}

// ffprobe decodes path and reports its frame count and duration; any
// message on stderr is a decoding error.
func ffprobe(t testing.TB, path string) probeResult {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required: %v", err)
	}
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames,duration:format=duration:format_tags=creation_time,comment", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var res struct {
		Streams []struct {
			NbReadFrames string `json:"nb_read_frames"`
			Duration     string `json:"duration"`
		} `json:"streams"`
		Format struct {
			Duration string            `json:"duration"`
			Tags     map[string]string `json:"tags"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	n, _ := strconv.Atoi(res.Streams[0].NbReadFrames)
	d := res.Streams[0].Duration
	if d == "" || d == "N/A" {
		d = res.Format.Duration
	}
	secs, _ := strconv.ParseFloat(d, 64)
	return probeResult{Frames: n, Duration: time.Duration(secs * float64(time.Second)), Stderr: stderr.String(), Tags: res.Format.Tags}
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
