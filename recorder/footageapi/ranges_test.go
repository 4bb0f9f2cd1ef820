package footageapi

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/recorder"
)

// ranges joins n ranges made by f into a Range header.
func ranges(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return "bytes=" + strings.Join(parts, ",")
}

// rangeParts returns the parts of a 206 answer: one for a single range,
// each part's body for multipart/byteranges.
func rangeParts(t *testing.T, ctype string, body []byte) [][]byte {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || mt != "multipart/byteranges" {
		return [][]byte{body}
	}
	var out [][]byte
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// A Range header may ask for at most MaxRanges ranges once overlapping and
// adjacent ones are merged; the merged ranges are what is served, so a
// header cannot multiply the response, and the audit keeps at most 256
// bytes of it.
func TestAPIRangeAbuse(t *testing.T) {
	f := newAPIFixture(t, nil)
	segs, _, err := f.rec.catalog.List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	seg := segs[1]
	whole, err := os.ReadFile(seg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) < 2000 {
		t.Fatalf("segment of %d bytes is too small for this test", len(whole))
	}
	segPath := "/api/v1/cameras/hall-entrance/recordings/" + seg.ID
	start, end := recorder.FormatTime(t0.Add(5*time.Second)), recorder.FormatTime(t0.Add(17*time.Second))
	exportPath := "/api/v1/cameras/hall-entrance/export" + q("start", start, "end", end)

	cases := []struct {
		name, path, rng string
		status          int
		parts           [][2]int // the [start, end) of each part served
	}{
		{"16 disjoint ranges", segPath, ranges(16, func(i int) string { return fmt.Sprintf("%d-%d", i*100, i*100+9) }), 206,
			func() (p [][2]int) {
				for i := range 16 {
					p = append(p, [2]int{i * 100, i*100 + 10})
				}
				return p
			}()},
		{"17 disjoint ranges", segPath, ranges(17, func(i int) string { return fmt.Sprintf("%d-%d", i*100, i*100+9) }), 416, nil},
		{"17 disjoint ranges of an export", exportPath, ranges(17, func(i int) string { return fmt.Sprintf("%d-%d", i*100, i*100+9) }), 416, nil},
		{"200,000 copies of one byte", segPath, ranges(200_000, func(int) string { return "0-0" }), 206, [][2]int{{0, 1}}},
		{"40 overlapping ranges merge to 2", segPath, ranges(40, func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("%d-%d", i, i+50)
			}
			return fmt.Sprintf("%d-%d", 1000+i, 1000+i+50)
		}), 206, [][2]int{{0, 89}, {1001, 1090}}},
		{"100 adjacent ranges merge to 1", segPath, ranges(100, func(i int) string { return fmt.Sprintf("%d-%d", i*10, i*10+9) }), 206, [][2]int{{0, 1000}}},
		{"suffix and prefix overlapping", segPath, "bytes=-100, 0-9, " + fmt.Sprint(len(whole)-150) + "-", 206,
			[][2]int{{0, 10}, {len(whole) - 150, len(whole)}}},
		{"ranges beyond the end are dropped", segPath, ranges(30, func(i int) string { return fmt.Sprintf("%d-", len(whole)+i) }) + ",0-0", 206, [][2]int{{0, 1}}},
		{"all beyond the end", segPath, ranges(30, func(i int) string { return fmt.Sprintf("%d-", len(whole)+i) }), 416, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.get(t, c.path, "Range", c.rng)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%d bytes)", resp.StatusCode, c.status, len(body))
			}
			if c.status == 416 {
				if len(body) > 1024 {
					t.Fatalf("416 with a %d-byte body", len(body))
				}
				return
			}
			got := rangeParts(t, resp.Header.Get("Content-Type"), body)
			if len(got) != len(c.parts) {
				t.Fatalf("%d parts (%d bytes), want %d", len(got), len(body), len(c.parts))
			}
			for i, p := range c.parts {
				if string(got[i]) != string(whole[p[0]:p[1]]) {
					t.Fatalf("part %d: %d bytes, want bytes [%d, %d)", i, len(got[i]), p[0], p[1])
				}
			}
		})
	}

	for _, e := range f.auditEntries(t) {
		if rg, ok := e.Detail["range"]; ok && len(rg) > 256 {
			t.Errorf("audit keeps a %d-byte Range header", len(rg))
		}
	}
	var long []recorder.AuditEntry
	for _, e := range f.auditEntries(t) {
		if e.Detail["range_bytes"] != "" {
			long = append(long, e)
		}
	}
	// the 200,000 copies, the 40 overlapping and the 100 adjacent ranges
	if big := cases[3].rng; len(long) != 3 || long[0].Detail["range_bytes"] != fmt.Sprint(len(big)) || len(long[0].Detail["range"]) != 256 || !strings.HasPrefix(big, long[0].Detail["range"]) {
		t.Fatalf("audit entries of long Range headers: %+v", long)
	}
}

func TestAuditRange(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"short", "bytes=0-1", "bytes=0-1"},
		{"exactly 256", strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{"long", strings.Repeat("a", 1000), strings.Repeat("a", 256)},
		{"cut inside a character", strings.Repeat("a", 255) + "网格", strings.Repeat("a", 255)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := auditRange(c.in); got != c.want {
				t.Fatalf("auditRange = %q (%d bytes), want %d bytes", got, len(got), len(c.want))
			}
		})
	}
}

// FuzzParseRanges checks the Range parser on any header: no panic, every
// range inside the resource, and the merge keeps exactly the bytes asked
// for, in sorted ranges that neither overlap nor touch.
func FuzzParseRanges(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-100", "bytes=100-", "bytes=0-0,0-0", "bytes=5-1", "bytes=z-y",
		"bytes= 1 - 2 ,, 4-", "bytes=-0", "bytes=9223372036854775807-", "bytes=--1", "items=0-1", "bytes=0-9,10-19,30-"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<20 {
			return
		}
		rs, err := parseRanges(h, size)
		if err != nil {
			return
		}
		covered := map[int64]bool{}
		for _, r := range rs {
			if r.start < 0 || r.end >= size || r.start > r.end {
				t.Fatalf("%q on %d bytes: range %+v", h, size, r)
			}
			if len(covered) < 1<<16 {
				for i := r.start; i <= r.end && i < r.start+64; i++ {
					covered[i] = true
				}
			}
		}
		merged := coalesce(slices.Clone(rs))
		for i, r := range merged {
			if i > 0 && r.start <= merged[i-1].end+1 {
				t.Fatalf("%q: merged ranges %+v overlap or touch", h, merged)
			}
		}
		in := func(i int64) bool {
			for _, r := range merged {
				if r.start <= i && i <= r.end {
					return true
				}
			}
			return false
		}
		for i := range covered {
			if !in(i) {
				t.Fatalf("%q: byte %d asked for, not in %+v", h, i, merged)
			}
		}
		for _, r := range merged {
			for _, i := range []int64{r.start, r.end} {
				found := false
				for _, o := range rs {
					found = found || (o.start <= i && i <= o.end)
				}
				if !found {
					t.Fatalf("%q: byte %d in %+v was not asked for", h, i, merged)
				}
			}
		}
	})
}
