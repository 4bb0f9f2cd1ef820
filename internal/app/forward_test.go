package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/cluster"
	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/internal/testutil"
	"vigil/live/whepclient"
	"vigil/recorder"
)

const clusterToken = "cluster-token-for-tests-3c9e"

// freeListen is a loopback address with a port free a moment ago: a node's
// advertise URL must be known before it starts.
func freeListen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// clusterNodeConfig is a node of a cluster on the Redis at redisAddr,
// advertising its own listen address, with cameras.yaml cams.
func clusterNodeConfig(t *testing.T, redisAddr, id, token, cams string) *configs.Config {
	t.Helper()
	dir := t.TempDir()
	listen := freeListen(t)
	vigil := `listen: ` + listen + `
node: {id: ` + id + `, zone: town, advertise_url: "http://` + listen + `"}
cluster: {token: "` + token + `"}
storage: {dir: ./rec, segment: 2s, part: 500ms, min_free_bytes: 0}
journal: {backend: redis, path: ./journal.db, redis: {addr: "` + redisAddr + `"}}
live: {udp_port: 0}
auth:
  tokens:
    - {name: desk-1, role: desk, sha256: ` + auth.HashToken(deskToken) + `}
    - {name: inv-1, role: investigator, sha256: ` + auth.HashToken(invToken) + `}
    - {name: ops, role: admin, sha256: ` + auth.HashToken(adminToken) + `}
`
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte(vigil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cams), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// recordAsNode writes frames of camera from start into dir as node would
// have recorded them under a lease of epoch: 4-s segments, closed.
func recordAsNode(t *testing.T, dir, node string, epoch int64, camera string, start time.Time, frames int) []recorder.Segment {
	t.Helper()
	clip, err := camsim.LoadClip(filepath.Join("..", "camsim", "testdata", "hall.h264"), 25)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(recorder.Options{Dir: dir, Node: node, Segment: 4 * time.Second, Part: time.Second, Fsync: recorder.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Camera(camera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.SetEpoch(epoch)
	w.OnStream(media.Stream{Camera: camera, Session: 1, Started: start,
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS, Width: clip.Width, Height: clip.Height}})
	for n := range frames {
		fr := clip.Frames[n%len(clip.Frames)]
		dts := time.Duration(n) * clip.FrameDuration()
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, PTS: dts, DTS: dts, Key: fr.Key, Payload: fr.NALUs, Wall: start.Add(dts)})
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(camera, start.Add(-time.Minute), start.Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("node %s recorded %d segments: %v", node, len(segs), err)
	}
	return segs
}

// startNode runs an App until the test ends or stop is called; holders,
// when set, stands in for the camera leases.
func startNode(t *testing.T, cfg *configs.Config, holders HolderLookup) (a *App, stop func()) {
	t.Helper()
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if holders != nil {
		a.holders = holders
	}
	return a, runStoppableApp(t, a)
}

// fixedHolder says every camera is held by node (leases are not merged
// yet; the real lookup is cluster.Leases).
type fixedHolder string

func (h fixedHolder) Holder(context.Context, string) (string, int64, error) { return string(h), 7, nil }

type listingJSON struct {
	Segments []struct {
		ID         string `json:"id"`
		Start      string `json:"start"`
		End        string `json:"end"`
		SHA256     string `json:"sha256"`
		Bytes      int64  `json:"bytes"`
		URL        string `json:"url"`
		Node       string `json:"node"`
		Epoch      int64  `json:"epoch"`
		Superseded bool   `json:"superseded"`
	} `json:"segments"`
	Gaps        []struct{ Start, End string } `json:"gaps"`
	Unreachable []string                      `json:"unreachable"`
}

func getWith(t *testing.T, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
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
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, b
}

func rangeQuery(start, end time.Time) string {
	return "?" + url.Values{"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}.Encode()
}

// TestFootageFromAnyNode: three nodes on one Redis, each with footage of
// one camera the others do not have (a failover from town-1 to village-2
// with a 2-s overlap, then village-3). Any node lists, downloads and
// exports all of it; a stopped node is named and its footage is a gap.
func TestFootageFromAnyNode(t *testing.T) {
	rd := testutil.StartRedis(t)
	const cam = "hall-entrance"
	cams := "cameras:\n  - {id: " + cam + ", name: 入口, site: hall, url: \"rtsp://127.0.0.1:1/cam/0\", record: false}\n"
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	cfgs := map[string]*configs.Config{}
	segs := map[string][]recorder.Segment{}
	for _, n := range []struct {
		id     string
		epoch  int64
		from   time.Duration
		frames int
	}{
		{"town-1", 1, 0, 300},                   // 0–12 s
		{"village-2", 2, 10 * time.Second, 250}, // 10–20 s: overlaps town-1's last segment
		{"village-3", 3, 30 * time.Second, 200}, // 30–38 s
	} {
		cfgs[n.id] = clusterNodeConfig(t, rd.Addr(), n.id, clusterToken, cams)
		segs[n.id] = recordAsNode(t, cfgs[n.id].Storage.Dir, n.id, n.epoch, cam, t0.Add(n.from), n.frames)
	}
	town, _ := startNode(t, cfgs["town-1"], nil)
	village2, _ := startNode(t, cfgs["village-2"], nil)
	village3, stop3 := startNode(t, cfgs["village-3"], nil)
	waitFor(t, 10*time.Second, "three live nodes", func() bool {
		_, body := call(t, "GET", town.URL()+"/api/v1/nodes", adminToken, "")
		return strings.Count(body, `"advertise_url"`) == 3
	})
	auth := []string{"Authorization", "Bearer " + invToken}

	t.Run("listing", func(t *testing.T) {
		resp, body := getWith(t, village3.URL()+"/api/v1/cameras/"+cam+"/recordings"+rangeQuery(t0, t0.Add(40*time.Second)), auth...)
		var l listingJSON
		if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		perNode := map[string]int{}
		for _, s := range l.Segments {
			perNode[s.Node]++
			if remote := s.Node != "village-3"; remote != strings.HasSuffix(s.URL, "?node="+s.Node) {
				t.Errorf("segment %s of %s: url %s", s.ID, s.Node, s.URL)
			}
		}
		for id, want := range segs {
			if perNode[id] != len(want) {
				t.Errorf("node %s: %d segments listed, recorded %d", id, perNode[id], len(want))
			}
		}
		// town-1's last segment (8–12 s, epoch 1) overlaps village-2's
		// first (10 s, epoch 2): listed, superseded
		last := segs["town-1"][len(segs["town-1"])-1]
		for _, s := range l.Segments {
			if want := s.Node == "town-1" && s.ID == last.ID; s.Superseded != want {
				t.Errorf("segment %s of %s: superseded %v, want %v", s.ID, s.Node, s.Superseded, want)
			}
		}
		// between village-2 and village-3, and after village-3 (the
		// camera is not recording now) as a single node lists it
		v2, v3 := segs["village-2"], segs["village-3"]
		if len(l.Gaps) != 2 || l.Gaps[0].Start != recorder.FormatTime(v2[len(v2)-1].End) || l.Gaps[0].End != recorder.FormatTime(v3[0].Start) ||
			l.Gaps[1].Start != recorder.FormatTime(v3[len(v3)-1].End) || l.Gaps[1].End != recorder.FormatTime(t0.Add(40*time.Second)) {
			t.Errorf("gaps %+v, want village-2 to village-3 and village-3 to the end", l.Gaps)
		}
		if l.Unreachable == nil || len(l.Unreachable) != 0 {
			t.Errorf("unreachable %v, want []", l.Unreachable)
		}
	})

	t.Run("segment download through another node keeps Range", func(t *testing.T) {
		s := segs["village-2"][0]
		file, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		u := town.URL() + "/api/v1/cameras/" + cam + "/recordings/" + s.ID + "?node=village-2"
		resp, body := getWith(t, u, append(auth, "Range", "bytes=100-1099")...)
		if resp.StatusCode != 206 || !bytes.Equal(body, file[100:1100]) || resp.Header.Get("Content-Range") != "bytes 100-1099/"+strconv.Itoa(len(file)) {
			t.Fatalf("range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
		resp, body = getWith(t, u, auth...)
		if resp.StatusCode != 200 || !bytes.Equal(body, file) || resp.Header.Get("X-Vigil-SHA256") != s.SHA256 {
			t.Fatalf("whole: %d, %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("export across the failover is one file", func(t *testing.T) {
		q := rangeQuery(t0, t0.Add(20*time.Second))
		for _, format := range []string{"mp4", "fmp4"} {
			resp, body := getWith(t, village3.URL()+"/api/v1/cameras/"+cam+"/export"+q+"&format="+format, auth...)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", format, resp.StatusCode, body)
			}
			path := filepath.Join(t.TempDir(), "x.mp4")
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
			frames, dur := probeFile(t, path)
			// town-1's 0–10 s (250 frames, the overlap taken from
			// village-2) and village-2's 10–20 s (250)
			if frames != 500 || dur < 19*time.Second || dur > 21*time.Second {
				t.Errorf("%s: %d frames over %v, want 500 over 20 s", format, frames, dur)
			}
		}
		resp, body := getWith(t, village3.URL()+"/api/v1/cameras/"+cam+"/export/manifest"+q, auth...)
		var m struct {
			Segments []struct {
				ID, SHA256, Node string
			}
			Unreachable []string
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("manifest: %d %s", resp.StatusCode, body)
		}
		nodes := map[string]bool{}
		for _, s := range m.Segments {
			nodes[s.Node] = true
			var path string
			for _, r := range segs[s.Node] {
				if r.ID == s.ID {
					path = r.Path
				}
			}
			if path == "" || fileHash(t, path) != s.SHA256 {
				t.Errorf("manifest segment %s of node %q: sha256 %s is not its file's", s.ID, s.Node, s.SHA256)
			}
		}
		if !nodes["town-1"] || !nodes["village-2"] || len(nodes) != 2 {
			t.Errorf("manifest names nodes %v, want town-1 and village-2", nodes)
		}
	})

	t.Run("export all on one other node is passed through", func(t *testing.T) {
		resp, body := getWith(t, town.URL()+"/api/v1/cameras/"+cam+"/export"+rangeQuery(t0.Add(30*time.Second), t0.Add(38*time.Second)), auth...)
		if resp.StatusCode != 200 || resp.Header.Get("X-Vigil-Node") != "village-3" {
			t.Fatalf("%d from %q: %s", resp.StatusCode, resp.Header.Get("X-Vigil-Node"), body)
		}
		path := filepath.Join(t.TempDir(), "x.mp4")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if frames, _ := probeFile(t, path); frames != 200 {
			t.Errorf("%d frames, want village-3's 200", frames)
		}
	})

	t.Run("snapshot at a time another node recorded", func(t *testing.T) {
		if !village3.Snapshots().Available() {
			t.Fatal("ffmpeg is required (Debian package ffmpeg)")
		}
		at := t0.Add(15 * time.Second).Format(time.RFC3339Nano)
		code, ct, b := getJPEG(t, village3.URL()+"/api/v1/cameras/"+cam+"/snapshot?at="+url.QueryEscape(at), invToken)
		if code != 200 || ct != "image/jpeg" {
			t.Fatalf("%d %s: %.200s", code, ct, b)
		}
		// the role is checked where the investigator asked
		if code, _, _ := getJPEG(t, village3.URL()+"/api/v1/cameras/"+cam+"/snapshot?at="+url.QueryEscape(at), deskToken); code != 403 {
			t.Errorf("desk: %d, want 403", code)
		}
		// village-2 took the picture from its footage: it audits the
		// export under the investigator's name, through village-3.
		const want = "inv-1 via node:village-3"
		waitFor(t, 10*time.Second, "the snapshot in the audit log", func() bool {
			code, body := call(t, "GET", village2.URL()+"/api/v1/audit?limit=1000", adminToken, "")
			if code != 200 {
				return false
			}
			var page struct {
				Records []struct{ By, Action, Object string }
			}
			if err := json.Unmarshal([]byte(body), &page); err != nil {
				t.Fatalf("audit: %v", err)
			}
			for _, r := range page.Records {
				if r.Action == "exported" && r.Object == "camera/"+cam+"/snapshot" {
					if r.By != want {
						t.Fatalf("snapshot audited as %q, want %q", r.By, want)
					}
					return true
				}
			}
			return false
		})
		// A forwarded-for name the audit log must not take (too long) is
		// refused.
		req, _ := http.NewRequest("GET", village2.URL()+"/api/v1/cameras/"+cam+"/snapshot?at="+url.QueryEscape(at), nil)
		req.Header.Set("Authorization", "Bearer "+clusterToken)
		req.Header.Set(cluster.NodeHeader, "town-1")
		req.Header.Set(cluster.ForHeader, strings.Repeat("x", 129))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("a 129-byte %s: %d, want 400", cluster.ForHeader, resp.StatusCode)
		}
	})

	t.Run("cluster token", func(t *testing.T) {
		list := town.URL() + "/api/v1/cameras/" + cam + "/recordings" + rangeQuery(t0, t0.Add(40*time.Second))
		for _, tc := range []struct {
			name, url, token, node string
			want                   int
		}{
			{"wrong token", list, "not-the-cluster-token", "village-2", 401},
			{"no node named", list, clusterToken, "", 401},
			{"not a footage route", town.URL() + "/api/v1/alerts", clusterToken, "village-2", 401},
			{"holds are for people", town.URL() + "/api/v1/holds", clusterToken, "village-2", 401},
			{"right token", list, clusterToken, "village-2", 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := getWith(t, tc.url, "Authorization", "Bearer "+tc.token, "X-Vigil-Node", tc.node)
				if resp.StatusCode != tc.want {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
				}
				if tc.want != 200 {
					return
				}
				// another node is answered from this node's storage only
				var l listingJSON
				if err := json.Unmarshal(body, &l); err != nil {
					t.Fatal(err)
				}
				if len(l.Segments) != len(segs["town-1"]) || l.Unreachable != nil {
					t.Errorf("answered %d segments, unreachable %v: want town-1's %d only", len(l.Segments), l.Unreachable, len(segs["town-1"]))
				}
			})
		}
	})

	t.Run("a stopped node is named and its footage a gap", func(t *testing.T) {
		stop3()
		resp, body := getWith(t, village2.URL()+"/api/v1/cameras/"+cam+"/recordings"+rangeQuery(t0, t0.Add(40*time.Second)), auth...)
		var l listingJSON
		if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if len(l.Unreachable) != 1 || l.Unreachable[0] != "village-3" {
			t.Fatalf("unreachable %v, want [village-3]", l.Unreachable)
		}
		end := recorder.FormatTime(segs["village-2"][len(segs["village-2"])-1].End)
		if n := len(l.Gaps); n == 0 || l.Gaps[n-1].Start != end || l.Gaps[n-1].End < recorder.FormatTime(t0.Add(40*time.Second)) {
			t.Errorf("gaps %+v: want village-3's span (from %s to the range's end) a gap", l.Gaps, end)
		}
		for _, s := range l.Segments {
			if s.Node == "village-3" {
				t.Errorf("segment %s of the stopped node listed", s.ID)
			}
		}
	})
}

// TestWHEPForwardedToHolder: an offer to a node that does not hold the
// camera gets the holder's answer; media flows from the holder, and the
// DELETE of the Location reaches it. An unreachable holder is a clear 503.
func TestWHEPForwardedToHolder(t *testing.T) {
	rd := testutil.StartRedis(t)
	sim := startCamsim(t, "cam/gate")
	cams := "cameras:\n  - {id: gate, name: gate, site: key-site, url: \"" + sim.URL("cam/gate") + "\", transport: tcp, record: false}\n"
	holder, _ := startNode(t, clusterNodeConfig(t, rd.Addr(), "village-2", clusterToken, cams), nil)
	asked, _ := startNode(t, clusterNodeConfig(t, rd.Addr(), "town-1", clusterToken, cams), fixedHolder("village-2"))
	waitFor(t, 10*time.Second, "gate online on the holder", func() bool { return cameraStatus(t, holder, "gate") == "online" })
	waitFor(t, 10*time.Second, "two live nodes", func() bool {
		_, body := call(t, "GET", asked.URL()+"/api/v1/nodes", adminToken, "")
		return strings.Count(body, `"advertise_url"`) == 2
	})

	s, err := whepclient.Dial(t.Context(), asked.URL()+"/api/v1/cameras/gate/whep", whepclient.Options{Token: deskToken})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "25 frames at the viewer", func() bool { return s.Stats().Frames >= 25 })
	if h, a := holder.viewers.Count(), asked.viewers.Count(); h != 1 || a != 0 {
		t.Errorf("viewers: %d on the holder, %d on the node asked; want 1 and 0", h, a)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("DELETE through the node asked: %v", err)
	}
	if n := holder.viewers.Count(); n != 0 {
		t.Errorf("%d viewers on the holder after DELETE", n)
	}

	lost, _ := startNode(t, clusterNodeConfig(t, rd.Addr(), "town-2", clusterToken, cams), fixedHolder("village-9"))
	code, body := call(t, "POST", lost.URL()+"/api/v1/cameras/gate/whep", deskToken, "v=0\r\n")
	if code != 503 || !strings.Contains(body, "village-9") {
		t.Errorf("holder unknown: %d %s, want 503 naming it", code, body)
	}
}

func probeFile(t *testing.T, path string) (frames int, dur time.Duration) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_frames",
		"-show_entries", "stream=nb_read_frames,duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe is required and must read %s: %v", path, err)
	}
	var res struct {
		Streams []struct {
			Frames   string `json:"nb_read_frames"`
			Duration string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v %s", path, err, out)
	}
	frames, _ = strconv.Atoi(res.Streams[0].Frames)
	secs, _ := strconv.ParseFloat(res.Streams[0].Duration, 64)
	return frames, time.Duration(secs * float64(time.Second))
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestSingleNodeFootageUnchanged: the embedded single node lists as it
// always did (no node, epoch, superseded or unreachable fields) and knows
// no cluster token.
func TestSingleNodeFootageUnchanged(t *testing.T) {
	cfg := writeConfig(t, "")
	segs := recordClosedSegments(t, cfg.Storage.Dir, "hall-entrance")
	a := startApp(t, cfg, io.Discard)
	q := rangeQuery(segs[0].Start, segs[len(segs)-1].End)
	resp, body := getWith(t, a.URL()+"/api/v1/cameras/hall-entrance/recordings"+q, "Authorization", "Bearer "+invToken)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, field := range []string{`"unreachable"`, `"node"`, `"epoch"`, `"superseded"`, `?node=`} {
		if bytes.Contains(body, []byte(field)) {
			t.Errorf("single node's listing has %s: %s", field, body)
		}
	}
	resp, _ = getWith(t, a.URL()+"/api/v1/cameras/hall-entrance/recordings"+q, "Authorization", "Bearer "+clusterToken, "X-Vigil-Node", "town-1")
	if resp.StatusCode != 401 {
		t.Errorf("a cluster token on a single node: %d, want 401", resp.StatusCode)
	}
}

// GET /api/v1/cameras on any node shows every camera as its holder sees it:
// the desk on one node sees the cameras another node records online, with
// the holder named, not "disabled" (what the node's own ingest says of a
// camera it does not pull).
func TestCameraStatusFromHolders(t *testing.T) {
	rd := testutil.StartRedis(t)
	sim := startCamsim(t, "cam/c0", "cam/c1")
	cams := "cameras:\n" +
		"  - {id: c0, name: c0, site: hall, url: \"" + sim.URL("cam/c0") + "\", transport: tcp}\n" +
		"  - {id: c1, name: c1, site: hall, url: \"" + sim.URL("cam/c1") + "\", transport: tcp}\n" +
		"  - {id: c2, name: c2, site: hall, url: \"rtsp://127.0.0.1:1/c2\", enabled: false}\n"
	a, _ := startNode(t, clusterNodeConfig(t, rd.Addr(), "town-1", clusterToken, cams), nil)
	b, _ := startNode(t, clusterNodeConfig(t, rd.Addr(), "village-2", clusterToken, cams), nil)
	held := func(x *App) []string { h, _ := x.heldAndRecording(); return h }
	waitFor(t, 30*time.Second, "one camera held by each node", func() bool {
		return len(held(a)) == 1 && len(held(b)) == 1
	})
	type view struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		Node        string `json:"node"`
		Unreachable bool   `json:"unreachable"`
	}
	for _, x := range []*App{a, b} {
		var got []view
		waitFor(t, 20*time.Second, "both cameras online through "+x.nodeID, func() bool {
			code, body := call(t, "GET", x.URL()+"/api/v1/cameras", deskToken, "")
			var l struct{ Cameras []view }
			if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
				return false
			}
			got = l.Cameras
			online := 0
			for _, c := range got {
				if c.Status == "online" {
					online++
				}
			}
			return online == 2
		})
		for _, c := range got {
			if c.ID == "c2" {
				continue // disabled: no holder
			}
			want := a.nodeID
			if slices.Contains(held(b), c.ID) {
				want = b.nodeID
			}
			if c.Node != want || c.Unreachable {
				t.Errorf("through %s: camera %+v, want held by %s", x.nodeID, c, want)
			}
			// one camera shows as in the list: its holder's view
			code, body := call(t, "GET", x.URL()+"/api/v1/cameras/"+c.ID, deskToken, "")
			var one view
			if code != 200 || json.Unmarshal([]byte(body), &one) != nil || one.ID != c.ID || one.Status != "online" || one.Node != want || one.Unreachable {
				t.Errorf("GET /cameras/%s through %s: %d %s, want online, held by %s", c.ID, x.nodeID, code, body, want)
			}
		}
	}
	// Another node's request gets the node's own view: no recursion.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", a.URL()+"/api/v1/cameras", nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	req.Header.Set(cluster.NodeHeader, b.nodeID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var own struct{ Cameras []view }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&own) != nil {
		t.Fatalf("a node's request: %d", resp.StatusCode)
	}
	for _, c := range own.Cameras {
		if mine := slices.Contains(held(a), c.ID); mine != (c.Status != "disabled") {
			t.Errorf("a node's request got camera %+v; want only %s's own cameras pulled", c, a.nodeID)
		}
	}
	other := held(b)[0]
	req, _ = http.NewRequestWithContext(t.Context(), "GET", a.URL()+"/api/v1/cameras/"+other, nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	req.Header.Set(cluster.NodeHeader, b.nodeID)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var one view
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&one) != nil || one.Status != "disabled" || one.Node != "" {
		t.Errorf("a node's request for camera %s: %d %+v, want %s's own view (disabled, no node)", other, resp.StatusCode, one, a.nodeID)
	}

	// A holder that does not answer: the camera as this node knows it,
	// the holder named and marked unreachable. village-9 registers as
	// holding the disabled c2 at an address nothing listens on.
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	ghost, _ := json.Marshal(cluster.Node{ID: "village-9", Zone: "elsewhere", AdvertiseURL: "http://" + freeListen(t), Cameras: []string{"c2"}})
	if err := rdb.Set(t.Context(), "vigil:node:village-9", ghost, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(t.Context(), "vigil:nodes", "village-9").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "c2 named held by village-9, unreachable", func() bool {
		code, body := call(t, "GET", a.URL()+"/api/v1/cameras/c2", deskToken, "")
		return code == 200 && json.Unmarshal([]byte(body), &one) == nil && one.Node == "village-9" && one.Unreachable && one.Status == "disabled"
	})
}

// countingHolder names node as every camera's holder and counts the
// lookups (each one a Redis read with the real leases).
type countingHolder struct {
	node string
	n    atomic.Int64
}

func (h *countingHolder) Holder(context.Context, string) (string, int64, error) {
	h.n.Add(1)
	return h.node, 1, nil
}

type nodeList []cluster.Node

func (l nodeList) List(context.Context) ([]cluster.Node, error) { return l, nil }

// A live view or live snapshot of a camera this node holds is answered
// here from its own lease state; only a camera it does not hold costs a
// look-up of its holder.
func TestHolderAskedOnlyForCamerasHeldElsewhere(t *testing.T) {
	cfg := configs.Default()
	cfg.Journal.Backend = configs.BackendRedis
	peers, err := cluster.NewPeers(cluster.PeersOptions{Nodes: nodeList{}, Self: "town-1", Token: clusterToken})
	if err != nil {
		t.Fatal(err)
	}
	holders := &countingHolder{node: "village-2"}
	a := &App{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), nodeID: "town-1", peers: peers, holders: holders}
	a.held.set("gate", 3)
	r := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/cameras/gate/whep", nil)
	for range 3 {
		if node := a.holderElsewhere(r, "gate"); node != "" {
			t.Fatalf("own camera: answered by %q, want here", node)
		}
	}
	if n := holders.n.Load(); n != 0 {
		t.Errorf("own camera: holder looked up %d times, want none", n)
	}
	if node := a.holderElsewhere(r, "hall"); node != "village-2" || holders.n.Load() != 1 {
		t.Errorf("camera held elsewhere: %q after %d look-ups, want village-2 after 1", node, holders.n.Load())
	}
}
