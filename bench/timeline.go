package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The timeline scenario measures what the footage view loads for a day of
// one camera: its recordings listing, its alerts and its evidence holds,
// the three requests the page sends at once.

type timelineOpts struct {
	Alerts int `json:"alerts"`
	Holds  int `json:"manual_holds"`
	Loads  int `json:"loads"`
}

type timelineResult struct {
	Scenario string       `json:"scenario"`
	Options  timelineOpts `json:"options"`
	Segments int          `json:"segments"`
	Gaps     int          `json:"gaps"`
	Alerts   int          `json:"alerts_listed"`
	Holds    int          `json:"holds_listed"`
	Bytes    int          `json:"bytes_per_load"`
	// Cold is the first load: the camera-day's first recordings and holds
	// listing since the node started (the alerts were listed while waiting
	// for the journal to take them); Loads are the following ones. Each is
	// the time from sending the three requests together to the last byte
	// of the last answer.
	ColdMS     float64    `json:"cold_ms"`
	ColdEachMS [3]float64 `json:"cold_each_ms"` // recordings, alerts, holds
	// CPUPerLoad is the process's CPU time (server and client, both in
	// this process) per load: unlike the latency, it does not grow with
	// the other work on a shared machine.
	CPUPerLoad float64 `json:"cpu_ms_per_load"`
	// LoadAvg is /proc/loadavg before and after the loads: the machine is
	// shared, and the tail follows it.
	LoadAvg     [2]string `json:"loadavg"`
	Loads       latency   `json:"loads"`
	Recordings  latency   `json:"recordings"`
	AlertsList  latency   `json:"alerts"`
	HoldsList   latency   `json:"holds"`
	TargetMS    float64   `json:"target_ms"`
	Machine     machine   `json:"machine"`
	Description string    `json:"description"`
}

func runTimeline(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("timeline", flag.ContinueOnError)
	o := timelineOpts{}
	fs.IntVar(&o.Alerts, "alerts", 50, "alerts raised on the camera during the day")
	fs.IntVar(&o.Holds, "holds", 3, "manual evidence holds placed on the day")
	fs.IntVar(&o.Loads, "loads", 200, "timeline loads measured after the cold one")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	res, err := timelineBench(ctx, log, o)
	if err == nil && (res.ColdMS > res.TargetMS || res.Loads.P99 > res.TargetMS) {
		err = fmt.Errorf("timeline load over %v ms: cold %.2f, p99 %.2f", res.TargetMS, res.ColdMS, res.Loads.P99)
	}
	if res != nil {
		summary(os.Stderr, "timeline data, one camera-day",
			"day", fmt.Sprintf("%d segments, %d gaps, %d alerts, %d holds, %d bytes", res.Segments, res.Gaps, res.Alerts, res.Holds, res.Bytes),
			"target", "<= 50 ms for the three requests together",
			"cold ms (recordings, alerts, holds)", fmt.Sprintf("%.2f (%.2f, %.2f, %.2f)", res.ColdMS, res.ColdEachMS[0], res.ColdEachMS[1], res.ColdEachMS[2]),
			"CPU ms per load (server + client)", res.CPUPerLoad,
			"loadavg before / after", res.LoadAvg[0]+" / "+res.LoadAvg[1],
			"load p50/p90/p99/max ms", fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", res.Loads.P50, res.Loads.P90, res.Loads.P99, res.Loads.Max),
			"recordings p50/p99 ms", fmt.Sprintf("%.2f / %.2f", res.Recordings.P50, res.Recordings.P99),
			"alerts p50/p99 ms", fmt.Sprintf("%.2f / %.2f", res.AlertsList.P50, res.AlertsList.P99),
			"holds p50/p99 ms", fmt.Sprintf("%.2f / %.2f", res.HoldsList.P50, res.HoldsList.P99))
	}
	return res, err
}

// timelineCamera is the scenario's one camera: configured (its webhook
// raises the alerts) but disabled, so no ingest runs and no outage alert
// joins the day's.
const timelineCamera = "tl-cam"

// writeTimelineDay writes 1,440 one-minute segments from start (empty
// files, so the verifier's pass at start finds them intact, and their
// index lines), a few of them cut short to leave gaps, and returns the
// number of gaps.
func writeTimelineDay(storage string, start time.Time) (gaps int, err error) {
	empty := sha256.Sum256(nil)
	sum := hex.EncodeToString(empty[:])
	short := map[int]time.Duration{200: 20 * time.Second, 555: 45 * time.Second, 901: 30 * time.Second, 1300: 50 * time.Second}
	files := map[string]*bufio.Writer{}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	for i := range 1440 {
		s := start.Add(time.Duration(i) * time.Minute)
		e := s.Add(time.Minute - short[i])
		day := s.Format("2006-01-02")
		dir := filepath.Join(storage, timelineCamera, day)
		w, ok := files[day]
		if !ok {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return 0, err
			}
			f, err := os.Create(filepath.Join(dir, "index.jsonl"))
			if err != nil {
				return 0, err
			}
			closers = append(closers, f)
			w = bufio.NewWriter(f)
			files[day] = w
		}
		name := s.Format("15-04-05.000") + "Z.mp4"
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			return 0, err
		}
		fmt.Fprintf(w, `{"file":%q,"start":%q,"end":%q,"bytes":0,"sha256":%q,"frames":1500,"codec":"h264"}`+"\n",
			name, s.Format("2006-01-02T15:04:05.000Z07:00"), e.Format("2006-01-02T15:04:05.000Z07:00"), sum)
	}
	for _, w := range files {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	for _, f := range closers {
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return len(short), nil
}

func timelineBench(ctx context.Context, log *slog.Logger, o timelineOpts) (*timelineResult, error) {
	res := &timelineResult{Scenario: "timeline", Options: o, TargetMS: 50, Machine: describeMachine(),
		Description: "GET recordings + alerts + holds of one camera-day, sent together, on one in-process node (embedded journal)"}
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	cfgPath, err := e.writeConfig("node", serviceConfig{
		Storage:     "dir: ./recordings, segment: 60s, part: 1s, retain: 400d, min_free_bytes: 0, fsync: part",
		Cameras:     []cameraConfig{{ID: timelineCamera, URL: "rtsp://127.0.0.1:1/none", Disabled: true}},
		MaxEventAge: "25h",
	})
	if err != nil {
		return nil, err
	}
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-24 * time.Hour)
	if res.Gaps, err = writeTimelineDay(filepath.Join(filepath.Dir(cfgPath), "recordings"), start); err != nil {
		return nil, fmt.Errorf("write the day: %w", err)
	}
	node, err := e.startApp(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	base := node.app.URL()
	var chk check

	// alerts spread over the day, each its own occurrence (key), sent
	// below the webhook's 50 requests/s per camera
	for i := range o.Alerts {
		at := start.Add(time.Duration(i+1) * 24 * time.Hour / time.Duration(o.Alerts+1))
		ev := map[string]string{"type": "intrusion", "state": "pulse", "key": fmt.Sprintf("zone-%d", i), "at": at.Format(time.RFC3339Nano)}
		st, err := doJSON(ctx, "POST", base+"/api/v1/hooks/"+timelineCamera+"/events?key="+e.tokens.hook, "", ev, nil)
		if err != nil || st != http.StatusAccepted {
			return res, fmt.Errorf("alert %d: status %d: %v", i, st, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	for i := range o.Holds {
		from := start.Add(time.Duration(i*7+2) * time.Hour)
		h := map[string]string{"camera": timelineCamera, "start": from.Format(time.RFC3339), "end": from.Add(20 * time.Minute).Format(time.RFC3339),
			"case": fmt.Sprintf("BENCH-%03d", i), "reason": "timeline bench"}
		if st, err := doJSON(ctx, "POST", base+"/api/v1/holds", e.tokens.investigator, h, nil); err != nil || st != http.StatusCreated {
			return res, fmt.Errorf("hold %d: status %d: %v", i, st, err)
		}
	}
	// the engine journals alerts asynchronously: wait until all are listed
	day := "start=" + start.Format(time.RFC3339) + "&end=" + end.Format(time.RFC3339)
	urls := []string{
		base + "/api/v1/cameras/" + timelineCamera + "/recordings?" + day,
		base + "/api/v1/alerts?camera=" + timelineCamera + "&since=" + start.Format(time.RFC3339) + "&until=" + end.Format(time.RFC3339) + "&limit=1000",
		base + "/api/v1/holds?camera=" + timelineCamera + "&" + day,
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct{ Alerts []struct{} }
		if _, err := doJSON(ctx, "GET", urls[1], e.tokens.investigator, nil, &list); err == nil && len(list.Alerts) >= o.Alerts {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the %d alerts were not all listed within 20s", o.Alerts)
		}
		time.Sleep(50 * time.Millisecond)
	}

	load := func() (total time.Duration, each [3]time.Duration, bodies [3][]byte, err error) {
		var wg sync.WaitGroup
		var errs [3]error
		t0 := time.Now()
		for i, u := range urls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
				req.Header.Set("Authorization", "Bearer "+e.tokens.investigator)
				resp, err := client.Do(req)
				if err != nil {
					errs[i] = err
					return
				}
				bodies[i], errs[i] = io.ReadAll(resp.Body)
				resp.Body.Close()
				each[i] = time.Since(t0)
				if errs[i] == nil && resp.StatusCode != 200 {
					errs[i] = fmt.Errorf("%s: status %d: %s", u, resp.StatusCode, bodies[i])
				}
			}()
		}
		wg.Wait()
		total = time.Since(t0)
		for _, err := range errs {
			if err != nil {
				return total, each, bodies, err
			}
		}
		return total, each, bodies, nil
	}

	res.LoadAvg[0] = loadAvg()
	cold, coldEach, bodies, err := load()
	if err != nil {
		return res, err
	}
	res.ColdMS = round(float64(cold.Microseconds())/1000, 3)
	for i, d := range coldEach {
		res.ColdEachMS[i] = round(float64(d.Microseconds())/1000, 3)
	}
	var rec struct {
		Segments []struct{} `json:"segments"`
		Gaps     []struct{} `json:"gaps"`
	}
	var al struct{ Alerts []struct{} }
	var ho struct{ Holds []struct{} }
	for i, v := range []any{&rec, &al, &ho} {
		if err := json.Unmarshal(bodies[i], v); err != nil {
			return res, fmt.Errorf("%s: %w", urls[i], err)
		}
		res.Bytes += len(bodies[i])
	}
	res.Segments, res.Alerts, res.Holds = len(rec.Segments), len(al.Alerts), len(ho.Holds)
	if res.Segments != 1440 || len(rec.Gaps) < res.Gaps || res.Alerts != o.Alerts || res.Holds < o.Holds {
		chk.failf("the day listed %d segments, %d gaps, %d alerts, %d holds; want 1440, %d, %d, >= %d",
			res.Segments, len(rec.Gaps), res.Alerts, res.Holds, res.Gaps, o.Alerts, o.Holds)
	}

	totals := make([]int32, 0, o.Loads)
	cpu0 := sampleSelf().cpu
	var parts [3][]int32
	for range o.Loads {
		total, each, _, err := load()
		if err != nil {
			return res, err
		}
		totals = append(totals, int32(total.Microseconds()))
		for i := range each {
			parts[i] = append(parts[i], int32(each[i].Microseconds()))
		}
	}
	res.CPUPerLoad = round(float64((sampleSelf().cpu-cpu0).Microseconds())/1000/float64(o.Loads), 3)
	res.LoadAvg[1] = loadAvg()
	res.Loads = percentiles(totals)
	res.Recordings, res.AlertsList, res.HoldsList = percentiles(parts[0]), percentiles(parts[1]), percentiles(parts[2])
	return res, chk.err()
}

// loadAvg is the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
