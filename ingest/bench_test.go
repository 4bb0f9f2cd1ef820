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

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
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

// BenchmarkDepacketize4Mbps runs the RTP packets of 4 Mbit/s H.264 (the
// fixture's frames padded to 20 kB, ~15 FU-A packets each) through one
// camera's depacketizer and fan-out to a sink on its own goroutine, without
// the network: the part of ingest that is Vigil's own code and the RTP
// decoder. One op is one frame; cpu-ns/frame counts the sink goroutine and
// the GC too.
func BenchmarkDepacketize4Mbps(b *testing.B) {
	clip, err := h264Clip()
	if err != nil {
		b.Fatal(err)
	}
	clip = padded(clip, 4_000_000/8/25)
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.sps, PPS: clip.pps}
	enc, err := f.CreateEncoder()
	if err != nil {
		b.Fatal(err)
	}
	frames := make([][]*rtp.Packet, len(clip.frames))
	for i, fr := range clip.frames {
		if frames[i], err = enc.Encode(fr.NALUs); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Options{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	sink := &countingSink{}
	s.Subscribe("cam", "bench", sink, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.subs[0].run(ctx, make(chan struct{}))
	cam := s.newCamera(Camera{ID: "cam", URL: "rtsp://127.0.0.1:1/cam", Transport: TransportTCP, Enabled: true})
	p := &puller{cam: cam}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}}
	if err := p.pick(desc); err != nil {
		b.Fatal(err)
	}
	p.videoPTS = func(pkt *rtp.Packet) (int64, bool) { return int64(pkt.Timestamp), true }
	p.videoNTP = func(*rtp.Packet) (time.Time, bool) { return time.Time{}, false }
	step := uint32(90000 * clip.step / time.Second)
	b.ReportAllocs()
	b.SetBytes(4_000_000 / 8 / 25)
	var ts uint32
	var seq uint16
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		for _, pkt := range frames[i%len(frames)] {
			pkt.Timestamp = ts
			pkt.SequenceNumber = seq
			seq++
			p.onVideo(pkt)
		}
		ts += step
		i++
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)*25/1e6, "cpu-ms/stream-s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*25/1e6, "ms/stream-s")
	if sink.frames.Load() == 0 {
		b.Fatal("no frames delivered")
	}
	b.ReportMetric(counter(s.m.dropped.WithLabelValues("cam", "bench")), "dropped")
}
