package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"vigil/live/whepclient"
)

type liveOpts struct {
	Cameras   int           `json:"cameras"`
	Viewers   int           `json:"viewers_per_camera"`
	Mbps      float64       `json:"mbps"`
	Size      string        `json:"size"`
	Duration  time.Duration `json:"-"`
	Baseline  time.Duration `json:"-"`
	Snapshots int           `json:"snapshot_rounds"`
}

type liveResult struct {
	Scenario  string   `json:"scenario"`
	Options   liveOpts `json:"options"`
	DurationS float64  `json:"duration_s"`
	// Vigil runs as a child process; the pion viewers run in the bench.
	VigilCPUCoresNoViewers float64 `json:"vigil_cpu_cores_no_viewers"`
	VigilCPUCoresViewers   float64 `json:"vigil_cpu_cores_viewers"`
	CPUMsPerViewerSecond   float64 `json:"cpu_ms_per_viewer_second"`
	// Added latency, RTP in at ingest to the last RTP packet of the frame
	// written to the viewer: vigil_live_delay_seconds over the window.
	// Histogram buckets: the p99 is "at most" this bucket's bound.
	DelayP50MaxMs float64 `json:"delay_p50_at_most_ms"`
	DelayP99MaxMs float64 `json:"delay_p99_at_most_ms"`
	DelaySamples  int64   `json:"delay_samples"`
	// At the viewers.
	Frames int64 `json:"frames_received"`
	// In the measurement window, like frames_received; the start (the
	// starting GOPs of every viewer at once) is counted apart.
	PacketsReceived int64   `json:"packets_received"`
	PacketsLost     int64   `json:"packets_lost"`
	StartPackets    int64   `json:"start_packets_received"`
	StartLost       int64   `json:"start_packets_lost"`
	ServerDropped   float64 `json:"server_dropped_units"`
	// Datagrams the kernel dropped for a full socket receive buffer
	// during the window (RcvbufErrors of /proc/net/snmp): for the whole
	// host, so other programs' sockets count too.
	HostRcvbufErrors int64 `json:"host_udp_rcvbuf_errors"`
	StartedAtKey     int   `json:"viewers_started_at_keyframe"`
	// From Dial (offer made, ICE, DTLS) to the first keyframe packet at
	// the viewer.
	FirstKeyP50Ms float64 `json:"first_keyframe_p50_ms"`
	FirstKeyMaxMs float64 `json:"first_keyframe_max_ms"`
	// Vigil's side: offer received to first keyframe written
	// (vigil_live_first_keyframe_seconds), bucket bounds.
	ServerFirstKeyP50MaxMs float64 `json:"server_first_keyframe_p50_at_most_ms"`
	ServerFirstKeyMaxMs    float64 `json:"server_first_keyframe_p100_at_most_ms"`
	// Snapshots of every camera, a round at a time (all cameras at once),
	// each round on a fresh keyframe.
	SnapshotN     int     `json:"snapshots"`
	SnapshotP50Ms float64 `json:"snapshot_p50_ms"`
	SnapshotP95Ms float64 `json:"snapshot_p95_ms"`
	SnapshotErrs  int     `json:"snapshot_errors"`
	// The host's 1-minute load average before and after the window: the
	// machine is shared, and latency is not measured alone.
	LoadBefore float64 `json:"loadavg_before"`
	LoadAfter  float64 `json:"loadavg_after"`
	Machine    machine `json:"machine"`
}

func runLive(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	o := liveOpts{}
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	fs.IntVar(&o.Cameras, "cameras", 8, "simulated cameras")
	fs.IntVar(&o.Viewers, "viewers", 4, "WHEP viewers per camera")
	fs.Float64Var(&o.Mbps, "mbps", 4, "bitrate of the generated clip, Mbit/s")
	fs.StringVar(&o.Size, "size", "1920x1080", "picture size of the generated clip")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "measurement time with viewers")
	fs.DurationVar(&o.Baseline, "baseline", 10*time.Second, "measurement time without viewers")
	fs.IntVar(&o.Snapshots, "snapshot-rounds", 3, "rounds of one snapshot per camera")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	res, err := liveBench(ctx, log, o)
	if res != nil {
		summary(os.Stderr, fmt.Sprintf("live: %d cameras x %d viewers at %.1f Mbit/s %s, %v", o.Cameras, o.Viewers, o.Mbps, o.Size, o.Duration),
			"added latency (RTP in -> out)", fmt.Sprintf("p99 <= %.2f ms (target <= 5: %s), p50 <= %.2f ms, %d frames", res.DelayP99MaxMs, passFail(res.DelayP99MaxMs <= 5), res.DelayP50MaxMs, res.DelaySamples),
			"CPU per viewer-second", fmt.Sprintf("%.2f ms (target <= 2: %s); vigil %.2f cores without viewers, %.2f with", res.CPUMsPerViewerSecond, passFail(res.CPUMsPerViewerSecond <= 2), res.VigilCPUCoresNoViewers, res.VigilCPUCoresViewers),
			"packets lost", fmt.Sprintf("%d of %d at the viewers in the window (target 0: %s), %d of %d in the start before it; %.0f units dropped by Vigil; %d datagrams dropped by full receive buffers on the host in the window",
				res.PacketsLost, res.PacketsReceived, passFail(res.PacketsLost == 0 && res.ServerDropped == 0), res.StartLost, res.StartPackets, res.ServerDropped, res.HostRcvbufErrors),
			"first keyframe", fmt.Sprintf("at the viewer p50 %.0f ms, max %.0f ms (target <= 300: %s); in Vigil (offer -> written) p50 <= %.0f ms, max <= %.0f ms; %d of %d viewers started at a keyframe",
				res.FirstKeyP50Ms, res.FirstKeyMaxMs, passFail(res.FirstKeyMaxMs <= 300), res.ServerFirstKeyP50MaxMs, res.ServerFirstKeyMaxMs, res.StartedAtKey, o.Cameras*o.Viewers),
			"snapshots", fmt.Sprintf("p50 %.0f ms, p95 %.0f ms over %d (%d errors)", res.SnapshotP50Ms, res.SnapshotP95Ms, res.SnapshotN, res.SnapshotErrs),
			"load average", fmt.Sprintf("%.2f before the window, %.2f after (2 cores, shared)", res.LoadBefore, res.LoadAfter))
	}
	return res, err
}

func liveBench(ctx context.Context, log *slog.Logger, o liveOpts) (*liveResult, error) {
	if o.Cameras < 1 || o.Viewers < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("cameras, viewers and duration must be positive")
	}
	ctx, cancel := bounded(ctx, o.Duration+o.Baseline+3*time.Minute)
	defer cancel()
	clip, err := clipFile(log, o.Size, o.Mbps)
	if err != nil {
		return nil, err
	}
	bin, err := vigilBinary(log)
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
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sc := serviceConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), MaxViewers: o.Cameras * o.Viewers}
	for i := range o.Cameras {
		sc.Cameras = append(sc.Cameras, cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: fmt.Sprintf("rtsp://%s/cam/%d", sim.rtsp, i)})
	}
	cfgPath, err := e.writeConfig("node", sc)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(filepath.Dir(cfgPath), "vigil.log")
	node, err := e.startChild(logPath, nil, bin, "serve", "-config", cfgPath)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, base+"/healthz", 20*time.Second); err != nil {
		return nil, err
	}
	// A node that could not bind its port has exited, and what answered
	// /healthz is another program's (other benches run on this host).
	time.Sleep(time.Second)
	if node.exited() {
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("vigil exited at start; %s answers another program: %s", base, bytes.TrimSpace(tail[max(0, len(tail)-600):]))
	}
	metrics := base + "/metrics"
	connectBy := time.Now().Add(30 * time.Second)
	for {
		up, _ := scrapeSum(ctx, metrics, "vigil_camera_up")
		if up >= float64(o.Cameras) {
			break
		}
		if time.Now().After(connectBy) || ctx.Err() != nil {
			return nil, fmt.Errorf("only %.0f of %d cameras up after 30s", up, o.Cameras)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // every camera past its first keyframe

	res := &liveResult{Scenario: "live", Options: o, Machine: describeMachine()}
	a0 := samplePid(node.Pid())
	time.Sleep(o.Baseline)
	a1 := samplePid(node.Pid())
	res.VigilCPUCoresNoViewers = round(float64(a1.cpu-a0.cpu)/float64(a1.at.Sub(a0.at)), 3)

	// Viewers, all at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sessions []*whepclient.Session
	var firstKey []float64
	var dialErr error
	for c := range o.Cameras {
		for range o.Viewers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				s, err := whepclient.Dial(ctx, fmt.Sprintf("%s/api/v1/cameras/cam-%d/whep", base, c), whepclient.Options{Token: e.tokens.desk, HTTP: client})
				if err != nil {
					mu.Lock()
					dialErr = err
					mu.Unlock()
					return
				}
				mu.Lock()
				sessions = append(sessions, s)
				mu.Unlock()
				select {
				case <-s.FirstKeyframe():
					mu.Lock()
					firstKey = append(firstKey, float64(time.Since(start).Microseconds())/1000)
					mu.Unlock()
				case <-time.After(10 * time.Second):
				case <-ctx.Done():
				}
			}()
		}
	}
	wg.Wait()
	defer func() {
		for _, s := range sessions {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	if dialErr != nil {
		return nil, fmt.Errorf("viewer: %w", dialErr)
	}
	if fk, err := scrapeHistogram(ctx, metrics, "vigil_live_first_keyframe_seconds"); err == nil {
		res.ServerFirstKeyP50MaxMs = fk.quantileBound(0.5) * 1000
		res.ServerFirstKeyMaxMs = fk.quantileBound(1) * 1000
	}
	time.Sleep(2 * time.Second) // past the burst of the starting GOPs
	h0, err := scrapeHistogram(ctx, metrics, "vigil_live_delay_seconds")
	if err != nil {
		return nil, err
	}
	d0, _ := scrapeSum(ctx, metrics, "vigil_live_dropped_total")
	stats0 := sumStats(sessions)
	res.LoadBefore = loadAverage()
	rb0 := udpRcvbufErrors()
	b0 := samplePid(node.Pid())
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b1 := samplePid(node.Pid())
	res.HostRcvbufErrors = udpRcvbufErrors() - rb0
	res.LoadAfter = loadAverage()
	stats1 := sumStats(sessions)
	h1, err := scrapeHistogram(ctx, metrics, "vigil_live_delay_seconds")
	if err != nil {
		return nil, err
	}
	d1, _ := scrapeSum(ctx, metrics, "vigil_live_dropped_total")
	wall := b1.at.Sub(b0.at)
	res.DurationS = round(wall.Seconds(), 2)
	res.VigilCPUCoresViewers = round(float64(b1.cpu-b0.cpu)/float64(wall), 3)
	viewers := float64(len(sessions))
	added := (float64(b1.cpu-b0.cpu)/float64(wall) - float64(a1.cpu-a0.cpu)/float64(a1.at.Sub(a0.at))) * 1000 // ms of CPU per second
	res.CPUMsPerViewerSecond = round(added/viewers, 3)
	delta := h1.minus(h0)
	res.DelaySamples = int64(delta.count)
	res.DelayP50MaxMs = delta.quantileBound(0.50) * 1000
	res.DelayP99MaxMs = delta.quantileBound(0.99) * 1000
	res.Frames = int64(stats1.Frames - stats0.Frames)
	res.PacketsReceived = int64(stats1.VideoPackets - stats0.VideoPackets)
	res.PacketsLost = int64(stats1.Lost - stats0.Lost)
	res.StartPackets = int64(stats0.VideoPackets)
	res.StartLost = int64(stats0.Lost)
	res.ServerDropped = d1 - d0
	for _, s := range sessions {
		if s.Stats().StartedAtKeyframe {
			res.StartedAtKey++
		}
	}
	slices.Sort(firstKey)
	if len(firstKey) > 0 {
		res.FirstKeyP50Ms = round(firstKey[len(firstKey)/2], 1)
		res.FirstKeyMaxMs = round(firstKey[len(firstKey)-1], 1)
	}
	// The viewers leave before snapshots are measured.
	for _, s := range sessions {
		_ = s.Close(ctx)
	}
	sessions = nil

	var snaps []float64
	for r := range o.Snapshots {
		if r > 0 {
			time.Sleep(2100 * time.Millisecond) // a new keyframe, past the 2 s cache
		}
		var swg sync.WaitGroup
		for c := range o.Cameras {
			swg.Add(1)
			go func() {
				defer swg.Done()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/cameras/cam-%d/snapshot", base, c), nil)
				req.Header.Set("Authorization", "Bearer "+e.tokens.desk)
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					res.SnapshotErrs++
					return
				}
				snaps = append(snaps, float64(time.Since(start).Microseconds())/1000)
			}()
		}
		swg.Wait()
	}
	slices.Sort(snaps)
	res.SnapshotN = len(snaps)
	if len(snaps) > 0 {
		res.SnapshotP50Ms = round(snaps[len(snaps)/2], 1)
		res.SnapshotP95Ms = round(snaps[min(len(snaps)-1, int(math.Ceil(0.95*float64(len(snaps))))-1)], 1)
	}

	var chk check
	if res.PacketsLost > 0 || res.ServerDropped > 0 {
		chk.failf("%d packets lost at the viewers, %.0f units dropped by Vigil", res.PacketsLost, res.ServerDropped)
	}
	if res.StartedAtKey != o.Cameras*o.Viewers {
		chk.failf("%d of %d viewers started at a keyframe", res.StartedAtKey, o.Cameras*o.Viewers)
	}
	if res.SnapshotErrs > 0 {
		chk.failf("%d snapshots failed", res.SnapshotErrs)
	}
	return res, chk.err()
}

// udpRcvbufErrors is the host's count of UDP datagrams dropped for a full
// socket receive buffer; -1 when unknown.
func udpRcvbufErrors() int64 {
	raw, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return -1
}

// loadAverage is the host's 1-minute load average; 0 when unknown.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func sumStats(ss []*whepclient.Session) whepclient.Stats {
	var t whepclient.Stats
	for _, s := range ss {
		st := s.Stats()
		t.Frames += st.Frames
		t.VideoPackets += st.VideoPackets
		t.Lost += st.Lost
	}
	return t
}

// histogram is a scraped Prometheus histogram: cumulative counts by upper
// bound.
type histogram struct {
	bounds []float64
	counts []float64
	count  float64
}

func (h histogram) minus(o histogram) histogram {
	d := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), count: h.count - o.count}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(o.counts) {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantileBound is the upper bound of the bucket holding quantile q; -1
// when it lies past the last finite bucket (JSON has no infinity).
func (h histogram) quantileBound(q float64) float64 {
	for i, c := range h.counts {
		if c >= q*h.count && !math.IsInf(h.bounds[i], 1) {
			return h.bounds[i]
		}
	}
	return -1
}

func scrapeHistogram(ctx context.Context, url, name string) (histogram, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte(name+"_bucket{le=\"")):
			rest := string(line[len(name)+len("_bucket{le=\""):])
			le, val, ok := strings.Cut(rest, "\"} ")
			if !ok {
				continue
			}
			b, err1 := strconv.ParseFloat(le, 64)
			v, err2 := strconv.ParseFloat(val, 64)
			if err1 == nil && err2 == nil {
				h.bounds = append(h.bounds, b)
				h.counts = append(h.counts, v)
			}
		case bytes.HasPrefix(line, []byte(name+"_count ")):
			h.count, _ = strconv.ParseFloat(string(line[len(name)+len("_count "):]), 64)
		}
	}
	return h, sc.Err()
}
