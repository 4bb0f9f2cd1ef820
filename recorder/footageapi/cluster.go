package footageapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"vigil/internal/httpx"
	"vigil/recorder"
)

// Footage from any node. On a cluster node (Options.Peers set) listings,
// downloads, exports and manifests cover what every live node recorded:
// the node asks the others in parallel, each answering from its own
// storage only (a request from a peer, Options.Local, is never passed
// on), and merges. A node that does not answer is named in the answer;
// the time only it may hold is a gap, never silently missing.

// Peers is the rest of the cluster as the footage API asks it.
type Peers interface {
	// Self is this node's ID.
	Self() string
	// Others lists the live nodes other than this one.
	Others(ctx context.Context) ([]string, error)
	// Do sends a request of this API (path and query) to node,
	// authenticated as this node; node answers from its own storage.
	Do(ctx context.Context, node, method, pathQuery string, h http.Header, body io.Reader) (*http.Response, error)
	// GetJSON decodes node's answer to GET pathQuery, at most max bytes,
	// into v; an answer other than 200 is an error.
	GetJSON(ctx context.Context, node, pathQuery string, max int64, v any) error
	// Forward passes r to node at pathQuery and node's answer to w; a
	// node that does not answer is 503 node_unreachable (status 0).
	Forward(w http.ResponseWriter, r *http.Request, node, pathQuery, what string) (status int, err error)
}

// RegistryUnreachable stands in "unreachable" for the nodes this node
// could not even list: the cluster's registry (Redis) did not answer.
const RegistryUnreachable = "(node registry)"

// listTimeout bounds one node's whole listing answer; maxRemoteList
// bounds its size (a month of one camera is about 12 MB).
const (
	listTimeout   = 5 * time.Second
	maxRemoteList = 64 << 20
	fetchParallel = 4 // segments' boxes asked for at once for an export
)

// clustered reports whether r is answered from every node.
func (a *Server) clustered(r *http.Request) bool {
	return a.opts.Peers != nil && !a.opts.Local(r)
}

// clusterListing is a camera's footage over the cluster, oldest first.
type clusterListing struct {
	self        string
	segs        []recorder.Segment // Path set only for this node's
	superseded  []bool             // per segment: a higher epoch overlaps it
	gaps        []recorder.Gap
	unreachable []string
}

// listCluster lists camera's [start, end] on this node and every other
// live node.
func (a *Server) listCluster(ctx context.Context, camera string, start, end time.Time) (*clusterListing, error) {
	self := a.opts.Peers.Self()
	local, _, err := a.opts.Catalog.List(camera, start, end)
	if err != nil {
		return nil, err
	}
	for i := range local {
		if local[i].Node == "" { // recorded before the node joined a cluster
			local[i].Node = self
		}
	}
	c := &clusterListing{self: self, segs: local, unreachable: []string{}}
	others, err := a.opts.Peers.Others(ctx)
	if err != nil {
		a.log.Warn("cluster listing: the node registry cannot be read; listing this node's footage only", "camera", camera, "error", err)
		c.unreachable = append(c.unreachable, RegistryUnreachable)
	}
	remote := make([][]recorder.Segment, len(others))
	errs := make([]error, len(others))
	var wg sync.WaitGroup
	for i, node := range others {
		wg.Go(func() {
			remote[i], errs[i] = a.remoteList(ctx, node, camera, start, end)
		})
	}
	wg.Wait()
	for i, node := range others {
		if errs[i] != nil {
			a.log.Warn("cluster listing: node did not answer", "node", node, "camera", camera, "error", errs[i])
			c.unreachable = append(c.unreachable, node)
			continue
		}
		c.segs = append(c.segs, remote[i]...)
	}
	slices.SortStableFunc(c.segs, func(x, y recorder.Segment) int {
		if n := x.Start.Compare(y.Start); n != 0 {
			return n
		}
		return strings.Compare(x.Node, y.Node)
	})
	c.superseded = supersededByEpoch(c.segs)
	c.gaps = clusterGaps(start, earlier(end, a.opts.Now()), c.segs, len(c.unreachable) > 0)
	return c, nil
}

// supersededByEpoch marks each segment (oldest first) that a segment of a
// higher epoch overlaps in time.
func supersededByEpoch(segs []recorder.Segment) []bool {
	out := make([]bool, len(segs))
	for i := range segs {
		for j := i + 1; j < len(segs) && segs[j].Start.Before(segs[i].End); j++ {
			switch {
			case segs[j].Epoch > segs[i].Epoch:
				out[i] = true
			case segs[i].Epoch > segs[j].Epoch:
				out[j] = true
			}
		}
	}
	return out
}

// clusterGaps are the listing's gaps over every node's segments (oldest
// first): the holes between them, and, as a single node lists them, the
// span after the last one up to until when no node is recording the
// camera now. With a node unreachable, the time before the first segment
// is a gap too: that node's footage may be there.
func clusterGaps(start, until time.Time, segs []recorder.Segment, unreachable bool) []recorder.Gap {
	if len(segs) == 0 {
		if unreachable && until.After(start) {
			return []recorder.Gap{{Start: start, End: until}}
		}
		return []recorder.Gap{}
	}
	from, to := segs[0].Start, segs[0].End
	open := false
	for _, s := range segs {
		to = later(to, s.End)
		open = open || s.Open
	}
	if unreachable && start.Before(from) {
		from = start
	}
	if !open && until.After(to) {
		to = until
	}
	gaps := recorder.CoverGaps(from, to, segs)
	if gaps == nil {
		gaps = []recorder.Gap{}
	}
	return gaps
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// remoteList asks node for its own segments of camera in [start, end] and
// checks what it answers: node IDs, segment IDs, times, sizes and hashes
// come from another machine and are used to name files and URLs.
func (a *Server) remoteList(ctx context.Context, node, camera string, start, end time.Time) ([]recorder.Segment, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	q := url.Values{"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
	var got recordingsJSON
	if err := a.opts.Peers.GetJSON(ctx, node, "/api/v1/cameras/"+camera+"/recordings?"+q.Encode(), maxRemoteList, &got); err != nil {
		return nil, err
	}
	return parseRemoteSegments(node, camera, got)
}

// parseRemoteSegments turns node's listing of camera into segments,
// refusing anything malformed with an error that says what.
func parseRemoteSegments(node, camera string, got recordingsJSON) ([]recorder.Segment, error) {
	if got.Camera != camera {
		return nil, fmt.Errorf("node %s: listing of camera %q, asked for %q", node, got.Camera, camera)
	}
	segs := make([]recorder.Segment, 0, len(got.Segments))
	for i, s := range got.Segments {
		bad := func(what string) error {
			return fmt.Errorf("node %s: listing: segment %d (%.40q): %s", node, i, s.ID, what)
		}
		if _, _, _, err := recorder.ParseSegmentID(s.ID); err != nil {
			return nil, bad("invalid id")
		}
		st, err1 := time.Parse(time.RFC3339Nano, s.Start)
		en, err2 := time.Parse(time.RFC3339Nano, s.End)
		switch {
		case err1 != nil || err2 != nil:
			return nil, bad("start or end is not an RFC 3339 time")
		case en.Before(st):
			return nil, bad("ends before it starts")
		case s.Bytes < 0:
			return nil, bad("negative size")
		case s.Damage == "" && !sha256Hex.MatchString(s.SHA256):
			return nil, bad("sha256 is not 64 lower-case hex digits")
		case s.Node != "" && s.Node != node:
			return nil, bad("recorded by node " + strconv.Quote(s.Node) + ", not by the node that lists it")
		case s.Epoch < 0:
			return nil, bad("negative epoch")
		}
		damage := s.Damage
		if damage == "" && s.Damaged {
			damage = "damaged"
		}
		segs = append(segs, recorder.Segment{
			ID: s.ID, Camera: camera, Start: st.UTC(), End: en.UTC(), Bytes: s.Bytes, SHA256: s.SHA256,
			Damage: damage, Open: s.Open, Node: node, Epoch: s.Epoch,
		})
	}
	return segs, nil
}

func (a *Server) listRecordingsCluster(w http.ResponseWriter, r *http.Request, camera string, start, end time.Time) {
	c, err := a.listCluster(r.Context(), camera, start, end)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b := appendListingJSON(nil, camera, start, end, c.segs, c.gaps, c)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// proxyGet streams node's answer to pq (path and query) through to w
// (Peers.Forward: range and conditional headers kept), and audits the
// transfer here, where the investigator is known.
func (a *Server) proxyGet(w http.ResponseWriter, r *http.Request, node, pq, action, object string, detail map[string]string) {
	aw := a.auditWriter(w, r)
	status, err := a.opts.Peers.Forward(aw, r, node, pq, "this footage is on node "+node)
	if status == 0 {
		a.log.Warn("footage from another node: no answer", "node", node, "path", r.URL.Path, "error", err)
		return
	}
	if status >= 300 {
		return // an error or a 304: the other node's answer, not a retrieval
	}
	detail["node"] = node
	a.audit(r, aw, action, object, detail, err)
	if err != nil && r.Context().Err() == nil {
		a.log.Error("footage from another node: transfer cut", "node", node, "path", r.URL.Path, "error", err)
		panic(http.ErrAbortHandler) // the length promised will not be reached
	}
}

// exportSources chooses what an export of [start, end) reads across the
// cluster: the listing's segments that overlap it, less the damaged ones
// whose time in it segments of a higher epoch cover (an export takes
// that time from them anyway). dropped reports whether any was left out.
func exportSources(c *clusterListing, start, end time.Time) (srcs []recorder.Segment, dropped bool) {
	for _, s := range c.segs {
		if s.Start.Before(end) && s.End.After(start) {
			srcs = append(srcs, s)
		}
	}
	out := srcs[:0:0]
	for _, s := range srcs {
		if s.Damage != "" && coveredByHigherEpoch(s, srcs, start, end) {
			dropped = true
			continue
		}
		out = append(out, s)
	}
	return out, dropped
}

// coveredByHigherEpoch reports whether undamaged segments of segs (oldest
// first) with a higher epoch than d cover d's time within [start, end).
func coveredByHigherEpoch(d recorder.Segment, segs []recorder.Segment, start, end time.Time) bool {
	from, to := later(d.Start, start), earlier(d.End, end)
	for _, s := range segs {
		if s.Damage != "" || s.Epoch <= d.Epoch || s.Start.After(from) || !s.End.After(from) {
			continue
		}
		from = s.End
		if !from.Before(to) {
			return true
		}
	}
	return !from.Before(to)
}

// onlyNode is the node every segment of segs is on, or "".
func onlyNode(segs []recorder.Segment) string {
	if len(segs) == 0 {
		return ""
	}
	n := segs[0].Node
	for _, s := range segs[1:] {
		if s.Node != n {
			return ""
		}
	}
	return n
}

// planCluster plans camera's export over the cluster. When every source is
// on this node it is the local plan; when they are all on one other node,
// remote names it (the caller passes that node's own export through);
// otherwise one export is planned from this node's files and the other
// nodes' segments' boxes (their sample tables), and their media is
// received while the export is sent, each segment checked against the
// SHA-256 its node listed before any of it is sent on
// (recorder.PlanExportOf). No media is read here for a plan, so a
// manifest costs the boxes only.
func (a *Server) planCluster(ctx context.Context, req recorder.ExportRequest) (x *recorder.Export, remote string, unreachable []string, err error) {
	c, err := a.listCluster(ctx, req.Camera, req.Start, req.End)
	if err != nil {
		return nil, "", nil, err
	}
	srcs, dropped := exportSources(c, req.Start, req.End)
	switch n := onlyNode(srcs); {
	case len(srcs) == 0 || (n == c.self && !dropped):
		x, err = a.planner.Plan(req)
		return x, "", c.unreachable, err
	case n != "" && n != c.self && !dropped:
		return nil, n, c.unreachable, nil
	}
	for _, s := range srcs {
		switch {
		case s.Damage == "":
		case s.Node == c.self: // this node's own damage, as a single node answers it
			return nil, "", nil, &recorder.IntegrityError{Camera: req.Camera, Segment: s.ID, Reason: s.Damage, Known: true}
		default:
			return nil, "", nil, &NodeFootageError{Node: s.Node, Msg: fmt.Sprintf(
				"segment %s of camera %s on node %s failed its integrity check there (%s)", s.ID, req.Camera, s.Node, s.Damage)}
		}
	}
	xs := make([]recorder.ExportSource, len(srcs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for i, s := range srcs {
		xs[i].Segment = s
		if s.Node == c.self {
			continue
		}
		xs[i].Fetch = a.segmentFetch(ctx, s)
		g.Go(func() error {
			var err error
			xs[i].Boxes, err = a.remoteBoxes(gctx, s)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", nil, err
	}
	x, err = recorder.PlanExportOf(req, xs)
	if err != nil {
		return nil, "", nil, err
	}
	return x, "", c.unreachable, nil
}

// NodeFootageError is another node's footage that cannot be used: boxes
// that do not describe the segment it listed, or a segment the node lists
// as damaged. It is this node's answer (502), and nothing is marked
// damaged here: the segment is not this node's.
type NodeFootageError struct {
	Node string
	Msg  string
}

func (e *NodeFootageError) Error() string { return e.Msg }

// segmentPath is the path of node's segment s, for another node.
func segmentPath(s recorder.Segment) string {
	return "/api/v1/cameras/" + s.Camera + "/recordings/" + s.ID
}

// remoteBoxes asks s's node for its boxes (the segment without its media)
// over the bytes it listed of it, and checks that they describe a file of
// that size.
func (a *Server) remoteBoxes(ctx context.Context, s recorder.Segment) (*recorder.SegmentBoxes, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	resp, err := a.opts.Peers.Do(ctx, s.Node, http.MethodGet, segmentPath(s)+"/boxes?bytes="+strconv.FormatInt(s.Bytes, 10), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("camera %s: segment %s on node %s: boxes: %w", s.Camera, s.ID, s.Node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("camera %s: segment %s on node %s: boxes: status %d: %w", s.Camera, s.ID, s.Node, resp.StatusCode, recorder.ErrSourceChanged)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, recorder.MaxSegmentBoxes+1))
	if err != nil {
		return nil, fmt.Errorf("camera %s: segment %s on node %s: boxes: %w", s.Camera, s.ID, s.Node, err)
	}
	boxes, err := recorder.ParseSegmentBoxes(b, s.Bytes)
	if err != nil {
		return nil, &NodeFootageError{Node: s.Node, Msg: fmt.Sprintf(
			"segment %s of camera %s from node %s: its boxes do not describe the %d bytes the node listed: %v", s.ID, s.Camera, s.Node, s.Bytes, err)}
	}
	return boxes, nil
}

// segmentFetch receives node's segment s, up to the bytes listed of it
// (an open segment grows past them), for an export being sent; ctx is the
// export request's. The export checks what arrives (recorder.ExportSource).
func (a *Server) segmentFetch(ctx context.Context, s recorder.Segment) func(stop <-chan struct{}, w io.Writer) error {
	return func(stop <-chan struct{}, w io.Writer) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		h := http.Header{HeaderAskerChecks: {"sha256"}}
		if s.Open {
			h.Set("Range", "bytes=0-"+strconv.FormatInt(s.Bytes-1, 10))
		}
		resp, err := a.opts.Peers.Do(ctx, s.Node, http.MethodGet, segmentPath(s), h, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
			return fmt.Errorf("status %d: %w", resp.StatusCode, recorder.ErrSourceChanged)
		}
		_, err = io.CopyBuffer(w, resp.Body, make([]byte, 256<<10))
		return err
	}
}

// holderCheck asks the node of a segment that arrived other than it was
// listed to check its own copy: a one-byte range makes it hash the whole
// file first (serveSegment), and a damaged one is marked damaged there
// and raises recording_tampered. It says what was found, for the log and
// the audit: "damaged there" (409), "intact there" (the bytes changed on
// their way), or why it is not known.
func (a *Server) holderCheck(ctx context.Context, e *recorder.RemoteSourceError) string {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	s := recorder.Segment{Camera: e.Camera, ID: e.Segment}
	resp, err := a.opts.Peers.Do(ctx, e.Node, http.MethodGet, segmentPath(s), http.Header{"Range": {"bytes=0-0"}}, nil)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusConflict:
		return "damaged there"
	case http.StatusOK, http.StatusPartialContent:
		return "intact there"
	}
	return "unknown: status " + strconv.Itoa(resp.StatusCode)
}

// clusterManifest is a manifest with the nodes that did not answer.
type clusterManifest struct {
	recorder.Manifest
	Unreachable []string `json:"unreachable"`
}

func (a *Server) serveManifestCluster(w http.ResponseWriter, r *http.Request, req recorder.ExportRequest) {
	x, remote, unreachable, err := a.planCluster(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if remote != "" {
		m, err := a.remoteManifest(r, remote)
		if err != nil {
			a.log.Warn("manifest from another node: no answer", "node", remote, "camera", req.Camera, "error", err)
			httpx.Error(w, http.StatusServiceUnavailable, "node_unreachable", "node "+remote+", which holds this footage, cannot be reached now; retry later")
			return
		}
		httpx.WriteJSON(w, http.StatusOK, clusterManifest{Manifest: m, Unreachable: unreachable})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, clusterManifest{Manifest: x.Manifest(), Unreachable: unreachable})
}

// remoteManifest is node's own manifest of r's range, its segments named
// after node.
func (a *Server) remoteManifest(r *http.Request, node string) (recorder.Manifest, error) {
	var m recorder.Manifest
	if err := a.opts.Peers.GetJSON(r.Context(), node, r.URL.Path+"?"+r.URL.RawQuery, maxRemoteList, &m); err != nil {
		return m, err
	}
	for i, s := range m.Segments {
		if s.Node != "" && s.Node != node {
			return m, errors.New("segment " + strconv.Quote(s.ID) + " named another node")
		}
		m.Segments[i].Node = node
	}
	return m, nil
}

// Locate names the node whose footage of camera covers t ("" for this
// node, or when no node has any), for a snapshot at a past time.
func (a *Server) Locate(ctx context.Context, camera string, t time.Time) (string, error) {
	if a.opts.Peers == nil {
		return "", nil
	}
	c, err := a.listCluster(ctx, camera, t, t)
	if err != nil {
		return "", err
	}
	best := -1
	for i, s := range c.segs {
		if s.Damage == "" && !s.Start.After(t) && s.End.After(t) && (best < 0 || s.Epoch > c.segs[best].Epoch) {
			best = i
		}
	}
	if best < 0 || c.segs[best].Node == c.self {
		return "", nil
	}
	return c.segs[best].Node, nil
}
