package recorder

import (
	"crypto/sha256"
	"os"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerifySegment re-hashes one 60-s segment of a 4 Mbit/s camera
// (30 MB, from the page cache) the way the background verifier does,
// without its rate cap, and reports the CPU it costs per MB (user and
// system time of the process, reading included) beside plain SHA-256 of
// the same bytes in memory, on the same core, in the same run.
func BenchmarkVerifySegment(b *testing.B) {
	dir := b.TempDir()
	record4Mbps(b, dir, time.Minute)
	r, err := New(Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	segs, _, err := r.Catalog().List("cam", t0, t0.Add(2*time.Minute))
	if err != nil || len(segs) == 0 {
		b.Fatalf("segments %d: %v", len(segs), err)
	}
	seg := segs[0]
	mb := float64(seg.Bytes) / 1e6
	buf := make([]byte, 1<<20)
	noPace := func(int) error { return nil }
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(seg.Bytes)
		cpu0 := cpuTime()
		for b.Loop() {
			if err := hashSegment(seg, buf, noPace, func(int) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/(mb*float64(b.N)), "cpu-ms/MB")
	})
	b.Run("sha256-in-memory", func(b *testing.B) {
		data, err := os.ReadFile(seg.Path)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		cpu0 := cpuTime()
		for b.Loop() {
			sha256.Sum256(data)
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/(mb*float64(b.N)), "cpu-ms/MB")
	})
}
