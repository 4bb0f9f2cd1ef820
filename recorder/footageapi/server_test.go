package footageapi

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

type apiFixture struct {
	rec   gapRecording
	srv   *httptest.Server
	audit string
}

func newAPIFixture(t *testing.T, wrapExport func(http.ResponseWriter) http.ResponseWriter) apiFixture {
	t.Helper()
	rec := recordWithGap(t)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	aud, err := recorder.NewFileAuditor(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aud.Close() })
	api, err := New(Options{
		Catalog: rec.catalog,
		Audit:   aud,
		Actor:   func(r *http.Request) string { return r.Header.Get("X-Test-Actor") },
		Now:     func() time.Time { return t0.Add(25 * time.Second) },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	mux.HandleFunc("GET /test/clip", func(w http.ResponseWriter, r *http.Request) {
		if wrapExport != nil {
			w = wrapExport(w)
		}
		api.ServeExport(w, r, exportCamera, t0, t0.Add(20*time.Second), "")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return apiFixture{rec: rec, srv: srv, audit: auditPath}
}

func (f apiFixture) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp, b
}

func (f apiFixture) auditEntries(t *testing.T) []recorder.AuditEntry {
	t.Helper()
	fh, err := os.Open(f.audit)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []recorder.AuditEntry
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var e recorder.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func TestAPIListRecordings(t *testing.T) {
	f := newAPIFixture(t, nil)
	resp, body := f.get(t, "/api/v1/cameras/hall-entrance/recordings"+q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(time.Minute))))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got recordingsJSON
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Camera != exportCamera || len(got.Segments) != 5 || len(got.Gaps) != 1 {
		t.Fatalf("got %s", body)
	}
	for i, s := range got.Segments {
		if i > 0 && s.Start < got.Segments[i-1].Start {
			t.Errorf("segments not sorted: %s", body)
		}
		if s.URL != "/api/v1/cameras/hall-entrance/recordings/"+s.ID || s.Bytes == 0 || len(s.SHA256) != 64 || s.DurationS <= 0 {
			t.Errorf("segment %d: %+v", i, s)
		}
	}
	// default: the last hour before now (t0+25s) holds everything
	resp, body = f.get(t, "/api/v1/cameras/hall-entrance/recordings")
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || len(got.Segments) != 5 {
		t.Fatalf("default range: %d %s", resp.StatusCode, body)
	}

	bad := []struct{ name, path, code string }{
		{"over 31 days", "/api/v1/cameras/hall-entrance/recordings" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(32*24*time.Hour))), "range_too_long"},
		{"end before start", "/api/v1/cameras/hall-entrance/recordings" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(-time.Second))), "bad_range"},
		{"not RFC 3339", "/api/v1/cameras/hall-entrance/recordings" + q("start", "yesterday"), "bad_time"},
		{"bad camera", "/api/v1/cameras/Hall_Entrance/recordings", "bad_camera_id"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			var e struct{ Error, Code string }
			if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.Code != tt.code || e.Error == "" {
				t.Fatalf("status %d %s, want 400 %s", resp.StatusCode, body, tt.code)
			}
		})
	}
}

func TestAPISegmentDownload(t *testing.T) {
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
	path := "/api/v1/cameras/hall-entrance/recordings/" + seg.ID

	resp, body := f.get(t, path, "X-Test-Actor", "inv-1")
	if resp.StatusCode != 200 || sum(body) != seg.SHA256 || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("ETag") != `"`+seg.SHA256+`"` {
		t.Fatalf("status %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	ranges := []struct {
		name, rng string
		status    int
		want      []byte
	}{
		{"first 100", "bytes=0-99", 206, whole[:100]},
		{"suffix 100", "bytes=-100", 206, whole[len(whole)-100:]},
		{"open end", "bytes=100-", 206, whole[100:]},
		{"beyond the end", "bytes=99999999-", 416, nil},
		{"garbage", "bytes=z-y", 416, nil},
	}
	for _, tt := range ranges {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, path, "Range", tt.rng)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.want != nil && string(body) != string(tt.want) {
				t.Fatalf("got %d bytes, want %d", len(body), len(tt.want))
			}
		})
	}
	resp, _ = f.get(t, path, "If-None-Match", `"`+seg.SHA256+`"`)
	if resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: status %d, want 304", resp.StatusCode)
	}

	bad := []struct {
		name, path string
	}{
		{"traversal in segment", "/api/v1/cameras/hall-entrance/recordings/..%2F..%2Fholds.json"},
		{"traversal in camera", "/api/v1/cameras/..%2F..%2Fetc/recordings/" + seg.ID},
		{"dot dot", "/api/v1/cameras/hall-entrance/recordings/.."},
		{"index file", "/api/v1/cameras/hall-entrance/recordings/index.jsonl"},
		{"id with suffix", "/api/v1/cameras/hall-entrance/recordings/" + seg.ID + ".mp4"},
		{"not a time", "/api/v1/cameras/hall-entrance/recordings/2026-13-45T99-99-99.999Z"},
		{"unknown segment", "/api/v1/cameras/hall-entrance/recordings/2026-11-26T00-00-00.000Z"},
		{"unknown camera", "/api/v1/cameras/gate/recordings/" + seg.ID},
		{"upper case camera", "/api/v1/cameras/HALL/recordings/" + seg.ID},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), "ftyp") {
				t.Fatal("served a file")
			}
		})
	}

	var downloads []recorder.AuditEntry
	for _, e := range f.auditEntries(t) {
		if e.Action == recorder.AuditDownloaded {
			downloads = append(downloads, e)
		}
	}
	// the full download and the three satisfied ranges; not 304 nor 416
	if len(downloads) != 4 {
		t.Fatalf("%d download entries, want 4: %+v", len(downloads), downloads)
	}
	if e := downloads[0]; e.By != "inv-1" || e.Object != "camera/hall-entrance/segment/"+seg.ID || e.Detail["sha256"] != seg.SHA256 || e.Detail["complete"] != "true" {
		t.Fatalf("audit entry %+v", e)
	}
	if e := downloads[1]; e.Detail["range"] != "bytes=0-99" || e.Detail["sha256"] != sum(whole[:100]) {
		t.Fatalf("audit of a range %+v", e)
	}
}

func TestAPIExport(t *testing.T) {
	f := newAPIFixture(t, nil)
	start, end := recorder.FormatTime(t0.Add(5*time.Second)), recorder.FormatTime(t0.Add(17*time.Second))
	path := "/api/v1/cameras/hall-entrance/export" + q("start", start, "end", end)
	resp, body := f.get(t, path, "X-Test-Actor", "inv-2")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("ETag") == "" {
		t.Fatalf("headers %v, %d bytes", resp.Header, len(body))
	}
	var gaps []recorder.ManifestGap
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Vigil-Gaps")), &gaps); err != nil || len(gaps) != 1 {
		t.Fatalf("X-Vigil-Gaps %q: %v", resp.Header.Get("X-Vigil-Gaps"), err)
	}
	if string(body[4:8]) != "ftyp" || !strings.Contains(string(body[:4096]), "moov") {
		t.Fatal("export does not start with ftyp and moov")
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := f.get(t, path, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match on an export: %d", resp.StatusCode)
	}
	if resp, b := f.get(t, path, "Range", "bytes=-100"); resp.StatusCode != 206 || string(b) != string(body[len(body)-100:]) {
		t.Fatalf("suffix range on an export: %d, %d bytes", resp.StatusCode, len(b))
	}

	resp, mb := f.get(t, "/api/v1/cameras/hall-entrance/export/manifest"+q("start", start, "end", end))
	var m recorder.Manifest
	if err := json.Unmarshal(mb, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("manifest: %d %s", resp.StatusCode, mb)
	}
	if m.Camera != exportCamera || m.Start != start || m.End != end || len(m.Segments) != 3 || len(m.Gaps) != 1 {
		t.Fatalf("manifest %s", mb)
	}
	for _, s := range m.Segments {
		if len(s.SHA256) != 64 || s.Bytes == 0 || s.ID == "" {
			t.Fatalf("manifest segment %+v", s)
		}
	}

	var exports []recorder.AuditEntry
	for _, e := range f.auditEntries(t) {
		if e.Action == recorder.AuditExported {
			exports = append(exports, e)
		}
	}
	if len(exports) != 2 { // the full export and the suffix range
		t.Fatalf("%d export entries, want 2: %+v", len(exports), exports)
	}
	if e := exports[0]; e.By != "inv-2" || e.Detail["sha256"] != sum(body) || e.Detail["camera"] != exportCamera || e.Detail["start"] != start || e.Detail["end"] != end || e.Detail["complete"] != "true" {
		t.Fatalf("audit entry %+v", e)
	}

	bad := []struct {
		name, query string
		status      int
		code        string
	}{
		{"no range", "", 400, "bad_range"},
		{"empty range", q("start", start, "end", start), 400, "bad_range"},
		{"too long", q("start", start, "end", recorder.FormatTime(t0.Add(3*time.Hour))), 400, "range_too_long"},
		{"bad format", q("start", start, "end", end, "format", "mkv"), 400, "bad_format"},
		{"no footage", q("start", recorder.FormatTime(t0.Add(time.Hour)), "end", recorder.FormatTime(t0.Add(time.Hour+time.Minute))), 404, "no_footage"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/cameras/hall-entrance/export"+tt.query)
			var e struct{ Error, Code string }
			if resp.StatusCode != tt.status || json.Unmarshal(body, &e) != nil || e.Code != tt.code {
				t.Fatalf("status %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
}

// removingWriter deletes a file at the first body write: retention
// removing a source segment while an export is being sent.
type removingWriter struct {
	http.ResponseWriter
	path    string
	removed bool
}

func (w *removingWriter) Write(p []byte) (int, error) {
	if !w.removed {
		w.removed = true
		os.Remove(w.path)
	}
	return w.ResponseWriter.Write(p)
}

func TestAPIExportAbortsWhenSourceRemoved(t *testing.T) {
	var last string
	f := newAPIFixture(t, func(w http.ResponseWriter) http.ResponseWriter {
		return &removingWriter{ResponseWriter: w, path: last}
	})
	segs, _, err := f.rec.catalog.List(exportCamera, t0, t0.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	last = segs[len(segs)-1].Path
	resp, err := http.Get(f.srv.URL + "/test/clip")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read a whole body of %d bytes (Content-Length %d) from a broken export", len(b), resp.ContentLength)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("body error: %v", err)
	}
	entries := f.auditEntries(t)
	if len(entries) != 1 || entries[0].Detail["complete"] != "false" || entries[0].Detail["error"] == "" {
		t.Fatalf("audit %+v, want one incomplete export", entries)
	}
	// asked again, the export fails before its first byte, though the
	// segment's table is cached
	resp, body := f.get(t, "/test/clip")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "source_changed") {
		t.Fatalf("export over a removed segment: %d %s", resp.StatusCode, body)
	}
}

// A range outside the years footage can have is bad input, not a listing
// of the zero segment with an empty id.
func TestRecordingsRejectZeroTimes(t *testing.T) {
	f := newAPIFixture(t, nil)
	for _, q := range []string{
		"end=0001-01-01T00:00:00Z",
		"start=0001-01-01T00:00:00Z",
		"start=0001-01-01T00:00:00Z&end=0001-01-01T00:30:00Z",
		"start=1969-12-31T23:00:00Z&end=1970-01-01T00:00:00Z",
	} {
		t.Run(q, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/cameras/"+exportCamera+"/recordings?"+q)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"bad_time"`) {
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	// the catalog itself never lists an empty segment for such a range
	segs, _, err := f.rec.catalog.List(exportCamera, time.Time{}.Add(-time.Hour), time.Time{})
	if err != nil || len(segs) != 0 {
		t.Errorf("List at the zero time: %+v %v", segs, err)
	}
}
