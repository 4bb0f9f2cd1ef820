package footageapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vigil/recorder"
)

// Goal of Vigil 12 §1: a clip requested 2 s after an event contains the
// event's moment, though the segment holding it is still being written.
// The listing shows that segment open up to its last flushed part, the
// export plays (ffprobe) and reaches past the event, and the manifest
// gives the hash of exactly the bytes taken from it.
func TestClipTwoSecondsAfterEventFromOpenSegment(t *testing.T) {
	o := startOpenRecording(t)
	event := t0.Add(10 * time.Second)
	o.until(event.Add(2 * time.Second))

	segs, gaps, err := o.r.Catalog().List(exportCamera, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || !segs[0].Open || len(gaps) != 0 {
		t.Fatalf("listing: %+v gaps %+v", segs, gaps)
	}
	open := segs[0]
	if open.End.Before(event) || open.End.After(event.Add(2*time.Second)) {
		t.Fatalf("open segment ends at %v; the event is at %v", open.End, event)
	}
	if got := sha256Prefix(t, open.Path, open.Bytes); got != open.SHA256 {
		t.Fatalf("listed hash %s, the file's first %d bytes hash to %s", open.SHA256, open.Bytes, got)
	}

	// the alert clip: [event - pre_roll, now], served as the app serves it
	api, err := New(Options{Catalog: o.r.Catalog(), Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	clipStart, clipEnd := event.Add(-5*time.Second), o.clock.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeExport(w, r, exportCamera, clipStart, clipEnd, recorder.FormatMP4)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("clip: %d %v %s", resp.StatusCode, err, body)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	p := ffprobe(t, path)
	from, _ := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Vigil-From"))
	if p.Stderr != "" || p.Frames == 0 || from.Add(p.Duration).Before(event) {
		t.Fatalf("clip from %v plays %v (%d frames, %q): does not reach the event at %v", from, p.Duration, p.Frames, p.Stderr, event)
	}

	x, err := recorder.PlanExport(o.r.Catalog(), recorder.ExportRequest{Camera: exportCamera, Start: clipStart, End: clipEnd})
	if err != nil {
		t.Fatal(err)
	}
	m := x.Manifest()
	if len(m.Segments) != 1 || !m.Segments[0].Open || m.Segments[0].Bytes != open.Bytes || m.Segments[0].SHA256 != open.SHA256 {
		t.Fatalf("manifest segments %+v, want the open one %+v", m.Segments, open)
	}

	// the writer goes on: the planned export still reads and verifies the
	// bytes it took
	o.until(event.Add(5 * time.Second))
	writeExport(t, x, filepath.Join(t.TempDir(), "again.mp4"))

	// closed: listed from the index with the whole file's hash
	if err := o.r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	segs, _, err = o.r.Catalog().List(exportCamera, t0, t0.Add(time.Hour))
	if err != nil || len(segs) != 1 || segs[0].Open || segs[0].ID != open.ID || segs[0].SHA256 != fileSHA256(t, open.Path) {
		t.Fatalf("after close: %+v %v", segs, err)
	}
}

// The segment being written is listed open by the API and downloadable up
// to its last flushed part; an ongoing outage is a gap up to now.
func TestListingShowsOpenSegmentAndOngoingOutage(t *testing.T) {
	o := startOpenRecording(t)
	o.until(t0.Add(4 * time.Second))
	api, err := New(Options{Catalog: o.r.Catalog(), Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	list := func() recordingsJSON {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/v1/cameras/" + exportCamera + "/recordings?start=" + t0.Format(time.RFC3339) + "&end=" + t0.Add(time.Hour).Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l recordingsJSON
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 {
			t.Fatalf("listing: %d %v", resp.StatusCode, err)
		}
		return l
	}
	l := list()
	if len(l.Segments) != 1 || !l.Segments[0].Open || len(l.Gaps) != 0 {
		t.Fatalf("listing while recording: %+v", l)
	}
	seg := l.Segments[0]
	resp, err := http.Get(srv.URL + seg.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || int64(len(body)) != seg.Bytes || hex.EncodeToString(sum[:]) != seg.SHA256 {
		t.Fatalf("download of the open segment: %d, %d bytes, want %d", resp.StatusCode, len(body), seg.Bytes)
	}

	o.w.OnBreak("camera offline", 0)
	o.clock.Set(t0.Add(30 * time.Second))
	l = list()
	if len(l.Segments) != 1 || l.Segments[0].Open || len(l.Gaps) != 1 ||
		l.Gaps[0].Start != l.Segments[0].End || l.Gaps[0].End != "2026-11-26T21:05:30.000Z" {
		t.Fatalf("listing during the outage: %+v", l)
	}
}
