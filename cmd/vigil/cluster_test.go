package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/internal/auth"
	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

const (
	clusterAdmin = "cluster-admin-token"
	clusterToken = "cluster-node-token"
)

// clusterNode is one vigil serve child process of the cluster test.
type clusterNode struct {
	id     string
	dir    string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *testutil.Buffer
}

// writeClusterNode writes the configuration of node id into its own
// directory: the Redis journal at redisAddr, short segments, the cameras
// file every node shares, and the cluster token with a fixed port as the
// advertise URL, so that the nodes ask each other for footage and a node
// started again comes back at the same URL.
func writeClusterNode(t *testing.T, id, redisAddr, cameras string) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	vigil := `listen: ` + listen + `
storage: {dir: ./rec, segment: 2s, part: 500ms, min_free_bytes: 0}
journal: {backend: redis, path: ./journal.db, redis: {addr: "` + redisAddr + `"}}
auth:
  tokens:
    - {name: ops, role: admin, sha256: ` + auth.HashToken(clusterAdmin) + `}
node: {id: ` + id + `, zone: town, advertise_url: "http://` + listen + `"}
cluster: {token: ` + clusterToken + `}
live: {udp_port: 0}
cameras_file: cameras.yaml
`
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte(vigil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cameras), 0o600); err != nil {
		t.Fatal(err)
	}
	return &clusterNode{id: id, dir: dir}
}

// start runs the node as `vigil serve` and waits for its URL.
func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	n.cmd = vigilCommand(t, n.dir, "serve", "-config", "vigil.yaml")
	n.logs = &testutil.Buffer{}
	n.cmd.Stderr = n.logs
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	cmd, exited := n.cmd, n.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := bufio.NewScanner(stdout)
	n.url = ""
	for n.url == "" && lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "vigil listening on "); ok {
			n.url = u
		}
	}
	if n.url == "" {
		t.Fatalf("node %s printed no URL; stderr:\n%s", n.id, n.logs.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
}

func (n *clusterNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop ends the node with SIGTERM and waits for it.
func (n *clusterNode) stop(t *testing.T) {
	t.Helper()
	n.signal(t, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s did not stop within 20 s of SIGTERM", n.id)
	}
}

type nodeView struct {
	ID        string   `json:"id"`
	Cameras   []string `json:"cameras"`
	Recording []string `json:"recording"`
}

// nodes is GET /api/v1/nodes on n; nil when it does not answer.
func (n *clusterNode) nodes(t *testing.T) map[string]nodeView {
	var l struct{ Nodes []nodeView }
	if get(t, n.url+"/api/v1/nodes", clusterAdmin, &l) != 200 {
		return nil
	}
	out := map[string]nodeView{}
	for _, v := range l.Nodes {
		out[v.ID] = v
	}
	return out
}

// recorders maps each camera to the live nodes that say they record it.
func recorders(view map[string]nodeView) map[string][]string {
	out := map[string][]string{}
	for _, v := range view {
		for _, c := range v.Recording {
			out[c] = append(out[c], v.ID)
		}
	}
	return out
}

// waitUntil polls cond every 250 ms until it holds or within passed.
func waitUntil(t *testing.T, within time.Duration, what string, nodes []*clusterNode, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, n := range nodes {
				fmt.Fprintf(&logs, "--- %s\n%s", n.id, tail(n.logs.String(), 40))
			}
			t.Fatalf("within %s: %s\n%s", within, what, logs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// span is a recorded stretch of one camera on one node, from the index.
type span struct {
	start, end time.Time
	node       string
	epoch      int64
}

// indexed reads every index line under the nodes' storage directories.
// Every line names its node, and an epoch unless the node is in crashed:
// a segment indexed by crash recovery lost its epoch with its line.
func indexed(t *testing.T, nodes []*clusterNode, crashed ...string) map[string][]span {
	t.Helper()
	out := map[string][]span{}
	for _, n := range nodes {
		files, _ := filepath.Glob(filepath.Join(n.dir, "rec", "*", "*", "index.jsonl"))
		for _, f := range files {
			camera := filepath.Base(filepath.Dir(filepath.Dir(f)))
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for line := range strings.Lines(string(b)) {
				var rec struct {
					Start, End time.Time
					Node       string
					Epoch      int64
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if rec.Node != n.id || (rec.Epoch <= 0 && !slices.Contains(crashed, n.id)) {
					t.Errorf("%s: index line %s names node %q epoch %d, want %s and an epoch", f, strings.TrimSpace(line), rec.Node, rec.Epoch, n.id)
				}
				out[camera] = append(out[camera], span{rec.Start, rec.End, rec.Node, rec.Epoch})
			}
		}
	}
	for _, s := range out {
		slices.SortFunc(s, func(a, b span) int { return a.start.Compare(b.start) })
	}
	return out
}

func nodesOf(spans []span) map[string]bool {
	out := map[string]bool{}
	for _, s := range spans {
		out[s.node] = true
	}
	return out
}

// gap is time within [from, to] that no node recorded.
type gap struct{ start, end time.Time }

func gaps(spans []span, from, to time.Time) []gap {
	var out []gap
	covered := from
	for _, s := range spans {
		if s.end.Before(covered) || !s.start.Before(to) {
			continue
		}
		if s.start.After(covered) {
			out = append(out, gap{covered, s.start})
		}
		if s.end.After(covered) {
			covered = s.end
		}
	}
	if covered.Before(to) {
		out = append(out, gap{covered, to})
	}
	return out
}

// TestClusterFailoverStopAndJoin runs three vigil nodes as child processes
// on one redis-server with six simulated cameras: the cameras spread two
// per node; kill -9 of a node has its cameras recorded elsewhere within
// 15 s; a node stopped (SIGSTOP) for 20 s has its cameras recorded
// elsewhere meanwhile and, on waking, finds its leases gone and stops those
// cameras; the killed node started again joins and takes its share without
// a gap in any camera's recording; none of this raises an alert. The index
// lines of the three storage directories show no gap longer than the
// failover. Footage comes from any node: while the killed node is down, a
// survivor names it unreachable; once it is back, an export through a
// survivor across the failover is one MP4 of both nodes' segments, with
// no more gap than the failover.
func TestClusterFailoverStopAndJoin(t *testing.T) {
	rs := testutil.StartRedis(t)
	var specs []camsim.CameraSpec
	var cameras strings.Builder
	cameras.WriteString("cameras:\n")
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		ids = append(ids, id)
		specs = append(specs, camsim.CameraSpec{Path: "cam/" + id})
	}
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", NoUDP: true, Cameras: specs})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(t.Context())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	t.Cleanup(func() { stopSim(); <-simDone })
	for _, id := range ids {
		fmt.Fprintf(&cameras, "  - {id: %s, name: %s, site: hall, url: %q, transport: tcp}\n", id, id, sim.URL("cam/"+id))
	}
	var nodes []*clusterNode
	for i := range 3 {
		n := writeClusterNode(t, fmt.Sprintf("n%d", i+1), rs.Addr(), cameras.String())
		n.start(t)
		nodes = append(nodes, n)
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	spreadAll := func(live ...*clusterNode) func() bool {
		return func() bool {
			view := live[0].nodes(t)
			if len(view) != len(live) {
				return false
			}
			for _, n := range live {
				if len(view[n.id].Recording) != 6/len(live) {
					return false
				}
			}
			r := recorders(view)
			return len(r) == 6
		}
	}
	waitUntil(t, 40*time.Second, "two cameras recording on each node", nodes, spreadAll(n1, n2, n3))
	from := time.Now()

	// kill -9 n3: its cameras are recorded elsewhere within 15 s. The
	// export below starts at a segment n3 closed before: read from its
	// index, as asking any node for footage now would make it known as a
	// footage node before it dies.
	lost := n3.nodes(t)[n3.id].Recording
	camera := lost[0]
	var before span
	waitUntil(t, 10*time.Second, "n3 closes a segment of "+camera, nodes, func() bool {
		s := indexed(t, []*clusterNode{n3})[camera]
		if len(s) > 0 {
			before = s[len(s)-1]
		}
		return len(s) > 0
	})
	killedAt := time.Now()
	n3.signal(t, syscall.SIGKILL)
	<-n3.exited
	var taker string
	waitUntil(t, 15*time.Second, fmt.Sprintf("n3's cameras %v recorded by n1 or n2", lost), nodes, func() bool {
		r := recorders(n1.nodes(t))
		for _, c := range lost {
			if len(r[c]) == 0 || slices.Contains(r[c], n3.id) {
				return false
			}
		}
		taker = r[camera][0]
		return true
	})
	failover := time.Since(killedAt)
	// Footage through the survivor that did not take camera over; while
	// n3 is down it is named, and the time only it may hold is a gap.
	via := n1
	if taker == n1.id {
		via = n2
	}
	down := via.recordings(t, camera, before.start, time.Now())
	if !slices.Contains(down.Unreachable, n3.id) || !down.gapAt(killedAt) {
		t.Errorf("listing of %s through %s while n3 is down: unreachable %v, gaps %v; want n3 named and a gap at the kill (%s)",
			camera, via.id, down.Unreachable, down.Gaps, killedAt.Format(time.RFC3339Nano))
	}

	// SIGSTOP n2 for 20 s: n1 records everything within 15 s.
	waitUntil(t, 15*time.Second, "three cameras on n1 and n2", nodes, spreadAll(n1, n2))
	stopped := n2.nodes(t)[n2.id].Recording
	n2.signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()
	waitUntil(t, 15*time.Second, "n1 records all six cameras", nodes, func() bool {
		v := n1.nodes(t)
		return len(v[n1.id].Recording) == 6
	})
	time.Sleep(time.Until(stoppedAt.Add(20 * time.Second)))
	n2.signal(t, syscall.SIGCONT)
	waitUntil(t, 15*time.Second, "n2 gives up the cameras it held when stopped", nodes, func() bool {
		given := map[string]bool{}
		for line := range strings.Lines(n2.logs.String()) {
			if strings.Contains(line, `msg="camera lease given up"`) && strings.Contains(line, `why="held by another node`) {
				for _, c := range stopped {
					if strings.Contains(line, " camera="+c+" ") {
						given[c] = true
					}
				}
			}
		}
		return len(given) == len(stopped)
	})
	waitUntil(t, 20*time.Second, "three cameras on n1 and n2 again", nodes, spreadAll(n1, n2))

	// n3 joins again: two cameras move to it, each recorded there before
	// its old holder stops.
	joinedAt := time.Now()
	n3.start(t)
	waitUntil(t, 30*time.Second, "two cameras recording on each node after the join", nodes, spreadAll(n1, n2, n3))
	time.Sleep(3 * time.Second) // the old holders close their segments
	to := time.Now()
	// With n3 back, an export of camera across its failover through via
	// is one MP4 of n3's footage and then the taker's.
	failoverExport{nodes: nodes, via: via, camera: camera, start: before.start, end: killedAt.Add(failover + 2*time.Second),
		killed: n3.id, taker: taker, killedAt: killedAt, failover: failover}.check(t)
	// The failovers, the stop and the join raised no health alert: every
	// camera stayed online at its holder.
	var al struct {
		Alerts []struct{ Camera, Type string }
	}
	if code := get(t, n1.url+"/api/v1/alerts", clusterAdmin, &al); code != 200 {
		t.Fatalf("alerts: %d", code)
	}
	for _, a := range al.Alerts {
		t.Errorf("alert %s on %s after failovers alone", a.Type, a.Camera)
	}
	for _, n := range nodes {
		n.stop(t)
	}

	spans := indexed(t, nodes, n3.id)
	for _, c := range ids {
		var longest time.Duration
		for _, g := range gaps(spans[c], from, to) {
			d := g.end.Sub(g.start)
			longest = max(longest, d)
			switch {
			case d > 15*time.Second:
				t.Errorf("camera %s unrecorded for %s from %s: longer than the failover", c, d, g.start.Format(time.RFC3339Nano))
			case g.start.After(joinedAt) && d > time.Second:
				t.Errorf("camera %s unrecorded for %s from %s, after the join", c, d, g.start.Format(time.RFC3339Nano))
			}
		}
		t.Logf("camera %s: %d segments on %d nodes, longest gap %s", c, len(spans[c]), len(nodesOf(spans[c])), longest.Round(time.Millisecond))
	}
	// Fencing epochs: an epoch belongs to one node, and a node's epochs
	// for a camera only rise over time (each new hold is a new, higher
	// one). An old holder's segments overlapping a newer holder's keep the
	// lower epoch: listings prefer the higher.
	for _, c := range ids {
		owner := map[int64]string{}
		last := map[string]int64{}
		for _, s := range spans[c] {
			if s.epoch == 0 { // indexed by crash recovery
				continue
			}
			if n, ok := owner[s.epoch]; ok && n != s.node {
				t.Errorf("camera %s: epoch %d on %s and %s", c, s.epoch, n, s.node)
			}
			owner[s.epoch] = s.node
			if s.epoch < last[s.node] {
				t.Errorf("camera %s: %s went back from epoch %d to %d at %s", c, s.node, last[s.node], s.epoch, s.start.Format(time.RFC3339Nano))
			}
			last[s.node] = max(last[s.node], s.epoch)
		}
	}
}

// listing is GET /cameras/{id}/recordings on a cluster node.
type listing struct {
	Segments []struct {
		ID         string
		Start, End time.Time
		Bytes      int64
		SHA256     string
		Node       string
	}
	Gaps        []struct{ Start, End time.Time }
	Unreachable []string
}

// gapAt reports whether one of l's gaps holds t.
func (l listing) gapAt(t time.Time) bool {
	return slices.ContainsFunc(l.Gaps, func(g struct{ Start, End time.Time }) bool {
		return !t.Before(g.Start) && t.Before(g.End)
	})
}

func rangeQuery(start, end time.Time) string {
	return "start=" + start.UTC().Format(time.RFC3339Nano) + "&end=" + end.UTC().Format(time.RFC3339Nano)
}

// recordings is n's listing of camera over the cluster.
func (n *clusterNode) recordings(t *testing.T, camera string, start, end time.Time) listing {
	t.Helper()
	var l listing
	if code := get(t, n.url+"/api/v1/cameras/"+camera+"/recordings?"+rangeQuery(start, end), clusterAdmin, &l); code != 200 {
		t.Fatalf("recordings of %s on %s: status %d", camera, n.id, code)
	}
	return l
}

// failoverExport is an export of camera across the failover from node
// killed to node taker, asked of node via.
type failoverExport struct {
	nodes         []*clusterNode
	via           *clusterNode
	camera        string
	start, end    time.Time
	killed, taker string
	killedAt      time.Time
	failover      time.Duration // from the kill to the taker recording
}

// check exports x's range through x.via and checks that the MP4 plays
// in ffprobe over the whole range (time in the file is wall-clock, gaps
// included); that its manifest names the killed node before the kill and
// the taker after it, each segment with the SHA-256 its node lists; and
// that its gaps add up to no more than the failover, with a GOP and a
// part of slack (the part n3 had not flushed, the keyframe the taker
// waited for).
func (x failoverExport) check(t *testing.T) {
	t.Helper()
	q := rangeQuery(x.start, x.end)
	began := time.Now()
	req, _ := http.NewRequest("GET", x.via.url+"/api/v1/cameras/"+x.camera+"/export?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+clusterAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("export of %s through %s: %v", x.camera, x.via.id, err)
	}
	path := filepath.Join(t.TempDir(), "export.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	size, err := io.Copy(f, resp.Body)
	resp.Body.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || resp.StatusCode != 200 {
		b, _ := os.ReadFile(path)
		t.Fatalf("export of %s through %s: status %d, %v: %.300s", x.camera, x.via.id, resp.StatusCode, err, b)
	}
	if u := resp.Header.Get("X-Vigil-Unreachable"); u != "" {
		t.Errorf("export with every node up: X-Vigil-Unreachable %q", u)
	}
	took := time.Since(began)

	var m struct {
		From, Until time.Time
		Frames      int
		Segments    []struct {
			ID         string
			Start, End time.Time
			Bytes      int64
			SHA256     string
			Node       string
		}
		Gaps        []struct{ Start, End time.Time }
		Unreachable []string
	}
	if code := get(t, x.via.url+"/api/v1/cameras/"+x.camera+"/export/manifest?"+q, clusterAdmin, &m); code != 200 {
		t.Fatalf("manifest of %s through %s: status %d", x.camera, x.via.id, code)
	}
	if len(m.Unreachable) > 0 {
		t.Errorf("manifest with every node up: unreachable %v", m.Unreachable)
	}

	probe := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=nb_read_frames:format=duration", "-of", "json", path)
	var perr strings.Builder
	probe.Stderr = &perr
	out, err := probe.Output()
	var p struct {
		Streams []struct {
			Frames string `json:"nb_read_frames"`
		}
		Format struct{ Duration string }
	}
	if err != nil || perr.Len() > 0 || json.Unmarshal(out, &p) != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe of the export: %v: %s %s", err, perr.String(), out)
	}
	secs, _ := strconv.ParseFloat(p.Format.Duration, 64)
	dur := time.Duration(secs * float64(time.Second))
	if frames, _ := strconv.Atoi(p.Streams[0].Frames); frames != m.Frames || frames == 0 {
		t.Errorf("ffprobe counts %s frames, the manifest %d", p.Streams[0].Frames, m.Frames)
	}
	if want := m.Until.Sub(m.From); (dur - want).Abs() > 200*time.Millisecond {
		t.Errorf("export plays %s, the manifest spans %s (%s to %s)", dur, want, m.From.Format(time.RFC3339Nano), m.Until.Format(time.RFC3339Nano))
	}
	if m.From.After(x.start) || m.Until.Before(x.end.Add(-time.Second)) {
		t.Errorf("export spans %s to %s, asked for %s to %s", m.From.Format(time.RFC3339Nano), m.Until.Format(time.RFC3339Nano),
			x.start.Format(time.RFC3339Nano), x.end.Format(time.RFC3339Nano))
	}

	var killedBefore, takerAfter bool
	type sized struct {
		bytes  int64
		sha256 string
	}
	listed := map[string]map[string]sized{} // node → segment ID → what it lists of its own
	for _, s := range m.Segments {
		killedBefore = killedBefore || (s.Node == x.killed && s.Start.Before(x.killedAt))
		takerAfter = takerAfter || (s.Node == x.taker && s.Start.After(x.killedAt))
		if _, ok := listed[s.Node]; !ok {
			listed[s.Node] = map[string]sized{}
			for _, n := range x.nodes {
				if n.id == s.Node {
					for _, own := range n.recordings(t, x.camera, x.start, x.end).Segments {
						if own.Node == n.id {
							listed[s.Node][own.ID] = sized{own.Bytes, own.SHA256}
						}
					}
				}
			}
		}
		if got, want := (sized{s.Bytes, s.SHA256}), listed[s.Node][s.ID]; got != want {
			t.Errorf("manifest: segment %s of node %q: %d bytes, sha256 %s; its node lists %d bytes, sha256 %q", s.ID, s.Node, got.bytes, got.sha256, want.bytes, want.sha256)
		}
	}
	if !killedBefore || !takerAfter {
		t.Errorf("manifest segments %+v: want %s's before the kill at %s and %s's after", m.Segments, x.killed, x.killedAt.Format(time.RFC3339Nano), x.taker)
	}

	var gap time.Duration
	for _, g := range m.Gaps {
		gap += g.End.Sub(g.Start)
	}
	if slack := 2*time.Second + 500*time.Millisecond; gap > x.failover+slack {
		t.Errorf("export's gaps %+v add up to %s: longer than the failover (%s) and a GOP and a part", m.Gaps, gap, x.failover)
	}
	t.Logf("export of %s through %s: %d bytes in %s, %d segments on %d nodes, plays %s; gaps %s, failover %s",
		x.camera, x.via.id, size, took.Round(time.Millisecond), len(m.Segments), len(listed), dur.Round(time.Millisecond),
		gap.Round(time.Millisecond), x.failover.Round(time.Millisecond))
}
