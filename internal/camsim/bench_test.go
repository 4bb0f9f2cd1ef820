package camsim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// TestMain runs the test binary as the simulator side of
// BenchmarkCPU64Cameras when the benchmark starts it as a child with
// CAMSIM_HELPER_CAMERAS set; otherwise it runs the tests.
func TestMain(m *testing.M) {
	if n, _ := strconv.Atoi(os.Getenv("CAMSIM_HELPER_CAMERAS")); n > 0 {
		if err := serveHelper(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveHelper runs n simulated cameras, prints their address and stops when
// the parent closes stdin.
func serveHelper(n int) error {
	s, err := New(Options{Listen: "127.0.0.1:0", Cameras: Cameras(n, true), NoUDP: true})
	if err != nil {
		return err
	}
	fmt.Println("ADDR", s.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = os.Stdin.Read(make([]byte, 1))
		cancel()
	}()
	return s.Run(ctx)
}

// BenchmarkCPU64Cameras runs 64 cameras (with metadata tracks) in a child
// process, plays all of them over TCP from this one for CAMSIM_BENCH_SECONDS
// (default 60) and reports the child's CPU time as a share of one core:
//
//	go test -run '^$' -bench CPU64 -benchtime 1x ./internal/camsim/
func BenchmarkCPU64Cameras(b *testing.B) {
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("CAMSIM_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	const n = 64
	for range b.N {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CAMSIM_HELPER_CAMERAS="+strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var addr string
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr = a
				break
			}
		}
		if addr == "" {
			b.Fatal("child did not report its address")
		}
		go func() {
			for sc.Scan() {
			}
		}()
		var packets, bytes atomic.Int64
		var clients []*gortsplib.Client
		for i := range n {
			u, _ := base.ParseURL(fmt.Sprintf("rtsp://%s/cam/%d", addr, i))
			proto := gortsplib.ProtocolTCP
			c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			desc, _, err := c.Describe(u)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
				b.Fatal(err)
			}
			c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, p *rtp.Packet) {
				packets.Add(1)
				bytes.Add(int64(len(p.Payload)))
			})
			if _, err := c.Play(nil); err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
		}
		time.Sleep(2 * time.Second) // settle; not an assertion
		cpu0, t0, p0, b0 := procCPU(b, cmd.Process.Pid), time.Now(), packets.Load(), bytes.Load()
		time.Sleep(time.Duration(secs) * time.Second)
		cpu1, t1, p1, b1 := procCPU(b, cmd.Process.Pid), time.Now(), packets.Load(), bytes.Load()
		for _, c := range clients {
			c.Close()
		}
		stdin.Close()
		_ = cmd.Wait()
		wall := t1.Sub(t0)
		share := float64(cpu1-cpu0) / float64(wall)
		b.ReportMetric(100*share, "%core")
		b.ReportMetric(float64(p1-p0)/wall.Seconds(), "pkt/s")
		b.ReportMetric(float64(b1-b0)*8/wall.Seconds()/1e6, "Mbit/s")
		b.Logf("%d cameras for %v: simulator CPU %v (%.1f%% of one core), %d packets, %.1f Mbit/s received",
			n, wall.Round(time.Millisecond), cpu1-cpu0, 100*share, p1-p0, float64(b1-b0)*8/wall.Seconds()/1e6)
	}
}

// procCPU reads utime+stime of a process from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}
