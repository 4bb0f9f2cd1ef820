package footageapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/recorder"
)

// integrityFixture is a camera's closed segments behind the API, with the
// recorder's health signals and metrics at hand.
type integrityFixture struct {
	r      *recorder.Recorder
	reg    *prometheus.Registry
	health *healthLog
	segs   []recorder.Segment
	srv    *httptest.Server
	audit  string
}

func newIntegrityFixture(t *testing.T, opts recorder.Options) integrityFixture {
	t.Helper()
	f := recordIntegrityFixture(t, opts)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	aud, err := recorder.NewFileAuditor(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aud.Close() })
	api, err := New(Options{Catalog: f.r.Catalog(), Audit: aud, Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.audit = auditPath
	return f
}

// fetch GETs path and reads the whole body; bodyErr is the error reading
// it (an aborted response), not a failed request.
func (f integrityFixture) fetch(t *testing.T, path string, hdr ...string) (resp *http.Response, body []byte, bodyErr error) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, bodyErr = io.ReadAll(resp.Body)
	return resp, body, bodyErr
}

func (f integrityFixture) auditEntries(t *testing.T) []recorder.AuditEntry {
	t.Helper()
	return apiFixture{audit: f.audit}.auditEntries(t)
}

func (f integrityFixture) listed(t *testing.T) map[string]segmentJSON {
	t.Helper()
	resp, body, err := f.fetch(t, "/api/v1/cameras/"+exportCamera+"/recordings"+q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(time.Minute))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("listing: %v %s", err, body)
	}
	var got recordingsJSON
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	m := map[string]segmentJSON{}
	for _, s := range got.Segments {
		m[s.ID] = s
	}
	return m
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Code, Error string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code + ": " + e.Error
}

func TestTamperedSegmentDownloadAborted(t *testing.T) {
	f := newIntegrityFixture(t, recorder.Options{})
	if got := f.integrityFailures(t); got != 0 {
		t.Fatalf("integrity failures %v at start", got)
	}
	victim := f.segs[1]
	tamper(t, victim)
	seg := "/api/v1/cameras/" + exportCamera + "/recordings/" + victim.ID

	resp, body, err := f.fetch(t, seg)
	if err == nil && resp.StatusCode == 200 && sum(body) == resp.Header.Get("X-Vigil-SHA256") {
		t.Fatal("a tampered segment was downloaded whole with a matching hash")
	}
	if err == nil && resp.StatusCode == 200 && int64(len(body)) == victim.Bytes {
		t.Fatalf("a tampered segment was served complete (%d bytes)", len(body))
	}
	if n := f.tamperedAlerts(); n != 1 {
		t.Errorf("recording_tampered raised %d times: %v", n, f.health.get())
	}
	if got := f.integrityFailures(t); got != 1 {
		t.Errorf("integrity failures %v, want 1", got)
	}
	i := slices.IndexFunc(f.auditEntries(t), func(e recorder.AuditEntry) bool {
		return e.Action == recorder.AuditDownloaded && e.Detail["integrity"] == "failed" && e.Detail["complete"] == "false"
	})
	if i < 0 {
		t.Errorf("no integrity failure audited: %+v", f.auditEntries(t))
	}

	// now known damaged: listed so, refused at once, in every form
	if s := f.listed(t)[victim.ID]; !s.Damaged || s.Damage != "sha256 mismatch" {
		t.Errorf("listed %+v, want damaged", s)
	}
	if s := f.listed(t)[f.segs[0].ID]; s.Damaged {
		t.Errorf("intact segment listed %+v", s)
	}
	rng := recorder.FormatTime(victim.Start.Add(time.Second))
	for _, path := range []string{
		seg,
		"/api/v1/cameras/" + exportCamera + "/export/manifest" + q("start", recorder.FormatTime(t0), "end", rng),
		"/api/v1/cameras/" + exportCamera + "/export" + q("start", recorder.FormatTime(t0), "end", rng),
	} {
		resp, body, err := f.fetch(t, path)
		if err != nil || resp.StatusCode != http.StatusConflict || !strings.HasPrefix(errorCode(t, body), "integrity: ") || !strings.Contains(string(body), victim.ID) {
			t.Errorf("GET %s: %v %d %s", path, err, resp.StatusCode, body)
		}
	}
	if n := f.tamperedAlerts(); n != 1 {
		t.Errorf("recording_tampered raised %d times for one segment", n)
	}
	// other segments still download
	resp, body, err = f.fetch(t, "/api/v1/cameras/"+exportCamera+"/recordings/"+f.segs[0].ID)
	if err != nil || resp.StatusCode != 200 || sum(body) != f.segs[0].SHA256 {
		t.Errorf("intact segment: %v %d", err, resp.StatusCode)
	}
}

func TestTamperedSegmentRangeRefused(t *testing.T) {
	f := newIntegrityFixture(t, recorder.Options{})
	victim := f.segs[1]
	tamper(t, victim)
	// the first kilobyte is intact, but the file it is part of is not
	resp, body, err := f.fetch(t, "/api/v1/cameras/"+exportCamera+"/recordings/"+victim.ID, "Range", "bytes=0-1023")
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("range of a tampered segment: %v %d %s", err, resp.StatusCode, body)
	}
	if n := f.tamperedAlerts(); n != 1 {
		t.Errorf("recording_tampered raised %d times", n)
	}
}

func TestTamperedSourceExportAborted(t *testing.T) {
	for _, format := range []string{recorder.FormatMP4, recorder.FormatFMP4} {
		t.Run(format, func(t *testing.T) {
			f := newIntegrityFixture(t, recorder.Options{})
			victim := f.segs[1]
			// the manifest does not read media: before anyone read the
			// tampered file it lists the index's hash
			tamper(t, victim)
			export := "/api/v1/cameras/" + exportCamera + "/export" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(11*time.Second)), "format", format)
			resp, body, err := f.fetch(t, export)
			if err == nil && resp.StatusCode == 200 && int64(len(body)) == resp.ContentLength {
				t.Fatalf("export over a tampered source completed (%d bytes)", len(body))
			}
			if n := f.tamperedAlerts(); n != 1 {
				t.Errorf("recording_tampered raised %d times", n)
			}
			if got := f.integrityFailures(t); got != 1 {
				t.Errorf("one failed check counted %v times", got)
			}
			i := slices.IndexFunc(f.auditEntries(t), func(e recorder.AuditEntry) bool {
				return e.Action == recorder.AuditExported && e.Detail["integrity"] == "failed" && e.Detail["complete"] == "false"
			})
			if i < 0 {
				t.Errorf("no integrity failure audited: %+v", f.auditEntries(t))
			}
			resp, body, _ = f.fetch(t, "/api/v1/cameras/"+exportCamera+"/export/manifest"+q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(11*time.Second))))
			if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), victim.ID) {
				t.Errorf("manifest after the failure: %d %s", resp.StatusCode, body)
			}
			// a range of the export that avoids no source is refused too
			resp, _, _ = f.fetch(t, export, "Range", "bytes=0-99")
			if resp.StatusCode != http.StatusConflict {
				t.Errorf("range of the export: %d", resp.StatusCode)
			}
		})
	}
}

// A segment cut short is damaged for good: 409 integrity naming it, and the
// alert; not "source_changed … retry" forever.
func TestTruncatedSegmentIsIntegrityFailure(t *testing.T) {
	f := newIntegrityFixture(t, recorder.Options{})
	victim := f.segs[1]
	if err := os.Truncate(victim.Path, victim.Bytes/2); err != nil {
		t.Fatal(err)
	}
	for try := range 2 {
		for _, path := range []string{
			"/api/v1/cameras/" + exportCamera + "/export" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(11*time.Second))),
			"/api/v1/cameras/" + exportCamera + "/export/manifest" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(11*time.Second))),
			"/api/v1/cameras/" + exportCamera + "/recordings/" + victim.ID,
		} {
			resp, body, err := f.fetch(t, path)
			if err != nil || resp.StatusCode != http.StatusConflict || !strings.HasPrefix(errorCode(t, body), "integrity: ") ||
				!strings.Contains(string(body), victim.ID) || !strings.Contains(string(body), "truncated") {
				t.Errorf("try %d: GET %s: %v %d %s", try, path, err, resp.StatusCode, body)
			}
		}
	}
	if n := f.tamperedAlerts(); n != 1 {
		t.Errorf("recording_tampered raised %d times: %v", n, f.health.get())
	}
	if got := f.integrityFailures(t); got != 1 {
		t.Errorf("one failed check counted %v times", got)
	}
	if s := f.listed(t)[victim.ID]; !s.Damaged || !strings.HasPrefix(s.Damage, "truncated") {
		t.Errorf("listed %+v", s)
	}
}
