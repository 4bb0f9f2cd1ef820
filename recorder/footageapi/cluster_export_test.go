package footageapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/recorder"
)

// recordNode records frames of exportCamera from start on a node's own
// recorder, under epoch, in 4-s segments.
func recordNode(t *testing.T, node string, epoch int64, start time.Time, frames int) *recorder.Recorder {
	t.Helper()
	c := fixture(t)
	r, _ := newTestRecorder(t, recorder.Options{Node: node, Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.SetEpoch(epoch)
	w.OnStream(stream(c, exportCamera, 1, start))
	(&feeder{c: c, wall: start}).feed(w, frames)
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	return r
}

// segmentsOf lists r's segments of exportCamera.
func segmentsOf(t *testing.T, r *recorder.Recorder) []recorder.Segment {
	t.Helper()
	segs, _, err := r.Catalog().List(exportCamera, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	return segs
}

// watchedNode is another node's API behind a link that counts what it is
// asked for and may alter one segment's bytes on their way.
type watchedNode struct {
	srv *httptest.Server
	mu  sync.Mutex
	// downloads and boxes count the segment downloads and box requests.
	downloads, boxes int
	// alter, when set, names the segment whose download has a byte flipped.
	alter string
}

func watchNode(t *testing.T, r *recorder.Recorder) *watchedNode {
	t.Helper()
	inner := serveNode(t, r.Catalog())
	n := &watchedNode{}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.Path
		isBoxes := strings.HasSuffix(p, "/boxes")
		isSegment := strings.Contains(p, "/recordings/") && !isBoxes
		n.mu.Lock()
		if isBoxes {
			n.boxes++
		}
		if isSegment {
			n.downloads++
		}
		alter := n.alter != "" && isSegment && strings.HasSuffix(p, "/"+n.alter)
		n.mu.Unlock()
		out, err := http.NewRequestWithContext(req.Context(), req.Method, inner.URL+req.URL.RequestURI(), nil)
		if err != nil {
			t.Error(err)
			return
		}
		out.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if alter {
			b[len(b)/2] ^= 0x20 // in transit: same size, other bytes
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *watchedNode) counts() (downloads, boxes int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.downloads, n.boxes
}

// clusterNode is town-1's API over its own recorder, with village-2 as
// its other node.
type clusterNode struct {
	srv     *httptest.Server
	reg     *prometheus.Registry
	tempDir string
	audit   string
}

func newClusterNode(t *testing.T, own *recorder.Recorder, village2 string) clusterNode {
	t.Helper()
	n := clusterNode{reg: prometheus.NewRegistry(), tempDir: t.TempDir(), audit: filepath.Join(t.TempDir(), "audit.jsonl")}
	aud, err := recorder.NewFileAuditor(n.audit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aud.Close() })
	api, err := New(Options{Catalog: own.Catalog(), Audit: aud, Registerer: n.reg, TempDir: n.tempDir,
		Peers: peersAt(t, "town-1", map[string]string{"village-2": village2})})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	return n
}

func (n clusterNode) mismatches(t *testing.T) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == "vigil_cluster_footage_mismatches_total" {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// mediaBytes is the size of s's media: the file less its boxes.
func mediaBytes(t *testing.T, s recorder.Segment) int {
	t.Helper()
	b, err := recorder.AppendSegmentBoxes(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return int(s.Bytes) - len(b)
}

// wantAbortAudited checks the audit entry of an export aborted for
// village-2's segment, and what village-2 found checking its copy.
func (n clusterNode) wantAbortAudited(t *testing.T, segment, holderCheck string) {
	t.Helper()
	for _, e := range (apiFixture{audit: n.audit}).auditEntries(t) {
		if e.Action == recorder.AuditExported && e.Detail["integrity"] == "failed" && e.Detail["complete"] == "false" &&
			e.Detail["failed_node"] == "village-2" && e.Detail["failed_segment"] == segment {
			if e.Detail["holder_check"] != holderCheck {
				t.Errorf("audit: holder_check %q, want %q", e.Detail["holder_check"], holderCheck)
			}
			return
		}
	}
	t.Errorf("no audit entry of the failed export naming village-2's %s", segment)
}

// fetchAll GETs u; bodyErr is the error reading the body (an aborted
// transfer).
func fetchAll(t *testing.T, u string) (resp *http.Response, body []byte, bodyErr error) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, bodyErr = io.ReadAll(resp.Body)
	return resp, body, bodyErr
}

// A camera whose first 12 s are on town-1 and next 12 s on village-2,
// exported through town-1: village-2's bytes come through as the export
// is sent, never copied to disk first, and a segment altered on its way
// breaks the transfer before any byte of it is sent, with an audit entry
// and a metric saying so.
func TestClusterExportStreamsAndChecksOtherNodesSegments(t *testing.T) {
	own := recordNode(t, "town-1", 1, t0, 300)
	other := recordNode(t, "village-2", 1, t0.Add(12*time.Second), 300)
	theirs := segmentsOf(t, other)
	rangeQ := q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(24*time.Second)))

	t.Run("intact, nothing copied to disk", func(t *testing.T) {
		v2 := watchNode(t, other)
		town := newClusterNode(t, own, v2.srv.URL)
		resp, err := http.Get(town.srv.URL + "/api/v1/cameras/" + exportCamera + "/export" + rangeQ)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, first); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		// the export is being sent: a copy of village-2's footage would
		// be in the temporary directory now
		if ents, err := os.ReadDir(town.tempDir); err != nil || len(ents) != 0 {
			t.Fatalf("temporary directory holds %d entries (%v): other nodes' segments copied before sending", len(ents), err)
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body := append(first, rest...)
		if strconv.Itoa(len(body)) != resp.Header.Get("Content-Length") {
			t.Fatalf("%d bytes, Content-Length %s", len(body), resp.Header.Get("Content-Length"))
		}
		path := filepath.Join(t.TempDir(), "x.mp4")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if p := ffprobe(t, path); p.Stderr != "" || p.Frames != 600 {
			t.Fatalf("ffprobe: %d frames, want 600: %s", p.Frames, p.Stderr)
		}
		if d, _ := v2.counts(); d != len(theirs) {
			t.Errorf("village-2 sent %d segments, the export needs its %d", d, len(theirs))
		}
	})

	for _, format := range []string{recorder.FormatMP4, recorder.FormatFMP4} {
		t.Run("altered in transit/"+format, func(t *testing.T) {
			v2 := watchNode(t, other)
			v2.alter = theirs[1].ID
			town := newClusterNode(t, own, v2.srv.URL)
			resp, body, bodyErr := fetchAll(t, town.srv.URL+"/api/v1/cameras/"+exportCamera+"/export"+rangeQ+"&format="+format)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want, _ := strconv.Atoi(resp.Header.Get("Content-Length"))
			if bodyErr == nil || len(body) >= want {
				t.Fatalf("got %d of %d bytes and read error %v: a broken export must not arrive complete", len(body), want, bodyErr)
			}
			// what was sent is the start of the intact export, and ends
			// before the altered segment's media: it and the segment
			// after it are the last media of the file
			honest := watchNode(t, other)
			_, whole, err := fetchAll(t, newClusterNode(t, own, honest.srv.URL).srv.URL+"/api/v1/cameras/"+exportCamera+"/export"+rangeQ+"&format="+format)
			if err != nil || len(whole) != want {
				t.Fatalf("intact export: %d of %d bytes: %v", len(whole), want, err)
			}
			if !bytes.Equal(body, whole[:len(body)]) {
				t.Error("the bytes sent differ from the intact export's")
			}
			if tail := mediaBytes(t, theirs[1]) + mediaBytes(t, theirs[2]); len(body) > want-tail {
				t.Errorf("sent %d bytes: past the %d before the altered segment's media", len(body), want-tail)
			}
			if got := town.mismatches(t); got != 1 {
				t.Errorf("vigil_cluster_footage_mismatches_total %v, want 1", got)
			}
			town.wantAbortAudited(t, theirs[1].ID, "intact there") // its file is fine: the link altered it
		})
	}

	// village-2's own file altered on its disk: it sends it unhashed (town-1
	// checks), town-1 aborts and asks it to check its copy, and village-2
	// then lists the segment damaged (raising recording_tampered there).
	t.Run("altered on the other node's disk", func(t *testing.T) {
		other := recordNode(t, "village-2", 1, t0.Add(12*time.Second), 300)
		theirs := segmentsOf(t, other)
		tamper(t, theirs[1])
		town := newClusterNode(t, own, watchNode(t, other).srv.URL)
		resp, body, bodyErr := fetchAll(t, town.srv.URL+"/api/v1/cameras/"+exportCamera+"/export"+rangeQ)
		if want := resp.Header.Get("Content-Length"); resp.StatusCode != 200 || bodyErr == nil || strconv.Itoa(len(body)) == want {
			t.Fatalf("status %d, %d of %s bytes, read error %v: want a broken transfer", resp.StatusCode, len(body), want, bodyErr)
		}
		town.wantAbortAudited(t, theirs[1].ID, "damaged there")
		if got := segmentsOf(t, other)[1]; got.Damage == "" {
			t.Errorf("village-2 does not list its altered segment %s damaged", got.ID)
		}
	})

	t.Run("manifest reads no media", func(t *testing.T) {
		v2 := watchNode(t, other)
		town := newClusterNode(t, own, v2.srv.URL)
		resp, body, err := fetchAll(t, town.srv.URL+"/api/v1/cameras/"+exportCamera+"/export/manifest"+rangeQ)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d %s: %v", resp.StatusCode, body, err)
		}
		for _, s := range theirs {
			if !strings.Contains(string(body), `"sha256":"`+s.SHA256+`"`) {
				t.Errorf("manifest lacks village-2's %s with its listed sha256", s.ID)
			}
		}
		if !strings.Contains(string(body), `"frames":600`) {
			t.Errorf("manifest: want 600 frames: %s", body)
		}
		if d, b := v2.counts(); d != 0 || b == 0 {
			t.Errorf("village-2 was asked for %d segments and %d boxes: a manifest needs boxes only", d, b)
		}
	})
}

// Damage in a mixed export: this node's damaged segment is the same 409
// as on a single node; one whose time a higher epoch of another node
// covers does not block the export; one only partly covered does.
func TestClusterExportDamagedSegments(t *testing.T) {
	cases := []struct {
		name        string
		theirStart  time.Duration // village-2's recording, epoch 2
		theirFrames int
		ownEpoch    int64
		want        int
	}{
		{"own damage, needed", 12 * time.Second, 300, 2, 409},
		{"own damage, superseded by a higher epoch", 0, 600, 1, 200},
		{"own damage, partly covered by a higher epoch", 6 * time.Second, 350, 1, 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			own := recordNode(t, "town-1", tc.ownEpoch, t0, 300)
			other := recordNode(t, "village-2", 2, t0.Add(tc.theirStart), tc.theirFrames)
			mine := segmentsOf(t, own)
			tamper(t, mine[1])
			if res, err := own.VerifyPass(t.Context()); err != nil || len(res.Damaged) != 1 {
				t.Fatalf("verify: %+v %v", res, err)
			}
			town := newClusterNode(t, own, serveNode(t, other.Catalog()).URL)
			resp, body, err := fetchAll(t, town.srv.URL+"/api/v1/cameras/"+exportCamera+"/export"+
				q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(24*time.Second))))
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d %.200s, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == 409 && !strings.Contains(errorCode(t, body), "integrity: segment "+mine[1].ID) {
				t.Errorf("error %s, want integrity naming %s", body, mine[1].ID)
			}
		})
	}
}

// Only another node may ask for a segment unhashed: a user's download
// that says it checks the hash itself is still checked, and a tampered
// segment's download still breaks off.
func TestAskerChecksHeaderOnlyFromNodes(t *testing.T) {
	f := newIntegrityFixture(t, recorder.Options{})
	tamper(t, f.segs[1])
	resp, body, bodyErr := f.fetch(t, "/api/v1/cameras/"+exportCamera+"/recordings/"+f.segs[1].ID, HeaderAskerChecks, "sha256")
	if resp != nil && resp.StatusCode == 200 && bodyErr == nil && int64(len(body)) == f.segs[1].Bytes {
		t.Fatal("a tampered segment was sent whole to a user who said they check it")
	}
	if f.tamperedAlerts() != 1 {
		t.Errorf("%d recording_tampered alerts, want 1", f.tamperedAlerts())
	}
}
