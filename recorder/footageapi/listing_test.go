package footageapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/recorder"
)

// referenceRecordingsJSON is the listing as encoding/json renders it, the
// way listRecordings answered before it encoded by hand.
func referenceRecordingsJSON(t testing.TB, camera string, start, end time.Time, segs []recorder.Segment, gaps []recorder.Gap) []byte {
	t.Helper()
	out := recordingsJSON{Camera: camera, Start: recorder.FormatTime(start), End: recorder.FormatTime(end), Segments: make([]segmentJSON, 0, len(segs)), Gaps: recorder.ManifestGaps(gaps)}
	for _, s := range segs {
		out.Segments = append(out.Segments, segmentJSON{
			ID: s.ID, Start: recorder.FormatTime(s.Start), End: recorder.FormatTime(s.End),
			DurationS: s.Duration().Seconds(), Bytes: s.Bytes, SHA256: s.SHA256,
			URL:  "/api/v1/cameras/" + camera + "/recordings/" + s.ID,
			Node: s.Node, Epoch: s.Epoch,
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendRecordingsJSONMatchesEncodingJSON(t *testing.T) {
	base := time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)
	seg := func(id string, start time.Time, d time.Duration, n int64) recorder.Segment {
		return recorder.Segment{ID: id, Camera: "hall-entrance", Start: start, End: start.Add(d), Bytes: n, SHA256: strings.Repeat("ab", 32)}
	}
	shanghai := time.FixedZone("CST", 8*3600)
	cases := []struct {
		name       string
		camera     string
		start, end time.Time
		segs       []recorder.Segment
		gaps       []recorder.Gap
	}{
		{name: "empty", camera: "gate", start: base, end: base.Add(time.Hour)},
		{name: "one minute", camera: "hall-entrance", start: base, end: base.Add(time.Minute),
			segs: []recorder.Segment{seg("2026-11-26T21-05-00.000Z", base, time.Minute, 30_000_000)}},
		{name: "gaps and odd durations", camera: "cam-1", start: base.Add(-time.Hour).In(shanghai), end: base.Add(time.Hour + 999*time.Millisecond + 999),
			segs: []recorder.Segment{
				seg("2026-11-26T21-05-00.000Z", base, 59999*time.Millisecond, 0),
				seg("2026-11-26T21-06-00.001Z", base.Add(time.Minute+time.Millisecond), 0, 1),
				seg("2026-11-26T21-07-00.000Z", base.Add(2*time.Minute), time.Nanosecond, 1<<62),
				seg("2026-11-26T21-08-00.000Z", base.Add(3*time.Minute), 7*time.Millisecond, 42),
				seg("2026-11-26T21-09-00.000Z", base.Add(4*time.Minute), 100*24*time.Hour, 42),
			},
			gaps: []recorder.Gap{{Start: base.Add(59999 * time.Millisecond), End: base.Add(time.Minute + time.Millisecond)}, {Start: base.Add(time.Minute), End: base.Add(2 * time.Minute)}}},
		{name: "cluster node and epoch", camera: "gate", start: base, end: base.Add(2 * time.Minute),
			segs: []recorder.Segment{
				{ID: "2026-11-26T21-05-00.000Z", Start: base, End: base.Add(time.Minute), SHA256: strings.Repeat("0", 64), Node: "village-3", Epoch: 7},
				{ID: "2026-11-26T21-06-00.000Z", Start: base.Add(time.Minute), End: base.Add(2 * time.Minute), SHA256: strings.Repeat("0", 64), Node: "town-\"1\"", Epoch: 8},
			}},
		{name: "years outside 0000-9999", camera: "x", start: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), end: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "strings needing escapes", camera: "a\"b\\c\n\t\x01\x7f<>&\u2028\u2029é\xff",
			start: base, end: base,
			segs: []recorder.Segment{{ID: "\x1f\b\f\r", SHA256: "\xe2\x80", Start: base, End: base}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := referenceRecordingsJSON(t, tc.camera, tc.start, tc.end, tc.segs, tc.gaps)
			got := appendRecordingsJSON(nil, tc.camera, tc.start, tc.end, tc.segs, tc.gaps)
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x1f\x7f", "<&>", "\u2028\u2029", "\xff\xfe", "日本\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := append(appendJSONString(nil, s), '\n')
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%q: got %s, want %s", s, got, want.Bytes())
		}
	})
}

// TestListRecordingsBodyMatchesEncodingJSON compares the served listing,
// cold and warm, with encoding/json's rendering of recorder.Catalog.List.
func TestListRecordingsBodyMatchesEncodingJSON(t *testing.T) {
	dir := t.TempDir()
	if err := writeCatalog(dir, 1); err != nil {
		t.Fatal(err)
	}
	// a damaged line, a missing day and a camera without recordings
	day := benchEnd.Add(-3 * 24 * time.Hour)
	f, err := os.OpenFile(filepath.Join(dir, "cam-000", day.Format("2006-01-02"), "index.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"file\":\"garbage\n")
	f.Close()
	if err := os.RemoveAll(filepath.Join(dir, "cam-000", benchEnd.Add(-5*24*time.Hour).Format("2006-01-02"))); err != nil {
		t.Fatal(err)
	}
	reference := recorder.OpenCatalog(dir, nil)
	served := recorder.OpenCatalog(dir, nil)
	api, err := New(Options{Catalog: served, Now: func() time.Time { return benchEnd }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cases := []struct {
		name       string
		camera     string
		start, end time.Time
	}{
		{"one day", "cam-000", day, day.Add(24*time.Hour - time.Second)},
		{"across midnight", "cam-000", day.Add(-90*time.Second + 17*time.Millisecond), day.Add(90 * time.Second)},
		{"around a missing day", "cam-000", day.Add(-3 * 24 * time.Hour), day.Add(-24 * time.Hour)},
		{"inside a segment", "cam-000", day.Add(10*time.Minute + 5*time.Second), day.Add(10*time.Minute + 6*time.Second)},
		{"on a segment's start", "cam-000", day.Add(10 * time.Minute), day.Add(10 * time.Minute)},
		{"before the first day", "cam-000", benchEnd.Add(-40 * 24 * time.Hour), benchEnd.Add(-35 * 24 * time.Hour)},
		{"no such camera", "cam-999", day, day.Add(time.Hour)},
		{"the last day", "cam-000", benchEnd.Add(-time.Hour), benchEnd.Add(time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			segs, gaps, err := reference.List(tc.camera, tc.start, tc.end)
			if err != nil {
				t.Fatal(err)
			}
			want := referenceRecordingsJSON(t, tc.camera, tc.start, tc.end, segs, gaps)
			for _, pass := range []string{"cold", "warm"} {
				u := srv.URL + "/api/v1/cameras/" + tc.camera + "/recordings?" + url.Values{
					"start": {tc.start.Format(time.RFC3339Nano)}, "end": {tc.end.Format(time.RFC3339Nano)}}.Encode()
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d, %v: %s", pass, resp.StatusCode, err, got)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("%s: Content-Type %q", pass, ct)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: body differs from encoding/json's (%d vs %d bytes)", pass, len(got), len(want))
				}
			}
		})
	}
}
