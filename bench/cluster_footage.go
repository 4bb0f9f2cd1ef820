package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil/recorder"
)

// The footage half of "Vigil 17"'s cluster benchmark: three nodes on one
// redis-server, footage on some of them, asked through another.

type clusterFootageOpts struct {
	Footage  time.Duration `json:"footage"`
	Repeat   int           `json:"repeat"`
	Listings int           `json:"listings"`
	Mbps     float64       `json:"mbps"`
	Size     string        `json:"size"`
}

type clusterExportRun struct {
	Path      string  `json:"path"` // direct, proxy (one other node), mixed (two other nodes)
	MB        float64 `json:"mb"`
	FirstByte float64 `json:"first_byte_ms"`
	MBps      float64 `json:"mb_per_s"`
	OfDirect  float64 `json:"of_direct"` // throughput as a fraction of direct
}

type clusterFootageResult struct {
	Scenario string             `json:"scenario"`
	Options  clusterFootageOpts `json:"options"`
	Exports  []clusterExportRun `json:"exports"`
	// Listing is one camera-day (1,440 one-minute segments, a third on
	// each node) listed through one node: its own third plus two others'.
	Listing  latency  `json:"listing_day_3_nodes"`
	Segments int      `json:"listing_segments"`
	LoadAvg  string   `json:"loadavg"`
	Machine  machine  `json:"machine"`
	Problems []string `json:"problems,omitempty"`
}

func runClusterFootage(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("cluster-footage", flag.ContinueOnError)
	o := clusterFootageOpts{}
	fs.DurationVar(&o.Footage, "footage", time.Hour, "footage exported (recorded at -mbps)")
	fs.IntVar(&o.Repeat, "repeat", 3, "exports per path")
	fs.IntVar(&o.Listings, "listings", 200, "listings of the camera-day")
	fs.Float64Var(&o.Mbps, "mbps", 4, "bitrate of the recorded footage")
	fs.StringVar(&o.Size, "size", "1920x1080", "picture size of the recorded footage")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	res, err := clusterFootageBench(ctx, log, o)
	if res != nil {
		kv := []any{}
		for _, x := range res.Exports {
			kv = append(kv, "export "+o.Footage.String()+" "+x.Path,
				fmt.Sprintf("%.0f MB, first byte %.2f ms, %.0f MB/s (%.0f %% of direct)", x.MB, x.FirstByte, x.MBps, 100*x.OfDirect))
		}
		kv = append(kv,
			"listing a day over 3 nodes p50/p99/max ms", fmt.Sprintf("%.2f / %.2f / %.2f (%d segments)", res.Listing.P50, res.Listing.P99, res.Listing.Max, res.Segments),
			"targets", "export through another node >= 80 % of direct; listing <= 20 ms",
			"loadavg", res.LoadAvg)
		summary(os.Stderr, "cluster footage", kv...)
	}
	return res, err
}

// ClusterFootage runs the footage part of the cluster benchmark with its
// defaults, for the "cluster" scenario to include.
func ClusterFootage(ctx context.Context, log *slog.Logger) (any, error) {
	return runClusterFootage(ctx, nil, log)
}

func clusterFootageBench(ctx context.Context, log *slog.Logger, o clusterFootageOpts) (*clusterFootageResult, error) {
	ctx, cancel := bounded(ctx, 10*time.Minute)
	defer cancel()
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	res := &clusterFootageResult{Scenario: "cluster-footage", Options: o, Machine: describeMachine()}
	rd, err := e.startRedis(0)
	if err != nil {
		return nil, err
	}
	clip, err := clipFile(log, o.Size, o.Mbps)
	if err != nil {
		return nil, err
	}
	ids := []string{"town-1", "village-2", "village-3"}
	storage := map[string]string{}
	cfgs := map[string]string{}
	for _, id := range ids {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		listen := fmt.Sprintf("127.0.0.1:%d", port)
		cfg, err := e.writeConfig(id, serviceConfig{Listen: listen, Journal: "redis " + rd.addr,
			Storage: "dir: ./recordings, segment: 60s, part: 1s, retain: 400d, min_free_bytes: 0, fsync: part"})
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		_, err = fmt.Fprintf(f, "node: {id: %s, zone: town, advertise_url: \"http://%s\"}\ncluster: {token: %q}\n", id, listen, e.tokens.admin+"-cluster")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		cfgs[id], storage[id] = cfg, filepath.Join(filepath.Dir(cfg), "recordings")
	}

	// "whole": the footage on village-2 only; "split": its first half on
	// village-2, the rest on village-3 (a failover); "day": one
	// camera-day's index, a third on each node.
	t0 := time.Now()
	half := o.Footage / 2
	for _, rec := range []struct {
		node, camera string
		start        time.Time
		d            time.Duration
	}{
		{"village-2", "whole", footageStart, o.Footage + 2*time.Second},
		{"village-2", "split", footageStart, half},
		{"village-3", "split", footageStart.Add(half), o.Footage - half + 2*time.Second},
	} {
		if err := recordFootageAt(storage[rec.node], rec.camera, clip, rec.start, rec.d); err != nil {
			return nil, fmt.Errorf("record %s on %s: %w", rec.camera, rec.node, err)
		}
	}
	day := catalogEnd.Add(-24 * time.Hour)
	for i, id := range ids {
		if err := writeIndexDay(storage[id], "day", day, i*480, 480); err != nil {
			return nil, err
		}
	}
	log.Info("cluster-footage: footage recorded", "took", time.Since(t0).Round(time.Millisecond))

	nodes := map[string]*inProcess{}
	for _, id := range ids {
		if nodes[id], err = e.startApp(ctx, cfgs[id]); err != nil {
			return nil, fmt.Errorf("node %s: %w", id, err)
		}
	}
	town, village2 := nodes["town-1"].app.URL(), nodes["village-2"].app.URL()
	// every node sees the three before anything is measured
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got struct {
			Nodes []struct{} `json:"nodes"`
		}
		if st, err := doJSON(ctx, "GET", town+"/api/v1/nodes", e.tokens.admin, nil, &got); err == nil && st == 200 && len(got.Nodes) == 3 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the three nodes did not see each other within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var chk check
	// an hour-long export takes longer than the 30-s client limit
	// (the scenario's context bounds it)
	exportClient := &http.Client{Transport: client.Transport}
	q := "?start=" + footageStart.Format(time.RFC3339) + "&end=" + footageStart.Add(o.Footage).Format(time.RFC3339)
	// the paths take turns, so that the machine's load (shared here)
	// weighs on each alike
	runs := []struct{ path, url string }{
		{"direct", village2 + "/api/v1/cameras/whole/export" + q},
		{"proxy", town + "/api/v1/cameras/whole/export" + q},
		{"mixed", town + "/api/v1/cameras/split/export" + q},
	}
	ttfb := make([]time.Duration, len(runs))
	total := make([]time.Duration, len(runs))
	bytes := make([]int64, len(runs))
	buf := make([]byte, 1<<20)
	for range o.Repeat {
		for i, run := range runs {
			req, _ := http.NewRequestWithContext(ctx, "GET", run.url, nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens.investigator)
			t := time.Now()
			resp, err := exportClient.Do(req)
			if err != nil {
				return res, fmt.Errorf("export %s: %w", run.path, err)
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
				resp.Body.Close()
				return res, fmt.Errorf("export %s: status %d: %s", run.path, resp.StatusCode, b)
			}
			k, err := io.ReadAtLeast(resp.Body, buf[:1], 1)
			ttfb[i] += time.Since(t)
			var m int64
			if err == nil {
				m, err = io.CopyBuffer(io.Discard, resp.Body, buf)
			}
			resp.Body.Close()
			if err != nil {
				return res, fmt.Errorf("export %s: body: %w", run.path, err)
			}
			total[i] += time.Since(t)
			bytes[i] += int64(k) + m
		}
	}
	for i, run := range runs {
		x := clusterExportRun{Path: run.path}
		x.MB = round(float64(bytes[i])/float64(o.Repeat)/1e6, 1)
		x.FirstByte = round(float64(ttfb[i].Microseconds())/1000/float64(o.Repeat), 2)
		x.MBps = round(float64(bytes[i])/1e6/total[i].Seconds(), 1)
		x.OfDirect = round(x.MBps/res.directMBps(x.MBps, i), 3)
		if run.path != "direct" && x.OfDirect < 0.8 {
			chk.failf("export %s: %.0f %% of direct, goal >= 80 %%", run.path, 100*x.OfDirect)
		}
		res.Exports = append(res.Exports, x)
	}

	lq := town + "/api/v1/cameras/day/recordings?start=" + day.Format(time.RFC3339) + "&end=" + day.Add(24*time.Hour-time.Second).Format(time.RFC3339)
	us := make([]int32, 0, o.Listings)
	for i := range o.Listings + 5 {
		var l struct {
			Segments    []struct{} `json:"segments"`
			Unreachable []string   `json:"unreachable"`
		}
		t := time.Now()
		st, err := doJSON(ctx, "GET", lq, e.tokens.investigator, nil, &l)
		d := time.Since(t)
		if err != nil || st != 200 {
			return res, fmt.Errorf("listing: status %d: %v", st, err)
		}
		if len(l.Unreachable) > 0 {
			return res, fmt.Errorf("listing: unreachable %v", l.Unreachable)
		}
		res.Segments = len(l.Segments)
		if i >= 5 { // warm-up
			us = append(us, int32(d.Microseconds()))
		}
	}
	res.Listing = percentiles(us)
	if res.Segments != 1440 {
		chk.failf("listing: %d segments, want 1,440", res.Segments)
	}
	if res.Listing.P50 > 20 {
		chk.failf("listing p50 %.2f ms, goal <= 20 ms", res.Listing.P50)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.TrimSpace(string(b))
	}
	res.Problems = chk
	return res, chk.err()
}

// directMBps is the direct export's throughput (the first run), or mbps
// for the first run itself.
func (r *clusterFootageResult) directMBps(mbps float64, i int) float64 {
	if i == 0 || len(r.Exports) == 0 {
		return mbps
	}
	return r.Exports[0].MBps
}

// writeIndexDay writes minutes one-minute segments of camera from minute
// from of day into dir's index, as the recorder writes them (no segment
// files: a listing reads the index only).
func writeIndexDay(dir, camera string, day time.Time, from, minutes int) error {
	dd := filepath.Join(dir, camera, day.Format("2006-01-02"))
	if err := os.MkdirAll(dd, 0o755); err != nil {
		return err
	}
	zeros := strings.Repeat("0", 64)
	var b bytes.Buffer
	for i := from; i < from+minutes; i++ {
		start := day.Add(time.Duration(i) * time.Minute)
		fmt.Fprintf(&b, `{"file":%q,"start":%q,"end":%q,"bytes":30000000,"sha256":%q,"frames":1500,"codec":"h264"}`+"\n",
			start.Format("15-04-05.000Z")+".mp4", recorder.FormatTime(start), recorder.FormatTime(start.Add(time.Minute)), zeros)
	}
	return os.WriteFile(filepath.Join(dd, "index.jsonl"), b.Bytes(), 0o644)
}
