package footageapi

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"vigil/internal/media"
	"vigil/recorder"
)

// BenchmarkListDayHTTP lists one camera-day (1,440 segments) out of 30 over
// a loopback HTTP request, as bench/export.go does: cold (the day and the
// day before dropped from the cache first) and warm. client=read reads the
// body; client=decode also decodes it as the bench's client does.
func BenchmarkListDayHTTP(b *testing.B) {
	dir := b.TempDir()
	if err := writeCatalog(dir, 1); err != nil { // cam-000: 30 days
		b.Fatal(err)
	}
	day := benchEnd.Add(-10 * 24 * time.Hour)
	r, err := recorder.New(recorder.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	api, err := New(Options{Catalog: r.Catalog(), Now: func() time.Time { return benchEnd }})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/api/v1/cameras/cam-000/recordings?start=" + day.Format(time.RFC3339) +
		"&end=" + day.Add(24*time.Hour-time.Second).Format(time.RFC3339)
	client := srv.Client()
	for _, decode := range []bool{false, true} {
		{
			name := "warm"
			if decode {
				name += "/client=decode"
			} else {
				name += "/client=read"
			}
			b.Run(name, func(b *testing.B) {
				var n int64
				for b.Loop() {
					resp, err := client.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					if decode {
						var out struct {
							Segments []struct{} `json:"segments"`
						}
						err = json.NewDecoder(resp.Body).Decode(&out)
						if err == nil && len(out.Segments) != benchPerDay {
							b.Fatalf("%d segments", len(out.Segments))
						}
						_, _ = io.Copy(io.Discard, resp.Body)
					} else {
						n, err = io.Copy(io.Discard, resp.Body)
					}
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d, %v", resp.StatusCode, err)
					}
				}
				if n > 0 {
					b.SetBytes(n)
				}
			})
		}
	}
}

// BenchmarkExport1h4Mbps exports one hour of a 4 Mbit/s camera (1.8 GB in
// 60 segments) over HTTP on loopback, from the page cache, and reports the
// time to the first body byte and the throughput, hashing included (the
// audit's sha256 of what was sent). VIGIL_EXPORT_BENCH_DIR reuses a
// recording made by an earlier run.
func BenchmarkExport1h4Mbps(b *testing.B) {
	const span = time.Hour
	dir := os.Getenv("VIGIL_EXPORT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	cat := recorder.OpenCatalog(dir, nil)
	if segs, _, _ := cat.List("cam", t0, t0.Add(span)); len(segs) < int(span/time.Minute)-1 {
		start := time.Now()
		record4Mbps(b, dir, span+2*time.Second)
		b.Logf("recorded %v of 4 Mbit/s in %v", span, time.Since(start))
		cat = recorder.OpenCatalog(dir, nil)
	}
	api, err := New(Options{Catalog: cat})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, format := range []string{recorder.FormatMP4, recorder.FormatFMP4} {
		b.Run(format, func(b *testing.B) {
			url := srv.URL + "/api/v1/cameras/cam/export?start=" + recorder.FormatTime(t0) + "&end=" + recorder.FormatTime(t0.Add(span)) + "&format=" + format
			buf := make([]byte, 1<<20)
			var ttfb time.Duration
			var total int64
			for b.Loop() {
				start := time.Now()
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				n, err := resp.Body.Read(buf)
				if n == 0 || err != nil {
					b.Fatalf("first read: %d %v", n, err)
				}
				ttfb += time.Since(start)
				m, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				total += int64(n) + m
			}
			b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ms-first-byte")
			b.ReportMetric(float64(total)/1e6/b.Elapsed().Seconds(), "MB/s")
			b.ReportMetric(float64(total)/float64(b.N)/1e6, "MB/export")
		})
	}
	for _, format := range []string{recorder.FormatMP4, recorder.FormatFMP4} {
		// the first byte alone, over many requests (the transfer is cut):
		// after the first, the API's cache holds the sample tables
		b.Run("first-byte-"+format, func(b *testing.B) {
			url := srv.URL + "/api/v1/cameras/cam/export?start=" + recorder.FormatTime(t0) + "&end=" + recorder.FormatTime(t0.Add(span)) + "&format=" + format
			buf := make([]byte, 1)
			for b.Loop() {
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := resp.Body.Read(buf); n != 1 || err != nil {
					b.Fatalf("first read: %d %v", n, err)
				}
				resp.Body.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms-first-byte")
		})
		// planning alone, no cache: what a cold first byte waits for
		b.Run("plan-"+format, func(b *testing.B) {
			for b.Loop() {
				if _, err := recorder.PlanExport(cat, recorder.ExportRequest{Camera: "cam", Start: t0, End: t0.Add(span), Format: format}); err != nil {
					b.Fatal(err)
				}
			}
		})
		// the export's bytes without HTTP and without the audit's SHA-256
		b.Run("read-"+format, func(b *testing.B) {
			x, err := recorder.PlanExport(cat, recorder.ExportRequest{Camera: "cam", Start: t0, End: t0.Add(span), Format: format})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(x.Size)
			for b.Loop() {
				rd := x.Reader()
				if _, err := rd.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
				rd.Close()
			}
		})
	}
	// the audit's SHA-256 alone, for reference: this CPU has no SHA extensions
	b.Run("sha256", func(b *testing.B) {
		buf := make([]byte, 1<<20)
		h := sha256.New()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			h.Write(buf)
		}
	})
}

// record4Mbps records d of a 4 Mbit/s camera into dir: the fixture's frames
// padded with filler-data NAL units to 20 kB, 25 fps, 60-s segments of
// 1-s parts, fed as fast as the recorder takes them.
func record4Mbps(b *testing.B, dir string, d time.Duration) {
	c := fixture(b)
	const frameBytes = 4_000_000 / 8 / 25
	frames := make([][][]byte, len(c.Frames))
	for i, fr := range c.Frames {
		n := 0
		for _, nalu := range fr.NALUs {
			n += len(nalu)
		}
		nalus := append([][]byte(nil), fr.NALUs...)
		if pad := frameBytes - n; pad > 1 {
			filler := make([]byte, pad)
			filler[0] = 12
			for j := 1; j < pad-1; j++ {
				filler[j] = 0xff
			}
			filler[pad-1] = 0x80
			nalus = append(nalus, filler)
		}
		frames[i] = nalus
	}
	r, err := recorder.New(recorder.Options{Dir: dir, Fsync: recorder.FsyncNever, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	w, _ := r.Camera("cam", 0)
	w.OnStream(stream(c, "cam", 1, t0))
	fd := c.FrameDuration()
	for i := range int(d / fd) {
		dts := time.Duration(i) * fd
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, DTS: dts, PTS: dts, Key: c.Frames[i%len(c.Frames)].Key, Payload: frames[i%len(frames)], Wall: t0.Add(dts)})
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}
