package footageapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigil/internal/httpx"
	"vigil/recorder"
)

// DefaultMaxListRange is the longest range one recordings listing covers.
const DefaultMaxListRange = 31 * 24 * time.Hour

// Options configures the investigators' HTTP API.
type Options struct {
	Catalog *recorder.Catalog // required
	// MaxRange bounds one export; default recorder.DefaultMaxExportRange.
	MaxRange time.Duration
	// MaxListRange bounds one listing; default DefaultMaxListRange.
	MaxListRange time.Duration
	// Audit records every download and export; nil records nothing (the
	// app always sets it).
	Audit recorder.Auditor
	// Actor names who makes a request (the app's authenticated principal);
	// default "".
	Actor  func(*http.Request) string
	Now    func() time.Time
	Logger *slog.Logger
	// Peers, on a cluster node, are the other nodes whose footage the
	// API covers (see cluster.go); nil on a single node, which answers
	// exactly as before.
	Peers Peers
	// Local reports whether r comes from another node: it is answered
	// from this node's storage only. Default: never.
	Local func(r *http.Request) bool
	// TempDir holds, while an export sends it, another node's segment too
	// large to hold in memory; default os.TempDir().
	TempDir string
	// Registerer receives the API's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (o *Options) validate() error {
	if o.Catalog == nil {
		return errors.New("recorder api: catalog: required")
	}
	if o.MaxRange <= 0 {
		o.MaxRange = recorder.DefaultMaxExportRange
	}
	if o.MaxListRange <= 0 {
		o.MaxListRange = DefaultMaxListRange
	}
	if o.Audit == nil {
		o.Audit = recorder.AuditFunc(func(ctx context.Context, e recorder.AuditEntry) error { return nil })
	}
	if o.Actor == nil {
		o.Actor = func(*http.Request) string { return "" }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Local == nil {
		o.Local = func(*http.Request) bool { return false }
	}
	return nil
}

// API serves recordings to investigators: listings, segment downloads,
// exports and their manifests. Authentication and roles are the app's
// middleware, applied through Register's wrap.
type Server struct {
	opts    Options
	log     *slog.Logger
	planner *recorder.ExportPlanner
	// mismatches counts other nodes' segments that arrived other than
	// they were listed (the log and the audit name the node).
	mismatches prometheus.Counter
	// listBufs holds *[]byte buffers listings are encoded into; one
	// camera-day is about 400 kB.
	listBufs sync.Pool
}

// New returns the API over opts.Catalog.
func New(opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	a := &Server{opts: opts, log: opts.Logger.With("component", "footage-api"), planner: recorder.NewExportPlanner(opts.Catalog)}
	a.mismatches = promauto.With(opts.Registerer).NewCounter(prometheus.CounterOpts{
		Name: "vigil_cluster_footage_mismatches_total",
		Help: "Other nodes' segments whose bytes, received for an export, were not what the node listed (size, SHA-256 or boxes); each aborted its export.",
	})
	a.listBufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	return a, nil
}

// Route patterns served by API (Go 1.22 ServeMux syntax).
const (
	PatternRecordings = "GET /api/v1/cameras/{id}/recordings"
	PatternSegment    = "GET /api/v1/cameras/{id}/recordings/{segment}"
	// PatternSegmentBoxes is a segment without its media (what another
	// node plans an export from): recorder.AppendSegmentBoxes of its
	// first ?bytes= bytes (default all).
	PatternSegmentBoxes = "GET /api/v1/cameras/{id}/recordings/{segment}/boxes"
	PatternExport       = "GET /api/v1/cameras/{id}/export"
	PatternManifest     = "GET /api/v1/cameras/{id}/export/manifest"
)

// Register adds the API's routes to mux, each passed through wrap (the
// app's authentication and role check); a nil wrap adds them bare.
func (a *Server) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	if wrap == nil {
		wrap = func(h http.Handler) http.Handler { return h }
	}
	mux.Handle(PatternRecordings, wrap(http.HandlerFunc(a.listRecordings)))
	mux.Handle(PatternSegment, wrap(http.HandlerFunc(a.serveSegment)))
	mux.Handle(PatternSegmentBoxes, wrap(http.HandlerFunc(a.serveSegmentBoxes)))
	mux.Handle(PatternExport, wrap(http.HandlerFunc(a.serveExport)))
	mux.Handle(PatternManifest, wrap(http.HandlerFunc(a.serveManifest)))
}

type segmentJSON struct {
	ID        string  `json:"id"`
	Start     string  `json:"start"`
	End       string  `json:"end"`
	DurationS float64 `json:"duration_s"`
	Bytes     int64   `json:"bytes"`
	SHA256    string  `json:"sha256"`
	URL       string  `json:"url"`
	// Damaged marks a segment that failed its integrity check or that no
	// valid index line names; Damage says which.
	Damaged bool   `json:"damaged,omitempty"`
	Damage  string `json:"damage,omitempty"`
	// Open marks the segment being written (recorder.Segment.Open).
	Open bool `json:"open,omitempty"`
	// Node and Epoch say which cluster node recorded it, under which
	// lease epoch (recorder.Segment.Node, recorder.Segment.Epoch); absent on a single node.
	Node  string `json:"node,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
	// Superseded marks, on a cluster node, a segment whose time overlaps
	// a segment of a higher lease epoch: both are kept and listed, and
	// exports take the overlapping time from the higher epoch.
	Superseded bool `json:"superseded,omitempty"`
}

type recordingsJSON struct {
	Camera   string                 `json:"camera"`
	Start    string                 `json:"start"`
	End      string                 `json:"end"`
	Segments []segmentJSON          `json:"segments"`
	Gaps     []recorder.ManifestGap `json:"gaps"`
	// Unreachable names, on a cluster node, the nodes that did not
	// answer; the time only they may hold is listed as a gap.
	Unreachable []string `json:"unreachable,omitempty"`
}

func (a *Server) listRecordings(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	if !recorder.ValidCameraID(camera) {
		httpx.Error(w, http.StatusBadRequest, "bad_camera_id", "invalid camera id")
		return
	}
	start, end, err := recorder.ParseTimeRange(r.URL.Query(), a.opts.Now(), time.Hour, a.opts.MaxListRange)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.clustered(r) {
		a.listRecordingsCluster(w, r, camera, start, end)
		return
	}
	segs, gaps, err := a.opts.Catalog.List(camera, start, end)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	buf := a.listBufs.Get().(*[]byte)
	b := appendRecordingsJSON((*buf)[:0], camera, start, end, segs, gaps)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b) // the client went away; nothing to do
	if cap(b) <= maxPooledListBuf {
		*buf = b[:0]
		a.listBufs.Put(buf)
	}
}

// maxPooledListBuf keeps a month-long listing's buffer out of the pool.
const maxPooledListBuf = 1 << 20

// appendRecordingsJSON appends the listing exactly as encoding/json (HTML
// escaping off, as httpx.WriteJSON) renders recordingsJSON, newline
// included, at a fraction of the cost: reflection over 1,440 segments
// was most of a camera-day listing's time.
func appendRecordingsJSON(b []byte, camera string, start, end time.Time, segs []recorder.Segment, gaps []recorder.Gap) []byte {
	return appendListingJSON(b, camera, start, end, segs, gaps, nil)
}

// appendListingJSON is appendRecordingsJSON with, on a cluster node (c
// set), each segment's URL naming another node that holds it, the
// superseded marks and the unreachable nodes.
func appendListingJSON(b []byte, camera string, start, end time.Time, segs []recorder.Segment, gaps []recorder.Gap, c *clusterListing) []byte {
	b = append(b, `{"camera":`...)
	b = appendJSONString(b, camera)
	b = append(b, `,"start":`...)
	b = appendJSONTime(b, start)
	b = append(b, `,"end":`...)
	b = appendJSONTime(b, end)
	b = append(b, `,"segments":[`...)
	for i := range segs {
		if i > 0 {
			b = append(b, ',')
		}
		if c == nil {
			b = appendSegmentJSON(b, camera, &segs[i], "", false)
			continue
		}
		node := segs[i].Node
		if node == c.self {
			node = ""
		}
		b = appendSegmentJSON(b, camera, &segs[i], node, c.superseded[i])
	}
	b = append(b, `],"gaps":[`...)
	for i, g := range gaps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"start":`...)
		b = appendJSONTime(b, g.Start)
		b = append(b, `,"end":`...)
		b = appendJSONTime(b, g.End)
		b = append(b, '}')
	}
	if c != nil {
		b = append(b, `],"unreachable":[`...)
		for i, n := range c.unreachable {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n)
		}
	}
	return append(b, "]}\n"...)
}

// appendSegmentJSON appends one segmentJSON object of camera's listing;
// its URL names node when another node holds it, and superseded marks it.
func appendSegmentJSON(b []byte, camera string, s *recorder.Segment, node string, superseded bool) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"start":`...)
	b = appendJSONTime(b, s.Start)
	b = append(b, `,"end":`...)
	b = appendJSONTime(b, s.End)
	b = append(b, `,"duration_s":`...)
	b = appendJSONFloat(b, s.Duration().Seconds())
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, s.Bytes, 10)
	b = append(b, `,"sha256":`...)
	b = appendJSONString(b, s.SHA256)
	b = append(b, `,"url":`...)
	if plainJSON(camera) && plainJSON(s.ID) { // always: both are checked against their patterns
		b = append(b, `"/api/v1/cameras/`...)
		b = append(b, camera...)
		b = append(b, "/recordings/"...)
		b = append(b, s.ID...)
		if node != "" {
			b = append(b, "?node="...)
			b = append(b, url.QueryEscape(node)...)
		}
		b = append(b, '"')
	} else {
		u := "/api/v1/cameras/" + camera + "/recordings/" + s.ID
		if node != "" {
			u += "?node=" + url.QueryEscape(node)
		}
		b = appendJSONString(b, u)
	}
	if s.Damage != "" {
		b = append(b, `,"damaged":true,"damage":`...)
		b = appendJSONString(b, s.Damage)
	}
	if s.Open {
		b = append(b, `,"open":true`...)
	}
	if s.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, s.Node)
		b = append(b, `,"epoch":`...)
		b = strconv.AppendInt(b, s.Epoch, 10)
	}
	if superseded {
		b = append(b, `,"superseded":true`...)
	}
	return append(b, '}')
}

// plainJSON reports whether s is printable ASCII that JSON strings carry
// unescaped.
func plainJSON(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendJSONTime appends recorder.FormatTime(t) as a JSON string.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = recorder.AppendTime(b, t)
	return append(b, '"')
}

// appendJSONFloat is encoding/json's float64 encoding (ES6 number form).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// off: quotes, backslashes and control bytes escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// segmentParams are the camera and segment of a segment route, both checked
// against their patterns before the catalog or the file system sees them
// (the file's path comes from the catalog); false after answering 400.
func segmentParams(w http.ResponseWriter, r *http.Request) (camera, id string, ok bool) {
	camera, id = r.PathValue("id"), r.PathValue("segment")
	if !recorder.ValidCameraID(camera) {
		httpx.Error(w, http.StatusBadRequest, "bad_camera_id", "invalid camera id")
		return "", "", false
	}
	if _, _, _, err := recorder.ParseSegmentID(id); err != nil {
		httpx.Error(w, http.StatusBadRequest, "bad_segment", "invalid segment id")
		return "", "", false
	}
	return camera, id, true
}

func (a *Server) serveSegment(w http.ResponseWriter, r *http.Request) {
	camera, id, ok := segmentParams(w, r)
	if !ok {
		return
	}
	object := "camera/" + camera + "/segment/" + id
	if node := r.URL.Query().Get("node"); node != "" && a.clustered(r) && node != a.opts.Peers.Self() {
		a.proxyGet(w, r, node, "/api/v1/cameras/"+camera+"/recordings/"+id, recorder.AuditDownloaded, object,
			map[string]string{"camera": camera, "segment": id})
		return
	}
	seg, err := a.opts.Catalog.Segment(camera, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	detail := func() map[string]string {
		return map[string]string{
			"camera": camera, "segment": id, "start": recorder.FormatTime(seg.Start), "end": recorder.FormatTime(seg.End),
			"segment_sha256": seg.SHA256,
		}
	}
	if seg.Damage != "" {
		err := &recorder.IntegrityError{Camera: camera, Segment: id, Reason: seg.Damage, Known: true}
		a.integrityFailed(r, recorder.AuditDownloaded, object, detail(), err)
		a.fail(w, r, err)
		return
	}
	if a.opts.Local(r) && r.Header.Get(HeaderAskerChecks) == "sha256" {
		a.sendUnhashed(w, r, seg)
		return
	}
	v, err := recorder.OpenSegment(seg)
	if err == nil && r.Header.Get("Range") != "" {
		// a partial answer may end anywhere: check the whole file first
		err = v.Verify()
	}
	if err != nil {
		if v != nil {
			v.Close()
		}
		a.integrityFailed(r, recorder.AuditDownloaded, object, detail(), err)
		a.fail(w, r, err)
		return
	}
	defer v.Close()
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("ETag", `"`+seg.SHA256+`"`)
	h.Set("Content-Disposition", `attachment; filename="`+camera+"_"+id+`.mp4"`)
	h.Set("X-Vigil-SHA256", seg.SHA256)
	aw := a.auditWriter(w, r)
	serveContent(aw, r, seg.End, v)
	a.audit(r, aw, recorder.AuditDownloaded, object, detail(), v.Err())
	if v.Err() != nil {
		a.abortIntegrity(v.Err())
	}
}

// serveSegmentBoxes answers another node planning an export: this node's
// segment without its media, over the first ?bytes= bytes (what that node
// listed of it: an open segment has grown since). Nothing is audited: no
// footage leaves; the media, when it does, is audited by the node that
// sends it on.
func (a *Server) serveSegmentBoxes(w http.ResponseWriter, r *http.Request) {
	camera, id, ok := segmentParams(w, r)
	if !ok {
		return
	}
	seg, err := a.opts.Catalog.Segment(camera, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if seg.Damage != "" {
		a.fail(w, r, &recorder.IntegrityError{Camera: camera, Segment: id, Reason: seg.Damage, Known: true})
		return
	}
	if v := r.URL.Query().Get("bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n < 0:
			httpx.Error(w, http.StatusBadRequest, "bad_bytes", "bytes must be a size in bytes")
			return
		case n > seg.Bytes || (n < seg.Bytes && !seg.Open):
			a.fail(w, r, fmt.Errorf("camera %s: segment %s: %d bytes asked, %d indexed: %w", camera, id, n, seg.Bytes, recorder.ErrSourceChanged))
			return
		}
		seg.Bytes = n
	}
	b, err := recorder.AppendSegmentBoxes(nil, seg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// sendUnhashed sends seg to another node that checks its SHA-256 itself
// (HeaderAskerChecks): its size is checked, its bytes go out as they are
// (by sendfile(2) where the connection allows), not audited here (the
// node that sends them on audits them).
func (a *Server) sendUnhashed(w http.ResponseWriter, r *http.Request, seg recorder.Segment) {
	f, err := recorder.OpenSegmentFile(seg)
	if err != nil {
		a.opts.Catalog.ReportDamaged(err)
		a.fail(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("ETag", `"`+seg.SHA256+`"`)
	h.Set("X-Vigil-SHA256", seg.SHA256)
	serveContent(w, r, seg.End, f)
}

// HeaderAskerChecks, sent by a node receiving another's segment for an
// export ("sha256"), says that it checks every byte against the SHA-256
// the holder listed (recorder.ExportSource) and aborts on a mismatch: the
// holder then sends the file without hashing it too. Only another node's
// request may say so; a user's download is always checked by the holder.
// On a mismatch the asker asks the holder to check its copy
// (holderCheck), which raises recording_tampered there when it is damaged.
const HeaderAskerChecks = "X-Vigil-Asker-Checks"

// integrityFailed reports a source that failed its check before anything
// was sent, and audits the refused retrieval.
func (a *Server) integrityFailed(r *http.Request, action, object string, detail map[string]string, err error) {
	if !errors.Is(err, recorder.ErrIntegrity) {
		return
	}
	a.opts.Catalog.ReportDamaged(err)
	detail["complete"] = "false"
	detail["integrity"] = "failed"
	detail["error"] = err.Error()
	e := recorder.AuditEntry{At: a.opts.Now().UTC(), By: a.opts.Actor(r), Action: action, Object: object, Detail: detail}
	if aerr := a.opts.Audit.Audit(r.Context(), e); aerr != nil {
		a.log.Error("audit failed", "action", action, "object", object, "error", aerr)
	}
}

// abortIntegrity ends a response whose source failed its check part way:
// the headers promised a length (and a hash) the body will not honour, so
// the connection is dropped and the client sees a failed transfer.
func (a *Server) abortIntegrity(err error) {
	a.opts.Catalog.ReportDamaged(err)
	a.log.Error("retrieval aborted", "error", err)
	panic(http.ErrAbortHandler)
}

func (a *Server) serveExport(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	req, err := recorder.ParseExportQuery(camera, r.URL.Query(), a.opts.MaxRange)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.ServeExport(w, r, req.Camera, req.Start, req.End, req.Format)
}

// ServeExport serves the export of camera's [start, end) in format ("mp4",
// the default, or "fmp4") with Range and ETag support, and audits it. The
// app uses it for an alert's clip. Bad input is answered with a 4xx JSON
// error before any media is sent; a source segment removed while the export
// is sent aborts the connection (panic(http.ErrAbortHandler): a recovering
// middleware must re-panic it), so a client never gets a truncated file that
// looks whole.
//
// On a cluster node the export covers every node's footage (see
// planCluster); X-Vigil-Unreachable names the nodes that did not answer.
func (a *Server) ServeExport(w http.ResponseWriter, r *http.Request, camera string, start, end time.Time, format string) {
	req := recorder.ExportRequest{Camera: camera, Start: start, End: end, Format: format, MaxRange: a.opts.MaxRange}
	var x *recorder.Export
	var err error
	if a.clustered(r) {
		var remote string
		var unreachable []string
		x, remote, unreachable, err = a.planCluster(r.Context(), req)
		if len(unreachable) > 0 {
			w.Header().Set("X-Vigil-Unreachable", strings.Join(unreachable, ","))
		}
		if err == nil && remote != "" {
			q := url.Values{"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
			if format != "" {
				q.Set("format", format)
			}
			a.proxyGet(w, r, remote, "/api/v1/cameras/"+camera+"/export?"+q.Encode(), recorder.AuditExported, "camera/"+camera+"/export",
				map[string]string{"camera": camera, "start": recorder.FormatTime(start), "end": recorder.FormatTime(end), "format": format})
			return
		}
	} else {
		x, err = a.planner.Plan(req)
	}
	if err != nil {
		a.integrityFailed(r, recorder.AuditExported, "camera/"+camera+"/export", map[string]string{
			"camera": camera, "start": recorder.FormatTime(start), "end": recorder.FormatTime(end), "format": format,
		}, err)
		a.fail(w, r, err)
		return
	}
	gaps, _ := json.Marshal(recorder.ManifestGaps(x.Gaps))
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("ETag", x.ETag)
	h.Set("X-Vigil-Gaps", string(gaps))
	h.Set("X-Vigil-From", recorder.FormatTime(x.From))
	h.Set("Content-Disposition", `attachment; filename="`+exportFileName(x)+`"`)
	rd := x.Reader()
	rd.Strict = r.Header.Get("Range") != ""
	rd.SpoolDir = a.opts.TempDir
	defer rd.Close()
	aw := a.auditWriter(w, r)
	serveContent(aw, r, time.Time{}, rd)
	detail := map[string]string{
		"camera": camera, "start": recorder.FormatTime(x.Start), "end": recorder.FormatTime(x.End),
		"from": recorder.FormatTime(x.From), "format": x.Format, "segments": strconv.Itoa(len(x.Segments)),
		"export_etag": x.ETag,
	}
	re := (*recorder.RemoteSourceError)(nil)
	if errors.As(rd.Err(), &re) {
		detail["holder_check"] = a.holderCheck(r.Context(), re)
	}
	a.audit(r, aw, recorder.AuditExported, "camera/"+camera+"/export", detail, rd.Err())
	if errors.Is(rd.Err(), recorder.ErrIntegrity) {
		a.abortIntegrity(rd.Err())
	}
	if re != nil {
		a.mismatches.Inc()
		a.log.Error("export aborted: another node's segment is not what it listed; nothing of it was sent",
			"camera", camera, "node", re.Node, "segment", re.Segment, "reason", re.Reason, "holder_check", detail["holder_check"])
		panic(http.ErrAbortHandler) // no terminator: the client sees a failed transfer
	}
	if rd.Err() != nil {
		a.log.Error("export aborted", "camera", camera, "error", rd.Err())
		// The headers promised a length the body will not reach: drop
		// the connection so the client sees a failed transfer.
		panic(http.ErrAbortHandler)
	}
}

// MaxRange is the longest range one export may span (export.max_range as
// the API was built with).
func (a *Server) MaxRange() time.Duration { return a.opts.MaxRange }

func exportFileName(x *recorder.Export) string {
	ext := ".mp4"
	if x.Format == recorder.FormatFMP4 {
		ext = ".fmp4.mp4"
	}
	return x.Camera + "_" + x.From.UTC().Format("20060102T150405Z") + "_" + x.End.UTC().Format("20060102T150405Z") + ext
}

func (a *Server) serveManifest(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	req, err := recorder.ParseExportQuery(camera, r.URL.Query(), a.opts.MaxRange)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.clustered(r) {
		a.serveManifestCluster(w, r, req)
		return
	}
	x, err := a.planner.Plan(req)
	if err != nil {
		a.opts.Catalog.ReportDamaged(err)
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, x.Manifest())
}

// audit records a finished transfer. HEAD requests and answers without a
// body (304, 412, 416) are not retrievals and are not recorded.
//
// Another node's request is not recorded here: the node that passes the
// footage on records it under the investigator's name (with the node), and
// hashing it twice would cost a cluster export a third of its speed.
func (a *Server) audit(r *http.Request, aw *auditWriter, action, object string, detail map[string]string, failure error) {
	if aw.h == nil || r.Method == http.MethodHead || (aw.status != http.StatusOK && aw.status != http.StatusPartialContent) {
		return
	}
	detail["bytes"] = strconv.FormatInt(aw.n, 10)
	detail["sha256"] = hex.EncodeToString(aw.h.Sum(nil))
	detail["status"] = strconv.Itoa(aw.status)
	if rg := r.Header.Get("Range"); rg != "" && aw.status == http.StatusPartialContent {
		detail["range"] = auditRange(rg)
		if len(rg) > maxAuditRange {
			detail["range_bytes"] = strconv.Itoa(len(rg))
		}
	}
	detail["complete"] = "true"
	if failure != nil {
		detail["complete"] = "false"
		detail["error"] = failure.Error()
		if errors.Is(failure, recorder.ErrIntegrity) {
			detail["integrity"] = "failed"
		}
		if re := (*recorder.RemoteSourceError)(nil); errors.As(failure, &re) {
			detail["integrity"] = "failed"
			detail["failed_node"], detail["failed_segment"] = re.Node, re.Segment
		}
	}
	e := recorder.AuditEntry{At: a.opts.Now().UTC(), By: a.opts.Actor(r), Action: action, Object: object, Detail: detail}
	if err := a.opts.Audit.Audit(r.Context(), e); err != nil {
		a.log.Error("audit failed", "action", action, "object", object, "error", err)
	}
}

// fail answers err as a JSON error: bad input 400, nothing there 404,
// anything else 500 with a generic message (logged here).
func (a *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *recorder.RequestError
	switch {
	case errors.As(err, &re):
		httpx.Error(w, http.StatusBadRequest, re.Code, re.Msg)
	case errors.Is(err, recorder.ErrBadCameraID):
		httpx.Error(w, http.StatusBadRequest, "bad_camera_id", "invalid camera id")
	case errors.Is(err, recorder.ErrBadSegmentID):
		httpx.Error(w, http.StatusBadRequest, "bad_segment", "invalid segment id")
	case errors.Is(err, recorder.ErrNoFootage):
		httpx.Error(w, http.StatusNotFound, "no_footage", "no recordings in the range")
	case errors.Is(err, fs.ErrNotExist):
		httpx.Error(w, http.StatusNotFound, "not_found", "no such recording")
	case errors.As(err, new(*recorder.IntegrityError)):
		var ie *recorder.IntegrityError
		errors.As(err, &ie)
		httpx.Error(w, http.StatusConflict, "integrity", fmt.Sprintf(
			"segment %s of camera %s failed its integrity check (%s); it is listed as damaged and a recording_tampered alert was raised",
			ie.Segment, ie.Camera, ie.Reason))
	case errors.As(err, new(*NodeFootageError)), errors.As(err, new(*recorder.RemoteSourceError)):
		httpx.Error(w, http.StatusBadGateway, "node_footage", err.Error())
	case errors.Is(err, recorder.ErrSourceChanged):
		httpx.Error(w, http.StatusConflict, "source_changed", "a recording of the range was removed or changed; retry")
	default:
		a.log.Error("request failed", "path", r.URL.Path, "error", err)
		httpx.Error(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// auditWriter hashes and counts the body as it is sent.
type auditWriter struct {
	http.ResponseWriter
	h      hash.Hash
	n      int64
	status int
}

// auditWriter wraps w for r; for another node's request (not audited
// here) it only counts.
func (a *Server) auditWriter(w http.ResponseWriter, r *http.Request) *auditWriter {
	aw := &auditWriter{ResponseWriter: w}
	if !a.opts.Local(r) {
		aw.h = sha256.New()
	}
	return aw
}

func (w *auditWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	if w.h != nil {
		w.h.Write(p[:n])
	}
	w.n += int64(n)
	return n, err
}

// ReadFrom copies in large blocks, fewer system calls than io.Copy's
// 32 KiB, and hashes each block on another goroutine while the next is read
// and sent: SHA-256 without CPU support is as slow as the rest together.
func (w *auditWriter) ReadFrom(r io.Reader) (int64, error) {
	const blocks, size = 3, 512 << 10
	free := make(chan []byte, blocks)
	for range blocks {
		free <- make([]byte, size)
	}
	full := make(chan []byte, blocks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range full {
			if w.h != nil {
				w.h.Write(b)
			}
			free <- b[:cap(b)]
		}
	}()
	var total int64
	var err error
	for {
		buf := <-free
		n, rerr := r.Read(buf)
		if n > 0 {
			if w.status == 0 {
				w.status = http.StatusOK
			}
			m, werr := w.ResponseWriter.Write(buf[:n])
			total += int64(m)
			full <- buf[:m]
			if werr != nil {
				err = werr
				break
			}
		} else {
			free <- buf
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	close(full)
	<-done
	w.n += total
	return total, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
