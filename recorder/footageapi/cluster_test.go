package footageapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/cluster"
	"vigil/recorder"
)

// peersAt is the rest of a cluster as a node asks it in production
// (cluster.Peers): the other nodes by ID at their URLs.
func peersAt(t *testing.T, self string, urls map[string]string) *cluster.Peers {
	t.Helper()
	var nodes nodeList
	for id, u := range urls {
		nodes = append(nodes, cluster.Node{ID: id, AdvertiseURL: u})
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p, err := cluster.NewPeers(cluster.PeersOptions{Nodes: nodes, Self: self, Token: "cluster-token", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type nodeList []cluster.Node

func (l nodeList) List(context.Context) ([]cluster.Node, error) { return l, nil }

// serveNode serves a node's own footage (every request local).
func serveNode(t *testing.T, cat *recorder.Catalog) *httptest.Server {
	t.Helper()
	api, err := New(Options{Catalog: cat, Local: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// A node that lists a hash its bytes do not have: the export that needs
// its segment breaks off before any byte of it is sent, so the client
// never holds a complete file, and the node asking marks nothing of its
// own damaged.
func TestExportRefusesSegmentNotMatchingItsListedHash(t *testing.T) {
	other := recordIntegrityFixture(t, recorder.Options{Node: "village-2"})
	honest := serveNode(t, other.r.Catalog())
	// village-2 as seen through a link that alters its listing's hashes
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(honest.URL + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if i := strings.Index(string(b), `"sha256":"`); i >= 0 && strings.HasSuffix(r.URL.Path, "/recordings") {
			i += len(`"sha256":"`)
			b[i] ^= 1 // another hex digit: 0↔1, a↔`… still 64 characters
			if b[i] == '`' {
				b[i] = 'b'
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(liar.Close)
	for _, tc := range []struct {
		name   string
		url    string
		broken bool
	}{
		{"honest", honest.URL, false},
		{"hash altered", liar.URL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := recordWithGap(t)
			api, err := New(Options{Catalog: rec.catalog, Peers: peersAt(t, "town-1", map[string]string{"village-2": tc.url}), TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			api.Register(mux, nil)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			// both nodes recorded t0–12 s: village-2's epoch 0 equals
			// ours, so the later-starting wins per segment; any export
			// of the range needs village-2's bytes
			resp, err := http.Get(srv.URL + "/api/v1/cameras/" + exportCamera + "/export" +
				q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(20*time.Second))))
			if err != nil {
				t.Fatal(err)
			}
			b, bodyErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, b)
			}
			complete := bodyErr == nil && strconv.Itoa(len(b)) == resp.Header.Get("Content-Length")
			if complete == tc.broken {
				t.Fatalf("%d bytes of %s, read error %v; want a broken transfer: %v", len(b), resp.Header.Get("Content-Length"), bodyErr, tc.broken)
			}
			if segs, _, _ := rec.catalog.List(exportCamera, t0, t0.Add(time.Minute)); slices.ContainsFunc(segs, func(s recorder.Segment) bool { return s.Damage != "" }) {
				t.Error("a segment of this node is marked damaged")
			}
		})
	}
}

// What another node lists is checked before it names a file or a URL.
func TestParseRemoteSegmentsRefusesMalformed(t *testing.T) {
	good := segmentJSON{ID: "2026-11-26T21-05-00.000Z", Start: "2026-11-26T21:05:00.000Z", End: "2026-11-26T21:05:04.000Z",
		Bytes: 10, SHA256: strings.Repeat("ab", 32), Node: "village-2", Epoch: 3}
	for _, tc := range []struct {
		name   string
		camera string
		edit   func(*segmentJSON)
		want   string // "" accepted
	}{
		{"good", exportCamera, func(*segmentJSON) {}, ""},
		{"other camera", "gate", func(*segmentJSON) {}, "camera"},
		{"path in id", exportCamera, func(s *segmentJSON) { s.ID = "../../etc/passwd" }, "invalid id"},
		{"bad time", exportCamera, func(s *segmentJSON) { s.Start = "yesterday" }, "RFC 3339"},
		{"backwards", exportCamera, func(s *segmentJSON) { s.End = "2026-11-26T21:04:00.000Z" }, "ends before"},
		{"short hash", exportCamera, func(s *segmentJSON) { s.SHA256 = "abc" }, "sha256"},
		{"another node's", exportCamera, func(s *segmentJSON) { s.Node = "town-1" }, "not by the node"},
		{"negative size", exportCamera, func(s *segmentJSON) { s.Bytes = -1 }, "negative size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.edit(&s)
			got, err := parseRemoteSegments("village-2", tc.camera, recordingsJSON{Camera: exportCamera, Segments: []segmentJSON{s}})
			switch {
			case tc.want == "" && (err != nil || len(got) != 1 || got[0].Node != "village-2" || got[0].Epoch != 3):
				t.Fatalf("%+v %v", got, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "village-2")):
				t.Fatalf("error %v, want one naming village-2 and %q", err, tc.want)
			}
		})
	}
}

func FuzzParseRemoteListing(f *testing.F) {
	f.Add(`{"camera":"hall-entrance","segments":[{"id":"2026-11-26T21-05-00.000Z","start":"2026-11-26T21:05:00.000Z","end":"2026-11-26T21:05:04.000Z","bytes":1,"sha256":"` + strings.Repeat("0", 64) + `"}]}`)
	f.Add(`{"camera":"hall-entrance","segments":[{"id":"x","damaged":true}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var l recordingsJSON
		if json.Unmarshal([]byte(body), &l) != nil {
			return
		}
		segs, err := parseRemoteSegments("village-2", exportCamera, l)
		if err != nil {
			return
		}
		for _, s := range segs {
			if _, _, _, err := recorder.ParseSegmentID(s.ID); err != nil || s.Node != "village-2" || s.End.Before(s.Start) || s.Bytes < 0 {
				t.Fatalf("accepted %+v", s)
			}
		}
	})
}

// closedURL is a loopback URL nothing listens on: a node that is down.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// A node that does not answer is one answer on every route that needs it,
// the one the live view gives too: 503 node_unreachable naming it. A
// listing names it unreachable.
func TestNodeNotAnsweringIs503(t *testing.T) {
	rec := recordWithGap(t)
	api, err := New(Options{Catalog: rec.catalog, Peers: peersAt(t, "town-1", map[string]string{"village-2": closedURL(t)}), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(pq string) (int, string) {
		resp, err := http.Get(srv.URL + pq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	segs, _, err := rec.catalog.List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil || len(segs) == 0 {
		t.Fatal(err)
	}
	code, body := get("/api/v1/cameras/" + exportCamera + "/recordings/" + segs[0].ID + "?node=village-2")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"node_unreachable"`) || !strings.Contains(body, "village-2") {
		t.Errorf("segment download from a node that does not answer: %d %s, want 503 node_unreachable naming it", code, body)
	}
	code, body = get("/api/v1/cameras/" + exportCamera + "/recordings" + q("start", recorder.FormatTime(t0), "end", recorder.FormatTime(t0.Add(time.Minute))))
	var l struct{ Unreachable []string }
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || len(l.Unreachable) != 1 || l.Unreachable[0] != "village-2" {
		t.Errorf("listing: %d %s, want village-2 unreachable", code, body)
	}
}
