package footageapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/recorder"
)

// The recorder's own fixtures are internal to its tests; these record
// through its exported API what the HTTP tests serve.

var t0 = time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)

const exportCamera = "hall-entrance"

var (
	clipOnce sync.Once
	clip     *camsim.Clip
	clipErr  error
)

func fixture(t testing.TB) *camsim.Clip {
	t.Helper()
	clipOnce.Do(func() {
		clip, clipErr = camsim.LoadClip(filepath.Join("..", "..", "internal", "camsim", "testdata", "hall.h264"), 25)
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

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

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

func newTestRecorder(t testing.TB, opts recorder.Options) (*recorder.Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Now == nil {
		clock := &fakeClock{t: t0}
		opts.Now = clock.Now
	}
	r, err := recorder.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

type gapRecording struct {
	dir     string
	catalog *recorder.Catalog
	frame   time.Duration
}

// recordWithGap records 12 s (three 4-s segments), a disconnect, and 8 s
// more from t0+13s.
func recordWithGap(t *testing.T) gapRecording {
	t.Helper()
	c := fixture(t)
	dir := t.TempDir()
	r, _ := newTestRecorder(t, recorder.Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 300)
	w.OnBreak("disconnect", 0)
	w.OnStream(stream(c, exportCamera, 2, t0.Add(13*time.Second)))
	(&feeder{c: c, wall: t0.Add(13 * time.Second)}).feed(w, 200)
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	return gapRecording{dir: dir, catalog: r.Catalog(), frame: c.FrameDuration()}
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

// tamper flips 100 bytes in the middle of the segment, size unchanged.
func tamper(t *testing.T, s recorder.Segment) {
	t.Helper()
	f, err := os.OpenFile(s.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 100)
	off := s.Bytes / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

type probeResult struct {
	Frames   int
	Duration time.Duration
	Stderr   string
}

// ffprobe decodes path and reports its frame count and duration; any
// message on stderr is a decoding error.
func ffprobe(t testing.TB, path string) probeResult {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required: %v", err)
	}
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames,duration:format=duration", "-of", "json", path)
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
			Duration string `json:"duration"`
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
	return probeResult{Frames: n, Duration: time.Duration(secs * float64(time.Second)), Stderr: stderr.String()}
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

const (
	benchDays   = 30
	benchPerDay = 1440 // 1-minute segments
)

var benchEnd = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// writeCatalog writes the day indexes of cameras cam-000… over the
// benchDays before benchEnd, 1-minute segments, as the recorder writes
// them (no segment files: listings read the index only).
func writeCatalog(dir string, cameras int) error {
	zeros := strings.Repeat("0", 64)
	for c := range cameras {
		cam := fmt.Sprintf("cam-%03d", c)
		for d := range benchDays {
			day := benchEnd.Add(-time.Duration(benchDays-d) * 24 * time.Hour)
			dd := filepath.Join(dir, cam, day.Format("2006-01-02"))
			if err := os.MkdirAll(dd, 0o755); err != nil {
				return err
			}
			var b bytes.Buffer
			for i := range benchPerDay {
				start := day.Add(time.Duration(i) * time.Minute)
				fmt.Fprintf(&b, `{"file":%q,"start":%q,"end":%q,"bytes":30000000,"sha256":%q,"frames":1500,"codec":"h264"}`+"\n",
					start.Format("15-04-05.000Z")+".mp4", recorder.FormatTime(start), recorder.FormatTime(start.Add(time.Minute)), zeros)
			}
			if err := os.WriteFile(filepath.Join(dd, "index.jsonl"), b.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordIntegrityFixture records three closed segments of exportCamera.
func recordIntegrityFixture(t *testing.T, opts recorder.Options) integrityFixture {
	t.Helper()
	c := fixture(t)
	h := &healthLog{}
	opts.Segment, opts.Part, opts.OnHealth = 4*time.Second, time.Second, h.on
	r, reg := newTestRecorder(t, opts)
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 300) // 12 s: three segments
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil || len(segs) < 3 {
		t.Fatalf("recorded %d segments: %v", len(segs), err)
	}
	return integrityFixture{r: r, reg: reg, health: h, segs: segs}
}

func (f integrityFixture) tamperedAlerts() int {
	n := 0
	for _, e := range f.health.get() {
		if e == exportCamera+"/"+recorder.HealthRecordingTampered+"=true" {
			n++
		}
	}
	return n
}

// integrityFailures reads vigil_recording_integrity_failures_total.
func (f integrityFixture) integrityFailures(t *testing.T) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "vigil_recording_integrity_failures_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// openRecording is a camera recording into t.TempDir() with 60-s segments
// of 1-s parts, on a fake clock that follows the frames' wall time.
type openRecording struct {
	r     *recorder.Recorder
	w     *recorder.Writer
	f     *feeder
	clock *fakeClock
}

func startOpenRecording(t *testing.T) *openRecording {
	t.Helper()
	c := fixture(t)
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, recorder.Options{Segment: 60 * time.Second, Part: time.Second, Now: clock.Now})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	return &openRecording{r: r, w: w, f: &feeder{c: c, wall: t0}, clock: clock}
}

// until feeds frames up to wall time t and sets the clock there.
func (o *openRecording) until(t time.Time) {
	for o.f.wall.Add(time.Duration(o.f.n) * o.f.c.FrameDuration()).Before(t) {
		o.w.OnAccessUnit(o.f.next())
	}
	o.clock.Set(t)
}

func sha256Prefix(t *testing.T, path string, n int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < n {
		t.Fatalf("%s: %d bytes, want at least %d", path, len(b), n)
	}
	sum := sha256.Sum256(b[:n])
	return hex.EncodeToString(sum[:])
}

func writeExport(t *testing.T, x *recorder.Export, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rd := x.Reader()
	defer rd.Close()
	n, err := rd.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n != x.Size {
		t.Fatalf("wrote %d bytes, planned %d", n, x.Size)
	}
}
