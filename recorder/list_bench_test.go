package recorder

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkListDayHTTP lists one camera-day (1,440 segments) out of 30 over
// a loopback HTTP request, as bench/export.go does: cold (the day and the
// day before dropped from the cache first) and warm. client=read reads the
// body; client=decode also decodes it as the bench's client does.
func BenchmarkListDayHTTP(b *testing.B) {
	dir := b.TempDir()
	if err := writeCatalog(dir, 1, false); err != nil { // cam-000: 30 days
		b.Fatal(err)
	}
	day := benchEnd.Add(-10 * 24 * time.Hour)
	r, err := New(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	api, err := NewAPI(APIOptions{Catalog: r.Catalog(), Now: func() time.Time { return benchEnd }})
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
	for _, cached := range []bool{false, true} {
		for _, decode := range []bool{false, true} {
			name := "cold"
			if cached {
				name = "warm"
			}
			if decode {
				name += "/client=decode"
			} else {
				name += "/client=read"
			}
			b.Run(name, func(b *testing.B) {
				var n int64
				for b.Loop() {
					if !cached {
						r.Catalog().invalidate("cam-000", day.Format(dayLayout))
						r.Catalog().invalidate("cam-000", day.Add(-24*time.Hour).Format(dayLayout))
					}
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
