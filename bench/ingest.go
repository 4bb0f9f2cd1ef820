package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"
)

type ingestOpts struct {
	Cameras    int           `json:"cameras"`
	Mbps       float64       `json:"mbps"`
	Size       string        `json:"size"`
	Duration   time.Duration `json:"-"`
	Warmup     time.Duration `json:"-"`
	Record     bool          `json:"record"`
	Fsync      string        `json:"fsync"`
	CPUProfile string        `json:"-"`
}

type ingestResult struct {
	Scenario  string     `json:"scenario"`
	Options   ingestOpts `json:"options"`
	DurationS float64    `json:"duration_s"`
	// Vigil's CPU (the bench process; camsim runs in a child process).
	CPUCores             float64 `json:"cpu_cores"`
	CPUMsPerSecPerStream float64 `json:"cpu_ms_per_s_per_stream"`
	BaselineRSSMiB       float64 `json:"baseline_rss_mib"`
	RSSMiB               float64 `json:"rss_mib"`
	HWMMiB               float64 `json:"hwm_mib"`
	RSSPerStreamMiB      float64 `json:"rss_per_stream_mib"`
	CamsimCPUCores       float64 `json:"camsim_cpu_cores"`
	// Frames in the measurement window.
	FramesSent     int64 `json:"frames_sent"`
	FramesReceived int64 `json:"frames_received"`
	// Frames over the whole run, from connect to shutdown.
	FramesReceivedTotal int64   `json:"frames_received_total"`
	FramesRecorded      int64   `json:"frames_recorded"`
	PacketsLost         int64   `json:"packets_lost"`
	Segments            int     `json:"segments"`
	WrittenMBps         float64 `json:"written_mb_per_s"`
	IngestMbps          float64 `json:"ingest_mbit_per_s"`
	Lost                int64   `json:"frames_lost"`
	// Lost splits into frames the cameras sent that ingest did not count in
	// the window (beyond one frame per camera at each edge) and frames
	// ingest counted that no segment holds.
	LostInWindow   int64   `json:"frames_short_in_window"`
	LostUnrecorded int64   `json:"frames_unrecorded"`
	Machine        machine `json:"machine"`
}

func ingestFlags(name string, o *ingestOpts) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.IntVar(&o.Cameras, "cameras", 32, "simulated cameras")
	fs.Float64Var(&o.Mbps, "mbps", 4, "bitrate of the generated clip, Mbit/s")
	fs.StringVar(&o.Size, "size", "1920x1080", "picture size of the generated clip")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "measurement time")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "time for cameras to connect before measuring")
	fs.BoolVar(&o.Record, "record", true, "record every camera")
	fs.StringVar(&o.Fsync, "fsync", "part", "storage.fsync: part | segment | never")
	return fs
}

func runIngest(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	o := ingestOpts{}
	fs := ingestFlags("ingest", &o)
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measurement window to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	res, err := ingestBench(ctx, log, o)
	if res != nil {
		summary(os.Stderr, fmt.Sprintf("ingest: %d cameras x %.1f Mbit/s %s, record=%t, %v", o.Cameras, o.Mbps, o.Size, o.Record, o.Duration),
			"CPU per stream", fmt.Sprintf("%.2f ms/s (target <= 7: %s); %.2f cores in all", res.CPUMsPerSecPerStream, passFail(res.CPUMsPerSecPerStream <= 7), res.CPUCores),
			"RSS per stream", fmt.Sprintf("%.2f MiB (target <= 3: %s); RSS %.1f MiB, HWM %.1f MiB, baseline %.1f MiB", res.RSSPerStreamMiB, passFail(res.RSSPerStreamMiB <= 3), res.RSSMiB, res.HWMMiB, res.BaselineRSSMiB),
			"frames sent/received (window)", fmt.Sprintf("%d / %d", res.FramesSent, res.FramesReceived),
			"frames received/recorded (run)", fmt.Sprintf("%d / %d", res.FramesReceivedTotal, res.FramesRecorded),
			"frames lost", fmt.Sprintf("%d (target 0: %s); RTP packets lost %d", res.Lost, passFail(res.Lost == 0), res.PacketsLost),
			"ingest / written", fmt.Sprintf("%.1f Mbit/s / %.2f MB/s in %d segments", res.IngestMbps, res.WrittenMBps, res.Segments),
			"camsim (child) CPU", fmt.Sprintf("%.2f cores", res.CamsimCPUCores))
	}
	return res, err
}

// clipFile generates (once, cached) an Annex B H.264 clip of 10 s at 25 fps,
// closed GOP of 50, no B-frames, an AUD before every frame and SPS/PPS
// before every IDR, as camsim.LoadClip wants.
func clipFile(log *slog.Logger, size string, mbps float64) (string, error) {
	return clipFileGOP(log, size, mbps, 50)
}

// clipFileGOP is clipFile with a keyframe every gop frames (at 25 fps).
func clipFileGOP(log *slog.Logger, size string, mbps float64, gop int) (string, error) {
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("clip-%s-%gM.h264", size, mbps)
	if gop != 50 {
		name = fmt.Sprintf("clip-%s-%gM-g%d.h264", size, mbps, gop)
	}
	path := filepath.Join(dir, name)
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, nil
	}
	rate := fmt.Sprintf("%dk", int(mbps*1000))
	buf := fmt.Sprintf("%dk", int(mbps*2000))
	tmp := path + ".tmp"
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=25", "-t", "10",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-b:v", rate, "-maxrate", rate, "-bufsize", buf, "-pix_fmt", "yuv420p",
		"-x264-params", "aud=1:repeat-headers=1:nal-hrd=cbr:force-cfr=1",
		"-bsf:v", "h264_mp4toannexb", "-f", "h264", tmp)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ffmpeg: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	log.Info("generated clip", "path", path, "took", time.Since(start).Round(time.Millisecond))
	return path, nil
}

// indexTotals sums the frames and counts the segments of every day index
// under dir.
func indexTotals(dir string) (frames int64, segments int, bytes int64) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.jsonl" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var rec struct {
				Frames int64 `json:"frames"`
				Bytes  int64 `json:"bytes"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				frames += rec.Frames
				bytes += rec.Bytes
				segments++
			}
		}
		return nil
	})
	return frames, segments, bytes
}

func ingestBench(ctx context.Context, log *slog.Logger, o ingestOpts) (*ingestResult, error) {
	if o.Cameras < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("cameras and duration must be positive")
	}
	ctx, cancel := bounded(ctx, o.Duration+o.Warmup+3*time.Minute)
	defer cancel()
	clip, err := clipFile(log, o.Size, o.Mbps)
	if err != nil {
		return nil, err
	}
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := e.startCamsimChild(o.Cameras, clip, false)
	if err != nil {
		return nil, err
	}
	storage := fmt.Sprintf("dir: ./recordings, segment: 60s, part: 1s, retain: 1d, min_free_bytes: 0, fsync: %s", o.Fsync)
	// Start with no cameras for the baseline, then add them by a reload.
	cfgPath, err := e.writeConfig("node", serviceConfig{Storage: storage})
	if err != nil {
		return nil, err
	}
	runtime.GC()
	node, err := e.startApp(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	reg := node.app.Registry()
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	base := sampleSelf()
	sc := serviceConfig{Storage: storage}
	for i := range o.Cameras {
		sc.Cameras = append(sc.Cameras, cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: fmt.Sprintf("rtsp://%s/cam/%d", sim.rtsp, i), Record: o.Record})
	}
	if _, err := e.writeConfig("node", sc); err != nil {
		return nil, err
	}
	var reload map[string][]string
	if st, err := doJSON(ctx, "POST", node.app.URL()+"/api/v1/admin/reload", e.tokens.admin, nil, &reload); err != nil || st != 200 {
		return nil, fmt.Errorf("reload with %d cameras: status %d: %v", o.Cameras, st, err)
	}
	// Wait until every camera delivers frames, then let it settle.
	connectBy := time.Now().Add(30 * time.Second)
	for counterSum(reg, "vigil_camera_up") < float64(o.Cameras) {
		if time.Now().After(connectBy) || ctx.Err() != nil {
			return nil, fmt.Errorf("only %.0f of %d cameras up after 30s", counterSum(reg, "vigil_camera_up"), o.Cameras)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(o.Warmup)

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	s0, c0 := sampleSelf(), samplePid(sim.Pid())
	f0, b0, w0 := counterSum(reg, "vigil_ingest_frames_total"), counterSum(reg, "vigil_ingest_bytes_total"), counterSum(reg, "vigil_recorder_bytes_total")
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s1, c1 := sampleSelf(), samplePid(sim.Pid())
	f1, b1, w1 := counterSum(reg, "vigil_ingest_frames_total"), counterSum(reg, "vigil_ingest_bytes_total"), counterSum(reg, "vigil_recorder_bytes_total")
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	wall := s1.at.Sub(s0.at)
	lost := counterSum(reg, "vigil_ingest_packets_lost_total")
	// Stop camsim first so that the last frames are in flight to no one,
	// then Vigil, which closes and indexes every open segment.
	sim.Kill(15)
	time.Sleep(300 * time.Millisecond)
	recvTotal := counterSum(reg, "vigil_ingest_frames_total")
	if err := node.Stop(); err != nil {
		log.Warn("vigil stop", "err", err)
	}
	recorded, segs, _ := indexTotals(filepath.Join(filepath.Dir(cfgPath), "recordings"))

	n := float64(o.Cameras)
	res := &ingestResult{Scenario: "ingest", Options: o, DurationS: round(wall.Seconds(), 2), Machine: describeMachine()}
	res.CPUCores = round(float64(s1.cpu-s0.cpu)/float64(wall), 3)
	res.CPUMsPerSecPerStream = round(float64((s1.cpu-s0.cpu).Microseconds())/1000/wall.Seconds()/n, 2)
	res.BaselineRSSMiB, res.RSSMiB, res.HWMMiB = mib(base.rss), mib(s1.rss), mib(s1.hwm)
	res.RSSPerStreamMiB = round(float64(s1.rss-base.rss)/(1<<20)/n, 2)
	res.CamsimCPUCores = round(float64(c1.cpu-c0.cpu)/float64(c1.at.Sub(c0.at)), 3)
	res.FramesSent = int64(25 * n * wall.Seconds())
	res.FramesReceived = int64(f1 - f0)
	res.FramesReceivedTotal = int64(recvTotal)
	res.FramesRecorded = recorded
	res.PacketsLost = int64(lost)
	res.Segments = segs
	res.WrittenMBps = round((w1-w0)/1e6/wall.Seconds(), 2)
	res.IngestMbps = round((b1-b0)*8/1e6/wall.Seconds(), 1)
	// Window edges are not synchronized with the camera clock: allow one
	// frame per camera at each edge before calling a frame lost.
	var chk check
	if short := res.FramesSent - res.FramesReceived; short > int64(2*o.Cameras) {
		res.LostInWindow = short
	}
	if o.Record {
		res.LostUnrecorded = max(0, res.FramesReceivedTotal-res.FramesRecorded)
	}
	res.Lost = res.LostInWindow + res.LostUnrecorded
	if res.Lost > 0 || res.PacketsLost > 0 {
		chk.failf("%d frames lost (%d short in the window, %d not recorded), %d RTP packets lost", res.Lost, res.LostInWindow, res.LostUnrecorded, res.PacketsLost)
	}
	return res, chk.err()
}
