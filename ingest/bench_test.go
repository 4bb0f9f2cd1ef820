package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/camsim"
	"vigil/internal/media"
)

// countingSink counts video units and touches nothing else.
type countingSink struct{ frames atomic.Int64 }

func (c *countingSink) OnStream(media.Stream) {}
func (c *countingSink) OnAccessUnit(au media.AccessUnit) {
	if au.Kind == media.Video {
		c.frames.Add(1)
	}
}
func (c *countingSink) OnBreak(string, int) {}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPull pulls K cameras from in-process test servers over TCP and
// reports the CPU that ingest spends per frame (process CPU with ingest
// running minus process CPU of the servers alone, over the same window):
// first the fixture as it is (about 400 kbit/s), then its frames padded to
// 20 kB, the 4 Mbit/s of a 1080p camera. Each run measures a fixed window;
// use -benchtime=1x.
func BenchmarkPull(b *testing.B) {
	for _, k := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("cameras=%d", k), func(b *testing.B) { benchmarkPull(b, k, 0) })
	}
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("4Mbps/cameras=%d", k), func(b *testing.B) { benchmarkPull(b, k, 4_000_000/8/25) })
	}
}

// padded returns clip with every frame padded by a filler-data NAL unit to
// frameBytes.
func padded(clip *streamClip, frameBytes int) *streamClip {
	out := *clip
	out.frames = make([]camsim.Frame, len(clip.frames))
	for i, fr := range clip.frames {
		n := 0
		for _, nalu := range fr.NALUs {
			n += len(nalu)
		}
		nalus := append([][]byte(nil), fr.NALUs...)
		if pad := frameBytes - n; pad > 0 {
			filler := bytes.Repeat([]byte{0xff}, pad)
			filler[0] = 12 // filler data
			nalus = append(nalus, filler)
		}
		out.frames[i] = camsim.Frame{NALUs: nalus, Key: fr.Key}
	}
	return &out
}

func benchmarkPull(b *testing.B, k, frameBytes int) {
	const window = 3 * time.Second
	servers := make([]*cameraServer, k)
	for i := range servers {
		servers[i] = startCameraServer(b)
		if frameBytes > 0 {
			servers[i].Stop()
			servers[i].clip = padded(servers[i].clip, frameBytes)
			servers[i].Start()
		}
	}
	// Servers alone.
	c0 := cpuTime()
	time.Sleep(window)
	serverCPU := cpuTime() - c0

	s, err := New(Options{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	var cams []Camera
	sinks := make([]*countingSink, k)
	for i, srv := range servers {
		id := fmt.Sprintf("cam-%d", i)
		cams = append(cams, Camera{ID: id, URL: srv.URL(), Transport: TransportTCP, Enabled: true})
		sinks[i] = &countingSink{}
		s.Subscribe(id, "bench", sinks[i], 256)
	}
	if _, err := s.Apply(cams); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for _, sk := range sinks { // wait until every camera delivers
		for sk.frames.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ResetTimer()
	var f0, s0 int64
	for i, sk := range sinks {
		f0 += sk.frames.Load()
		s0 += servers[i].sent.Load()
	}
	c1 := cpuTime()
	time.Sleep(window)
	totalCPU := cpuTime() - c1
	var f1, s1 int64
	for i, sk := range sinks {
		f1 += sk.frames.Load()
		s1 += servers[i].sent.Load()
	}
	frames := f1 - f0
	if frames == 0 {
		b.Fatal("no frames")
	}
	ingestCPU := totalCPU - serverCPU
	b.ReportMetric(float64(ingestCPU.Nanoseconds())/float64(frames), "cpu-ns/frame")
	b.ReportMetric(float64(ingestCPU.Nanoseconds())/window.Seconds()/float64(k)/1e6, "cpu-ms/s/stream")
	b.ReportMetric(float64(frames)/window.Seconds(), "frames/s")
	b.ReportMetric(float64((s1-s0)-frames), "frames-sent-not-received")
	b.ReportMetric(counter(s.m.reconnects.WithLabelValues("cam-0")), "reconnects-cam0")
}
