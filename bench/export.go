package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigil/recorder"
)

type exportOpts struct {
	Footage  []time.Duration `json:"-"`
	Repeat   int             `json:"repeat"`
	Days     int             `json:"catalog_days"`
	Cameras  int             `json:"catalog_cameras"`
	Listings int             `json:"listings"`
	Mbps     float64         `json:"mbps"`
	Size     string          `json:"size"`
}

type exportRun struct {
	Footage    string  `json:"footage"`
	Format     string  `json:"format"`
	MB         float64 `json:"mb"`
	FirstByte  float64 `json:"first_byte_ms"`
	MBps       float64 `json:"mb_per_s"`
	Segments   int     `json:"segments"`
	ManifestMS float64 `json:"manifest_ms"`
}

type exportResult struct {
	Scenario       string      `json:"scenario"`
	Options        exportOpts  `json:"options"`
	FootageMinutes []float64   `json:"footage_minutes"`
	RecordSeconds  float64     `json:"record_seconds"`
	Exports        []exportRun `json:"exports"`
	CatalogLines   int         `json:"catalog_index_lines"`
	CatalogWriteS  float64     `json:"catalog_write_s"`
	ListingCold    latency     `json:"listing_cold"`
	ListingWarm    latency     `json:"listing_warm"`
	// ExportAPI is false when the build has no export endpoint (404);
	// Listing says whether listings went through HTTP or the catalog.
	ExportAPI bool    `json:"export_api"`
	Listing   string  `json:"listing_via"`
	Machine   machine `json:"machine"`
}

type durationList []time.Duration

func (d *durationList) String() string { return fmt.Sprint(*d) }
func (d *durationList) Set(s string) error {
	*d = nil
	for _, p := range strings.Split(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		*d = append(*d, v)
	}
	return nil
}

func runExport(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	o := exportOpts{}
	foot := durationList{10 * time.Minute, 30 * time.Minute, time.Hour}
	fs.Var(&foot, "footage", "comma-separated footage lengths to export (each recorded at -mbps)")
	fs.IntVar(&o.Repeat, "repeat", 3, "exports per length and format")
	fs.IntVar(&o.Days, "days", 30, "days of index files per catalog camera")
	fs.IntVar(&o.Cameras, "catalog-cameras", 32, "cameras in the generated catalog")
	fs.IntVar(&o.Listings, "listings", 200, "catalog listings (one camera-day each)")
	fs.Float64Var(&o.Mbps, "mbps", 4, "bitrate of the recorded footage")
	fs.StringVar(&o.Size, "size", "1920x1080", "picture size of the recorded footage")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.Footage = foot
	res, err := exportBench(ctx, log, o)
	if res != nil {
		kv := []any{}
		for _, x := range res.Exports {
			kv = append(kv, fmt.Sprintf("export %s %s", x.Footage, x.Format),
				fmt.Sprintf("%.0f MB, first byte %.2f ms, %.0f MB/s, manifest %.2f ms", x.MB, x.FirstByte, x.MBps, x.ManifestMS))
		}
		kv = append(kv,
			"targets", "first byte <= 50 ms, >= 400 MB/s; listing <= 5 ms",
			"catalog", fmt.Sprintf("%d index lines (%d cameras x %d days), written in %.1fs", res.CatalogLines, o.Cameras, o.Days, res.CatalogWriteS),
			"listing cold p50/p99/max ms", fmt.Sprintf("%.2f / %.2f / %.2f", res.ListingCold.P50, res.ListingCold.P99, res.ListingCold.Max),
			"listing warm p50/p99/max ms", fmt.Sprintf("%.2f / %.2f / %.2f", res.ListingWarm.P50, res.ListingWarm.P99, res.ListingWarm.Max))
		summary(os.Stderr, "export and catalog", kv...)
	}
	return res, err
}

// catalogEnd is the end of the generated catalog's last day: today's start,
// so that its days are inside the node's retention.
var catalogEnd = time.Now().UTC().Truncate(24 * time.Hour)

// writeCatalog writes days x cameras day indexes of 60-s segments (no
// segment files: a listing reads only the index).
func writeCatalog(dir string, cameras, days int) (int, error) {
	zeros := strings.Repeat("0", 64)
	lines := 0
	line := make([]byte, 0, 256)
	for c := range cameras {
		cam := fmt.Sprintf("cat-%02d", c)
		for d := range days {
			day := catalogEnd.Add(-time.Duration(days-d) * 24 * time.Hour)
			dd := filepath.Join(dir, cam, day.Format("2006-01-02"))
			if err := os.MkdirAll(dd, 0o750); err != nil {
				return lines, err
			}
			f, err := os.Create(filepath.Join(dd, "index.jsonl"))
			if err != nil {
				return lines, err
			}
			w := bufio.NewWriterSize(f, 1<<20)
			for i := range 1440 {
				start := day.Add(time.Duration(i) * time.Minute)
				line = append(line[:0], `{"file":"`...)
				line = start.AppendFormat(line, "15-04-05.000Z")
				line = append(line, `.mp4","start":"`...)
				line = start.AppendFormat(line, "2006-01-02T15:04:05.000Z07:00")
				line = append(line, `","end":"`...)
				line = start.Add(time.Minute).AppendFormat(line, "2006-01-02T15:04:05.000Z07:00")
				line = append(line, `","bytes":30000000,"sha256":"`...)
				line = append(line, zeros...)
				line = append(line, `","frames":1500,"codec":"h264"}`...)
				line = append(line, '\n')
				_, _ = w.Write(line)
				lines++
			}
			if err := w.Flush(); err != nil {
				f.Close()
				return lines, err
			}
			if err := f.Close(); err != nil {
				return lines, err
			}
		}
	}
	return lines, nil
}

func exportBench(ctx context.Context, log *slog.Logger, o exportOpts) (*exportResult, error) {
	ctx, cancel := bounded(ctx, 8*time.Minute)
	defer cancel()
	if len(o.Footage) == 0 || o.Repeat < 1 {
		return nil, fmt.Errorf("footage and repeat must be given")
	}
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	res := &exportResult{Scenario: "export", Options: o, Machine: describeMachine()}
	// The footage and catalog are dated in the past (up to o.Days): keep
	// them out of the retention sweep. (retain: 0 is not "forever": the
	// recorder reads it as its 30-day default.)
	cfgPath, err := e.writeConfig("node", serviceConfig{Storage: "dir: ./recordings, segment: 60s, part: 1s, retain: 400d, min_free_bytes: 0, fsync: part"})
	if err != nil {
		return nil, err
	}
	storage := filepath.Join(filepath.Dir(cfgPath), "recordings")

	longest := time.Duration(0)
	for _, d := range o.Footage {
		longest = max(longest, d)
		res.FootageMinutes = append(res.FootageMinutes, d.Minutes())
	}
	clip, err := clipFile(log, o.Size, o.Mbps)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := recordFootage(storage, "footage", clip, longest+2*time.Second); err != nil {
		return nil, fmt.Errorf("record footage: %w", err)
	}
	res.RecordSeconds = round(time.Since(t0).Seconds(), 2)
	log.Info("export: footage recorded", "length", longest, "took", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if res.CatalogLines, err = writeCatalog(storage, o.Cameras, o.Days); err != nil {
		return nil, err
	}
	res.CatalogWriteS = round(time.Since(t0).Seconds(), 2)

	node, err := e.startApp(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	base := node.app.URL()
	tok := e.tokens.investigator
	buf := make([]byte, 1<<20)
	var chk check
	probe := "start=" + footageStart.Format(time.RFC3339) + "&end=" + footageStart.Add(time.Minute).Format(time.RFC3339)
	st, _ := doJSON(ctx, "GET", base+"/api/v1/cameras/footage/export/manifest?"+probe, tok, nil, nil)
	res.ExportAPI = st != http.StatusNotFound
	if !res.ExportAPI {
		chk.failf("no export endpoint in this build (GET .../export/manifest: 404)")
	}
	for _, d := range o.Footage {
		if !res.ExportAPI {
			break
		}
		start, end := footageStart, footageStart.Add(d)
		q := "start=" + start.Format(time.RFC3339) + "&end=" + end.Format(time.RFC3339)
		for _, format := range []string{"mp4", "fmp4"} {
			run := exportRun{Footage: d.String(), Format: format}
			var man struct {
				Segments []struct{} `json:"segments"`
			}
			m0 := time.Now()
			if st, err := doJSON(ctx, "GET", base+"/api/v1/cameras/footage/export/manifest?"+q, tok, nil, &man); err != nil || st != 200 {
				return res, fmt.Errorf("manifest %s: status %d: %v", d, st, err)
			}
			run.ManifestMS = round(float64(time.Since(m0).Microseconds())/1000, 3)
			run.Segments = len(man.Segments)
			var ttfb, total time.Duration
			var bytes int64
			for range o.Repeat {
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/cameras/footage/export?"+q+"&format="+format, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return res, err
				}
				if resp.StatusCode != 200 {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
					resp.Body.Close()
					return res, fmt.Errorf("export %s %s: status %d: %s", d, format, resp.StatusCode, b)
				}
				n, err := io.ReadAtLeast(resp.Body, buf[:1], 1)
				if err != nil {
					resp.Body.Close()
					return res, fmt.Errorf("export %s %s: first byte: %w", d, format, err)
				}
				ttfb += time.Since(t)
				m, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil {
					return res, fmt.Errorf("export %s %s: body: %w", d, format, err)
				}
				total += time.Since(t)
				bytes += int64(n) + m
			}
			run.MB = round(float64(bytes)/float64(o.Repeat)/1e6, 1)
			run.FirstByte = round(float64(ttfb.Microseconds())/1000/float64(o.Repeat), 3)
			run.MBps = round(float64(bytes)/1e6/total.Seconds(), 1)
			res.Exports = append(res.Exports, run)
			if run.MB < 0.9*o.Mbps/8*d.Seconds() {
				chk.failf("export %s %s: %.0f MB, want about %.0f", d, format, run.MB, o.Mbps/8*d.Seconds())
			}
		}
	}

	// Catalog: one camera-day out of 30; cold = first listing of that
	// camera-day since start, warm = repeated. The time is the server's
	// answer: from sending the request to the last byte of the body; the
	// client's own JSON decoding (5-7 ms for 1,440 segments) is not counted.
	var took time.Duration
	list := func(cam string, day time.Time) (int, error) {
		q := "start=" + day.Format(time.RFC3339) + "&end=" + day.Add(24*time.Hour-time.Second).Format(time.RFC3339)
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/cameras/"+cam+"/recordings?"+q, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took = time.Since(t)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		var out struct {
			Segments []struct{} `json:"segments"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return 0, err
		}
		return len(out.Segments), nil
	}
	res.Listing = "http"
	if st, _ := doJSON(ctx, "GET", base+"/api/v1/cameras/cat-00/recordings", tok, nil, nil); st == http.StatusNotFound {
		// No recordings endpoint in this build: time the catalog itself.
		res.Listing = "catalog"
		cat, err := recorder.New(recorder.Options{Dir: storage, Fsync: recorder.FsyncNever})
		if err != nil {
			return res, err
		}
		list = func(cam string, day time.Time) (int, error) {
			t := time.Now()
			segs, _, err := cat.Catalog().List(cam, day, day.Add(24*time.Hour-time.Second))
			took = time.Since(t)
			return len(segs), err
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var cold, warm []int32
	seen := map[string]bool{}
	for range o.Listings {
		cam := fmt.Sprintf("cat-%02d", rnd.IntN(o.Cameras))
		day := catalogEnd.Add(-time.Duration(1+rnd.IntN(o.Days)) * 24 * time.Hour)
		n, err := list(cam, day)
		el := int32(took.Microseconds())
		if err != nil {
			return res, fmt.Errorf("listing %s %s: %w", cam, day.Format("2006-01-02"), err)
		}
		if n < 1439 {
			chk.failf("listing %s %s: %d segments, want 1440", cam, day.Format("2006-01-02"), n)
		}
		k := cam + day.String()
		if seen[k] {
			warm = append(warm, el)
		} else {
			cold = append(cold, el)
		}
		seen[k] = true
	}
	res.ListingCold, res.ListingWarm = percentiles(cold), percentiles(warm)
	return res, chk.err()
}
