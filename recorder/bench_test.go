package recorder

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/internal/media"
)

var (
	largeCatalogOnce sync.Once
	largeCatalogDir  string
	largeCatalogErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if largeCatalogDir != "" {
		os.RemoveAll(largeCatalogDir)
	}
	os.Exit(code)
}

const (
	benchCameras = 100
	benchDays    = 30
	benchPerDay  = 1440 // 1-minute segments
)

var benchEnd = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// largeCatalog writes, once per test binary, the day indexes of 100
// cameras x 30 days of 1-minute segments (4.32 million lines) and, for the
// newest day, the (empty) segment files themselves.
func largeCatalog(b *testing.B) string {
	largeCatalogOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-bench-catalog-")
		if err != nil {
			largeCatalogErr = err
			return
		}
		largeCatalogDir = dir
		largeCatalogErr = writeLargeCatalog(dir)
	})
	if largeCatalogErr != nil {
		b.Fatal(largeCatalogErr)
	}
	return largeCatalogDir
}

func writeLargeCatalog(dir string) error { return writeCatalog(dir, benchCameras, true) }

func writeCatalog(dir string, cameras int, files bool) error {
	line := make([]byte, 0, 256)
	for c := range cameras {
		cam := fmt.Sprintf("cam-%03d", c)
		for d := range benchDays {
			day := benchEnd.Add(-time.Duration(benchDays-d) * 24 * time.Hour)
			dd := filepath.Join(dir, cam, day.Format(dayLayout))
			if err := os.MkdirAll(dd, 0o755); err != nil {
				return err
			}
			f, err := os.Create(filepath.Join(dd, indexFile))
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(f, 1<<20)
			for i := range benchPerDay {
				start := day.Add(time.Duration(i) * time.Minute)
				_, file := fileNames(start)
				line = append(line[:0], `{"file":"`...)
				line = append(line, file...)
				line = append(line, `","start":"`...)
				line = start.AppendFormat(line, timeLayout)
				line = append(line, `","end":"`...)
				line = start.Add(time.Minute).AppendFormat(line, timeLayout)
				line = append(line, `","bytes":30000000,"sha256":"`...)
				line = append(line, zeros64...)
				line = append(line, `","frames":1500,"codec":"h264"}`...)
				line = append(line, '\n')
				w.Write(line)
				if files && d == benchDays-1 {
					if err := os.WriteFile(filepath.Join(dd, file), nil, 0o644); err != nil {
						return err
					}
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// BenchmarkStartupWithLargeCatalog measures New on 4.32 million indexed
// segments up to the first segment file of a camera being written again.
func BenchmarkStartupWithLargeCatalog(b *testing.B) {
	dir := largeCatalog(b)
	c := fixture(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := New(Options{Dir: dir, Fsync: FsyncNever})
		if err != nil {
			b.Fatal(err)
		}
		w, err := r.Camera("cam-000", 0)
		if err != nil {
			b.Fatal(err)
		}
		wall := benchEnd.Add(time.Duration(i) * time.Hour)
		w.OnStream(stream(c, "cam-000", 1, wall))
		f := &feeder{c: c, wall: wall}
		f.feed(w, 1)
		if w.seg == nil {
			b.Fatal("not recording")
		}
		b.StopTimer()
		w.Close()
		b.StartTimer()
	}
}

// BenchmarkCatalogDay lists one camera-day out of 30, uncached and cached.
func BenchmarkCatalogDay(b *testing.B) {
	dir := b.TempDir()
	if err := writeCatalog(dir, 43, false); err != nil { // cam-042 is the last
		b.Fatal(err)
	}
	day := benchEnd.Add(-10 * 24 * time.Hour)
	for _, cached := range []bool{false, true} {
		b.Run("cached="+strconv.FormatBool(cached), func(b *testing.B) {
			r, err := New(Options{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if !cached {
					r.Catalog().invalidate("cam-042", day.Format(dayLayout))
					r.Catalog().invalidate("cam-042", day.Add(-24*time.Hour).Format(dayLayout))
				}
				segs, _, err := r.Catalog().List("cam-042", day, day.Add(24*time.Hour-time.Nanosecond))
				if err != nil || len(segs) != benchPerDay {
					b.Fatalf("%d segments, %v", len(segs), err)
				}
			}
		})
	}
}

// BenchmarkRecord4Mbps feeds the recorder 4 Mbit/s of H.264 (the fixture's
// frames padded to 20 kB, 25 fps) in 60-s segments with 1-s parts and
// reports the cost per frame and per stream-second, both in elapsed time
// and in the process's CPU time (user + system, GC included), which other
// work on shared cores disturbs less.
func BenchmarkRecord4Mbps(b *testing.B) {
	c := fixture(b)
	const frameBytes = 4_000_000 / 8 / 25
	frames := make([][][]byte, len(c.Frames))
	for i, fr := range c.Frames {
		n := 0
		for _, nalu := range fr.NALUs {
			n += len(nalu)
		}
		nalus := append([][]byte(nil), fr.NALUs...)
		if pad := frameBytes - n; pad > 0 { // a filler-data NAL unit
			filler := make([]byte, pad)
			filler[0] = 12
			for j := 1; j < pad; j++ {
				filler[j] = 0xff
			}
			nalus = append(nalus, filler)
		}
		frames[i] = nalus
	}
	r, err := New(Options{Dir: b.TempDir(), Fsync: FsyncSegment})
	if err != nil {
		b.Fatal(err)
	}
	w, _ := r.Camera("cam", 0)
	w.OnStream(stream(c, "cam", 1, t0))
	fd := c.FrameDuration()
	b.ReportAllocs()
	b.SetBytes(frameBytes)
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		dts := time.Duration(i) * fd
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, DTS: dts, PTS: dts, Key: c.Frames[i%len(c.Frames)].Key, Payload: frames[i%len(frames)], Wall: t0.Add(dts)})
		i++
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	w.Close()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*25/1e6, "ms/stream-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)*25/1e6, "cpu-ms/stream-s")
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
