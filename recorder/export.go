package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Export formats.
const (
	FormatMP4  = "mp4"  // progressive MP4, moov before mdat: plays at once
	FormatFMP4 = "fmp4" // fragmented MP4: the recorded parts, rebased
)

// DefaultMaxExportRange is the longest range one export covers unless
// configured otherwise.
const DefaultMaxExportRange = 2 * time.Hour

// Errors of export planning; RequestError and these map to HTTP statuses.
var (
	// ErrNoFootage means the range holds no recorded media.
	ErrNoFootage = errors.New("no recordings in range")
	// ErrSourceChanged means a source segment disappeared or changed size
	// after the export was planned (retention deleted it, most likely).
	ErrSourceChanged = errors.New("source segment changed or removed during export")
)

// RequestError is bad input from the caller: a malformed or too long
// range, an unknown format, an export that cannot be represented.
type RequestError struct {
	Code string // machine-readable: bad_range, range_too_long, bad_format, ...
	Msg  string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(code, format string, args ...any) error {
	return &RequestError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ExportRequest selects what to export.
type ExportRequest struct {
	Camera string
	Start  time.Time
	End    time.Time
	Format string // FormatMP4 (default) or FormatFMP4
	// MaxRange bounds End-Start; zero means DefaultMaxExportRange.
	MaxRange time.Duration
}

// Export is a planned export: the file it produces is fully determined
// (size, layout, sources) before its first byte is written, so it can be
// served with a Content-Length, ranges and an ETag. The media bytes are
// read from the source segments only while the export is read; a source
// that is removed or changed meanwhile fails the read with ErrSourceChanged.
type Export struct {
	Camera string
	Start  time.Time // requested
	End    time.Time // requested
	From   time.Time // the keyframe the export starts at (at or before Start)
	Until  time.Time // end of the last exported sample
	Format string
	// Segments are the source segments the export reads, oldest first.
	Segments []Segment
	// Gaps are the spans of the range without recording, including a
	// missing beginning or end of the range.
	Gaps []Gap
	// Frames is the number of video frames exported.
	Frames int
	// Size is the length of the exported file in bytes.
	Size int64
	// ETag identifies the exported bytes: the same sources, range and format
	// always produce the same file.
	ETag string

	chunks []chunk
	starts []int64 // starts[i] is the offset of chunks[i] in the file
	// trackStart is, per track of the init, where its first sample lies
	// after From, in the track's time scale.
	trackStart []uint64
	comment    string // the file's comment tag: camera, range, gaps
	// lastChunk[i] is the index of the last chunk read from Segments[i]:
	// the source is verified whole before that chunk is handed out.
	lastChunk []int
	cat       *Catalog // told of sources that fail their check; may be nil
	// remote[i], when set, is Segments[i] of another node (PlanExportOf).
	remote []*ExportSource
}

// chunk is a piece of the exported file: bytes in memory (boxes written by
// the export) or a range of a source segment (media samples, copied as
// recorded).
type chunk struct {
	mem []byte
	src int // index into Export.Segments, when mem is nil
	off int64
	n   int64
}

func (c chunk) len() int64 {
	if c.mem != nil {
		return int64(len(c.mem))
	}
	return c.n
}

// srcSample is one sample of a source segment, located in its file.
type srcSample struct {
	off  int64
	size uint32
	dur  uint32
	cts  int32
	sync bool
	wall int64 // Unix nanoseconds: keeps the table free of pointers for the GC
}

// srcPart is the samples of one source part, per track (in init order).
type srcPart struct {
	tracks [][]srcSample
}

// srcSegment is a scanned source segment.
type srcSegment struct {
	seg   Segment
	init  fmp4.Init
	moov  []byte // the init's moov box as recorded
	parts []srcPart
}

// PlanExport checks req against the catalog and lays out the exported
// file. It reads the sources' init and fragment headers, not their media.
func PlanExport(cat *Catalog, req ExportRequest) (*Export, error) {
	return planExport(cat, req, nil)
}

func planExport(cat *Catalog, req ExportRequest, cache *exportCache) (*Export, error) {
	if err := checkExportRequest(&req); err != nil {
		return nil, err
	}
	segs, gaps, err := cat.list(req.Camera, req.Start, req.End)
	if err != nil {
		return nil, err
	}
	return planSegments(cat, req, segs, gaps, cache.scan, false)
}

// PlanExportOf lays out the export of req from srcs, the segments of the
// camera that several cluster nodes recorded: this node's files (Path
// set), planned from their fragment headers like any export, and other
// nodes' segments, planned from their boxes; none of their media is read
// before the export is. Where two segments overlap in time, the one with
// the higher lease epoch supplies the overlapping time: the lower one's
// samples stop where the higher one begins, or start again at its first
// keyframe after the higher one ends. The gaps are the spans of the range
// no segment covers.
//
// The export's reader receives each other node's segment whole (a few
// ahead of the one it sends) and hands out none of its bytes before they
// match the size and SHA-256 that node listed and their boxes match the
// ones planned from; otherwise reading fails with a *RemoteSourceError.
// The file's header (moov or each fragment's moof) is built from the
// boxes: a client that reads the whole file either gets one whose every
// source matched, or an error.
func PlanExportOf(req ExportRequest, srcs []ExportSource) (*Export, error) {
	if err := checkExportRequest(&req); err != nil {
		return nil, err
	}
	segs := make([]Segment, len(srcs))
	byKey := make(map[string]*ExportSource, len(srcs))
	for i := range srcs {
		segs[i] = srcs[i].Segment
		if srcs[i].Path == "" {
			if srcs[i].Boxes == nil || srcs[i].Fetch == nil {
				return nil, fmt.Errorf("camera %s: segment %s of node %s: neither a file nor boxes and a fetch", req.Camera, srcs[i].ID, srcs[i].Node)
			}
			byKey[srcs[i].Node+"/"+srcs[i].ID] = &srcs[i]
		}
	}
	slices.SortStableFunc(segs, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	scan := func(s Segment, prev *srcSegment, scratch *[]byte) (*srcSegment, error) {
		if rs := byKey[s.Node+"/"+s.ID]; rs != nil && s.Path == "" {
			return scanSource(rs.Boxes, s, prev, scratch)
		}
		return scanExportSource(s, prev, scratch)
	}
	x, err := planSegments(nil, req, segs, CoverGaps(req.Start, req.End, segs), scan, true)
	if err != nil {
		return nil, err
	}
	for i, s := range x.Segments {
		if rs := byKey[s.Node+"/"+s.ID]; rs != nil && s.Path == "" {
			if x.remote == nil {
				x.remote = make([]*ExportSource, len(x.Segments))
			}
			x.remote[i] = rs
		}
	}
	return x, nil
}

// CoverGaps returns the spans of [start, end) that no segment of segs
// (oldest first, possibly overlapping) covers.
func CoverGaps(start, end time.Time, segs []Segment) []Gap {
	var out []Gap
	cover := start
	for _, s := range segs {
		if !s.End.After(start) || !s.Start.Before(end) {
			continue
		}
		if s.Start.After(cover) {
			out = append(out, Gap{Start: cover, End: s.Start})
		}
		if s.End.After(cover) {
			cover = s.End
		}
	}
	if cover.Before(end) {
		out = append(out, Gap{Start: cover, End: end})
	}
	return out
}

// planSegments plans req from segs; with byEpoch, overlapping segments are
// trimmed as PlanExportOf says and gaps are already the range's.
func planSegments(cat *Catalog, req ExportRequest, segs []Segment, gaps []Gap, scan func(Segment, *srcSegment, *[]byte) (*srcSegment, error), byEpoch bool) (*Export, error) {
	segs = slices.DeleteFunc(segs, func(s Segment) bool { return !s.Start.Before(req.End) || !s.End.After(req.Start) })
	if len(segs) == 0 {
		return nil, fmt.Errorf("camera %s: %s – %s: %w", req.Camera, formatTime(req.Start), formatTime(req.End), ErrNoFootage)
	}
	for _, s := range segs {
		if s.Damage != "" {
			return nil, &IntegrityError{Camera: req.Camera, Segment: s.ID, Reason: s.Damage, Known: true}
		}
	}
	x := &Export{Camera: req.Camera, Start: req.Start, End: req.End, Format: req.Format, cat: cat}
	srcs := make([]*srcSegment, 0, len(segs))
	var scratch []byte
	var prev *srcSegment
	for _, s := range segs {
		src, err := scan(s, prev, &scratch)
		if err != nil {
			if cat != nil {
				cat.ReportDamaged(err)
			}
			return nil, fmt.Errorf("camera %s: export: %w", req.Camera, err)
		}
		if len(srcs) > 0 && !sameTracks(&srcs[0].init, &src.init) {
			return nil, badRequest("parameters_changed", "camera %s: the stream parameters change at segment %s; export the ranges before and after it separately", req.Camera, s.ID)
		}
		srcs = append(srcs, src)
		prev = src
	}
	var bounds []window
	if byEpoch {
		x.Gaps = gaps
		bounds = epochWindows(srcs)
	} else {
		x.Gaps = rangeGaps(req.Start, req.End, segs, gaps)
	}
	if err := x.selectSamples(srcs, bounds); err != nil {
		return nil, err
	}
	return x, nil
}

func checkExportRequest(req *ExportRequest) error {
	if !ValidCameraID(req.Camera) {
		return badRequest("bad_camera_id", "invalid camera id %q", req.Camera)
	}
	switch req.Format {
	case "":
		req.Format = FormatMP4
	case FormatMP4, FormatFMP4:
	default:
		return badRequest("bad_format", "format %q: must be mp4 or fmp4", req.Format)
	}
	if req.MaxRange <= 0 {
		req.MaxRange = DefaultMaxExportRange
	}
	if req.Start.IsZero() || req.End.IsZero() {
		return badRequest("bad_range", "start and end are required")
	}
	if !req.End.After(req.Start) {
		return badRequest("bad_range", "empty range: end %s is not after start %s", formatTime(req.End), formatTime(req.Start))
	}
	if d := req.End.Sub(req.Start); d > req.MaxRange {
		return badRequest("range_too_long", "range of %v exceeds the export limit of %v", d, req.MaxRange)
	}
	return nil
}

// rangeGaps adds to the catalog's gaps a missing beginning and end of the range.
func rangeGaps(start, end time.Time, segs []Segment, between []Gap) []Gap {
	var out []Gap
	if len(segs) > 0 && segs[0].Start.After(start) {
		out = append(out, Gap{Start: start, End: segs[0].Start})
	}
	for _, g := range between {
		if g.End.After(start) && g.Start.Before(end) {
			out = append(out, g)
		}
	}
	if len(segs) > 0 && segs[len(segs)-1].End.Before(end) {
		out = append(out, Gap{Start: segs[len(segs)-1].End, End: end})
	}
	return out
}

func sameTracks(a, b *fmp4.Init) bool {
	if len(a.Tracks) != len(b.Tracks) {
		return false
	}
	for i := range a.Tracks {
		ta, tb := a.Tracks[i], b.Tracks[i]
		if ta.ID != tb.ID || ta.TimeScale != tb.TimeScale || !reflect.DeepEqual(ta.Codec, tb.Codec) {
			return false
		}
	}
	return true
}

func isVideo(c codecs.Codec) bool {
	switch c.(type) {
	case *codecs.H264, *codecs.H265, *codecs.AV1, *codecs.VP9, *codecs.MPEG4Video, *codecs.MPEG1Video, *codecs.MJPEG:
		return true
	}
	return false
}

// window bounds the samples taken from one source, wall time in Unix
// nanoseconds, [lo, hi).
type window struct{ lo, hi int64 }

// epochWindows trims overlapping sources (oldest first) so that the one
// with the higher epoch supplies the overlapping time: an earlier, lower
// one stops where the higher one starts; a later, lower one starts again
// at its first keyframe after the higher one ends (none: it gives
// nothing). At equal epochs the later source wins, as it does at a
// hand-over.
func epochWindows(srcs []*srcSegment) []window {
	w := make([]window, len(srcs))
	for i := range w {
		w[i] = window{lo: math.MinInt64, hi: math.MaxInt64}
	}
	for i, a := range srcs {
		for j := i + 1; j < len(srcs) && srcs[j].seg.Start.Before(a.seg.End); j++ {
			b := srcs[j]
			if b.seg.Epoch >= a.seg.Epoch {
				w[i].hi = min(w[i].hi, b.seg.Start.UnixNano())
				continue
			}
			w[j].lo = max(w[j].lo, firstKeyframeFrom(b, a.seg.End.UnixNano()))
		}
	}
	return w
}

// firstKeyframeFrom is the wall time of src's first video keyframe at or
// after t, or math.MaxInt64.
func firstKeyframeFrom(src *srcSegment, t int64) int64 {
	video := -1
	for i, tr := range src.init.Tracks {
		if isVideo(tr.Codec) {
			video = i
			break
		}
	}
	if video < 0 {
		return math.MaxInt64
	}
	for _, p := range src.parts {
		for _, s := range p.tracks[video] {
			if s.sync && s.wall >= t {
				return s.wall
			}
		}
	}
	return math.MaxInt64
}

// selectSamples picks the samples of [keyframe at or before Start, End),
// each source's within its window when bounds is set, and lays out the
// file.
func (x *Export) selectSamples(srcs []*srcSegment, bounds []window) error {
	in := func(i int, wall int64) bool {
		return bounds == nil || (wall >= bounds[i].lo && wall < bounds[i].hi)
	}
	init := &srcs[0].init
	video := -1
	for i, t := range init.Tracks {
		if isVideo(t.Codec) {
			video = i
			break
		}
	}
	if video < 0 {
		return badRequest("no_video", "camera %s: the recordings hold no video track", x.Camera)
	}
	// The last keyframe at or before Start; when Start is before the
	// recording, the first keyframe.
	const none = math.MinInt64
	from, first, start := int64(none), int64(none), x.Start.UnixNano()
	for i, src := range srcs {
		for _, p := range src.parts {
			for _, s := range p.tracks[video] {
				if !s.sync || !in(i, s.wall) {
					continue
				}
				if first == none {
					first = s.wall
				}
				if s.wall <= start {
					from = s.wall
				}
			}
		}
	}
	if from == none {
		from = first
	}
	end := x.End.UnixNano()
	if from == none || from >= end {
		return fmt.Errorf("camera %s: no keyframe in range: %w", x.Camera, ErrNoFootage)
	}
	x.From = time.Unix(0, from).UTC()

	type outPart struct {
		src    int
		tracks [][]srcSample
	}
	var parts []outPart
	used := make([]bool, len(srcs))
	for i, src := range srcs {
		for _, p := range src.parts {
			op := outPart{src: i, tracks: make([][]srcSample, len(p.tracks))}
			n := 0
			for ti, samples := range p.tracks {
				// samples run in decode order: the range is one sub-slice
				lo, hi := 0, len(samples)
				sfrom, send := from, end
				if bounds != nil {
					sfrom, send = max(from, bounds[i].lo), min(end, bounds[i].hi)
				}
				for lo < hi && samples[lo].wall < sfrom {
					lo++
				}
				for hi > lo && samples[hi-1].wall >= send {
					hi--
				}
				op.tracks[ti] = samples[lo:hi:hi]
				n += hi - lo
			}
			if n > 0 {
				parts = append(parts, op)
				used[i] = true
			}
		}
	}
	// Keep only the segments that contribute, renumbering sources.
	remap := make([]int, len(srcs))
	for i, src := range srcs {
		if used[i] {
			remap[i] = len(x.Segments)
			x.Segments = append(x.Segments, src.seg)
		}
	}
	for i := range parts {
		parts[i].src = remap[parts[i].src]
	}
	// Time t in the file is From+t, across gaps too: each sample lasts until
	// the next one of its track begins (the frame before a gap is held), and
	// a track that begins after From (audio) starts at its offset, so the
	// audio keeps the offset to the video it had in the segments. The
	// scanned samples are shared with other exports: retimed ones are
	// copies.
	x.trackStart = make([]uint64, len(init.Tracks))
	for ti, it := range init.Tracks {
		ts := int64(it.TimeScale)
		at := func(wall int64) int64 { return ((wall-from)*ts + 5e8) / 1e9 }
		var last *srcSample
		for pi := range parts {
			ss := slices.Clone(parts[pi].tracks[ti])
			parts[pi].tracks[ti] = ss
			for k := range ss {
				s := &ss[k]
				if last == nil {
					x.trackStart[ti] = uint64(max(at(s.wall), 0))
				} else if d := at(s.wall) - at(last.wall); d > 0 && d < 1<<32 {
					last.dur = uint32(d)
				}
				last = s
			}
		}
	}
	for _, p := range parts {
		x.Frames += len(p.tracks[video])
		if vs := p.tracks[video]; len(vs) > 0 {
			last := vs[len(vs)-1]
			x.Until = time.Unix(0, last.wall).UTC().Add(ticksToDuration(uint64(last.dur), uint64(init.Tracks[video].TimeScale)))
		}
	}

	x.comment = exportComment(x)
	var err error
	switch x.Format {
	case FormatFMP4:
		err = x.layoutFMP4(init, len(parts), func(i int) (int, [][]srcSample) { return parts[i].src, parts[i].tracks })
	default:
		err = x.layoutMP4(srcs[0].moov, init, len(parts), func(i int) (int, [][]srcSample) { return parts[i].src, parts[i].tracks })
	}
	if err != nil {
		return err
	}
	x.starts = make([]int64, len(x.chunks))
	var off int64
	for i, c := range x.chunks {
		x.starts[i] = off
		off += c.len()
	}
	x.Size = off
	x.lastChunk = make([]int, len(x.Segments))
	for i, c := range x.chunks {
		if c.mem == nil {
			x.lastChunk[c.src] = i
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", x.Format, x.Camera, formatTime(x.From), formatTime(x.End))
	for _, s := range x.Segments {
		fmt.Fprintf(h, "%s %s\n", s.ID, s.SHA256)
	}
	x.ETag = `"x-` + hex.EncodeToString(h.Sum(nil))[:40] + `"`
	return nil
}

func (x *Export) addFile(src int, off int64, n int64) {
	if k := len(x.chunks) - 1; k >= 0 && x.chunks[k].mem == nil && x.chunks[k].src == src && x.chunks[k].off+x.chunks[k].n == off {
		x.chunks[k].n += n
		return
	}
	x.chunks = append(x.chunks, chunk{src: src, off: off, n: n})
}

func (x *Export) addMem(b []byte) {
	x.chunks = append(x.chunks, chunk{mem: b})
}

// layoutMP4 lays out a progressive MP4: ftyp and moov (moov first, so that
// it plays at once), then one mdat whose samples are ranges of the source
// files, one chunk per track and source part.
func (x *Export) layoutMP4(srcMoov []byte, init *fmp4.Init, nparts int, part func(int) (int, [][]srcSample)) error {
	tracks := make([]*mp4Track, len(init.Tracks))
	for ti, it := range init.Tracks {
		tracks[ti] = &mp4Track{id: uint32(it.ID), timeScale: it.TimeScale, start: x.trackStart[ti]}
	}
	var dataSize int64
	counts := make([]int, len(tracks))
	chunks := make([]int, len(tracks))
	for i := range nparts {
		_, ts := part(i)
		for ti, samples := range ts {
			counts[ti] += len(samples)
			chunks[ti]++
		}
	}
	total := 0
	for ti, t := range tracks {
		t.samples = make([]srcSample, 0, counts[ti])
		t.chunkN = make([]uint32, 0, chunks[ti])
		t.chunkOff = make([]int64, 0, chunks[ti])
		total += counts[ti]
	}
	x.chunks = slices.Grow(x.chunks, 1+nparts)
	for i := range nparts {
		_, ts := part(i)
		for ti, samples := range ts {
			if len(samples) == 0 {
				continue
			}
			t := tracks[ti]
			t.chunkN = append(t.chunkN, uint32(len(samples)))
			t.chunkOff = append(t.chunkOff, dataSize)
			t.samples = append(t.samples, samples...)
			for _, s := range samples {
				dataSize += int64(s.size)
			}
		}
	}
	used := tracks[:0]
	for _, t := range tracks {
		if len(t.samples) > 0 {
			used = append(used, t)
		}
	}
	head, err := buildMoov(srcMoov, used, dataSize, total, x.From, x.comment)
	if err != nil {
		return fmt.Errorf("camera %s: export: mp4 header: %w", x.Camera, err)
	}
	x.addMem(head)
	for i := range nparts {
		src, ts := part(i)
		for _, samples := range ts {
			for _, s := range samples {
				x.addFile(src, s.off, int64(s.size))
			}
		}
	}
	return nil
}

// layoutFMP4 lays out a fragmented MP4: the init of the first source, then
// one fragment per source part with decode times rebased so that they run
// on without a jump across segments and gaps.
func (x *Export) layoutFMP4(init *fmp4.Init, nparts int, part func(int) (int, [][]srcSample)) error {
	var buf seekBuffer
	if err := init.Marshal(&buf); err != nil {
		return fmt.Errorf("camera %s: export: init: %w", x.Camera, err)
	}
	head, err := withMovieTags(buf.b, x.From, x.comment)
	if err != nil {
		return fmt.Errorf("camera %s: export: init: %w", x.Camera, err)
	}
	x.addMem(head)
	base := slices.Clone(x.trackStart)
	for i := range nparts {
		src, tracks := part(i)
		moof := appendMoof(nil, uint32(i+1), init, base, tracks)
		x.addMem(moof)
		for ti, samples := range tracks {
			for _, s := range samples {
				x.addFile(src, s.off, int64(s.size))
				base[ti] += uint64(s.dur)
			}
		}
	}
	return nil
}

// appendMoof writes the moof box of one fragment and the header of its
// mdat. Media data follows in track order.
func appendMoof(b []byte, seq uint32, init *fmp4.Init, base []uint64, tracks [][]srcSample) []byte {
	be := binary.BigEndian
	start := len(b)
	b = be.AppendUint32(b, 0) // size, patched
	b = append(b, "moof"...)
	b = be.AppendUint32(b, 16)
	b = append(b, "mfhd"...)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, seq)
	var offsetFields []int
	for ti, samples := range tracks {
		if len(samples) == 0 {
			continue
		}
		flags := uint32(0x000001 | 0x000100 | 0x000200) // data offset, duration, size
		for _, s := range samples {
			if !s.sync {
				flags |= 0x000400
			}
			if s.cts != 0 {
				flags |= 0x000800
			}
		}
		per := 8
		if flags&0x400 != 0 {
			per += 4
		}
		if flags&0x800 != 0 {
			per += 4
		}
		trunSize := 20 + per*len(samples)
		trafSize := 8 + 16 + 20 + trunSize
		b = be.AppendUint32(b, uint32(trafSize))
		b = append(b, "traf"...)
		b = be.AppendUint32(b, 16)
		b = append(b, "tfhd"...)
		b = be.AppendUint32(b, 0x020000) // default-base-is-moof
		b = be.AppendUint32(b, uint32(init.Tracks[ti].ID))
		b = be.AppendUint32(b, 20)
		b = append(b, "tfdt"...)
		b = be.AppendUint32(b, 1<<24)
		b = be.AppendUint64(b, base[ti])
		b = be.AppendUint32(b, uint32(trunSize))
		b = append(b, "trun"...)
		b = be.AppendUint32(b, 1<<24|flags)
		b = be.AppendUint32(b, uint32(len(samples)))
		offsetFields = append(offsetFields, len(b))
		b = be.AppendUint32(b, 0) // data offset, patched
		for _, s := range samples {
			b = be.AppendUint32(b, s.dur)
			b = be.AppendUint32(b, s.size)
			if flags&0x400 != 0 {
				if s.sync {
					b = be.AppendUint32(b, 0)
				} else {
					b = be.AppendUint32(b, 1<<16) // sample_is_non_sync_sample
				}
			}
			if flags&0x800 != 0 {
				b = be.AppendUint32(b, uint32(s.cts))
			}
		}
	}
	moofSize := len(b) - start
	be.PutUint32(b[start:], uint32(moofSize))
	data := uint32(moofSize + 8)
	k := 0
	var mdat uint64
	for _, samples := range tracks {
		if len(samples) == 0 {
			continue
		}
		be.PutUint32(b[offsetFields[k]:], data)
		k++
		for _, s := range samples {
			data += s.size
			mdat += uint64(s.size)
		}
	}
	b = be.AppendUint32(b, uint32(8+mdat))
	return append(b, "mdat"...)
}

// seekBuffer is an in-memory io.WriteSeeker for fmp4.Init.Marshal.
type seekBuffer struct {
	b   []byte
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += int64(s.pos)
	case io.SeekEnd:
		off += int64(len(s.b))
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	s.pos = int(off)
	return off, nil
}

// scanExportSource reads a source segment's init and fragment headers.
func scanExportSource(seg Segment, prev *srcSegment, scratch *[]byte) (*srcSegment, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		// indexed but gone: retention removed it after the listing
		return nil, fmt.Errorf("segment %s: %v: %w", seg.ID, err, ErrSourceChanged)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", seg.ID, err)
	}
	// the segment being written grows past what was listed of it
	if st.Size() != seg.Bytes && !(seg.Open && st.Size() > seg.Bytes) {
		return nil, sizeMismatch(seg, st.Size())
	}
	return scanSource(f, seg, prev, scratch)
}

// scanSource reads the init and fragment headers of seg's first seg.Bytes
// bytes from f: a segment file here, or another node's segment's boxes
// (SegmentBoxes).
func scanSource(f io.ReaderAt, seg Segment, prev *srcSegment, scratch *[]byte) (*srcSegment, error) {
	src := &srcSegment{seg: seg}
	size := seg.Bytes
	head := make([]byte, 16)
	var off int64
	var initEnd int64 = -1
	for off+8 <= size {
		if _, err := f.ReadAt(head[:8], off); err != nil {
			return nil, fmt.Errorf("segment %s: box at %d: %w", seg.ID, off, err)
		}
		boxSize := int64(binary.BigEndian.Uint32(head))
		typ := string(head[4:8])
		hdr := int64(8)
		if boxSize == 1 {
			if _, err := f.ReadAt(head[:16], off); err != nil {
				return nil, fmt.Errorf("segment %s: box at %d: %w", seg.ID, off, err)
			}
			boxSize, hdr = int64(binary.BigEndian.Uint64(head[8:])), 16
		}
		if boxSize < hdr || off+boxSize > size {
			return nil, fmt.Errorf("segment %s: box %q at %d: bad size %d", seg.ID, typ, off, boxSize)
		}
		switch typ {
		case "moov":
			initEnd = off + boxSize
			b := make([]byte, initEnd)
			if _, err := f.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("segment %s: init: %w", seg.ID, err)
			}
			src.moov = b[off:]
			if prev != nil && bytes.Equal(prev.moov, src.moov) {
				src.init = prev.init // the same camera session: skip the slow decoder
			} else if err := src.init.Unmarshal(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("segment %s: init: %w", seg.ID, err)
			}
		case "moof":
			if initEnd < 0 {
				return nil, fmt.Errorf("segment %s: fragment before init", seg.ID)
			}
			// One read covers the moof and the header of its mdat.
			n := boxSize + 8
			if off+n > size {
				return nil, fmt.Errorf("segment %s: fragment at %d: no mdat", seg.ID, off)
			}
			if int64(cap(*scratch)) < n {
				*scratch = make([]byte, n+n/2)
			}
			buf := (*scratch)[:n]
			if _, err := f.ReadAt(buf, off); err != nil {
				return nil, fmt.Errorf("segment %s: fragment at %d: %w", seg.ID, off, err)
			}
			mh := buf[boxSize:]
			mdatSize := int64(binary.BigEndian.Uint32(mh))
			if string(mh[4:]) != "mdat" || mdatSize < 8 || off+boxSize+mdatSize > size {
				return nil, fmt.Errorf("segment %s: fragment at %d: no complete mdat", seg.ID, off)
			}
			sp, err := parseMoof(buf[:boxSize], off, off+boxSize+8, off+boxSize+mdatSize, &src.init, seg.Start)
			if err != nil {
				return nil, fmt.Errorf("segment %s: fragment at %d: %w", seg.ID, off, err)
			}
			src.parts = append(src.parts, sp)
			boxSize += mdatSize
		}
		off += boxSize
	}
	if initEnd < 0 {
		return nil, fmt.Errorf("segment %s: no init (moov)", seg.ID)
	}
	return src, nil
}

func trackIndex(init *fmp4.Init, id int) int {
	for i, t := range init.Tracks {
		if t.ID == id {
			return i
		}
	}
	return -1
}

// Reader returns a reader of the exported file. It opens the source
// segments as it reaches them and checks each one's SHA-256 as it reads
// it: the bytes of a source are hashed front to back up to what is read,
// and the source is hashed whole, and compared with its index line, before
// its last chunk is handed out. Close closes the one open.
func (x *Export) Reader() *ExportReader {
	return &ExportReader{x: x, cur: -1, fetches: make(map[int]*fetched), spare: make(chan []byte, fetchAhead+1), memLimit: maxMemSource}
}

// ExportReader reads an Export's file: an io.ReadSeeker for
// http.ServeContent and an io.WriterTo for copying it whole.
type ExportReader struct {
	x   *Export
	pos int64
	v   *verifiedFile
	cur int // index of the source v holds
	// next is hashing the source after cur, if any.
	next *verifyAhead
	err  error
	// Strict verifies each source whole when it is opened, before any of
	// its bytes are handed out: for readers that may stop anywhere
	// (a Range request), where "before its last chunk" is not enough.
	// Other nodes' sources are always checked so.
	Strict bool
	// SpoolDir holds other nodes' sources too large to hold in memory
	// while they are sent; default os.TempDir().
	SpoolDir string
	// rem is the other node's source cur, received and checked; fetches
	// are the ones being received, by source index.
	rem     *fetched
	fetches map[int]*fetched
	spare   chan []byte // buffers of received sources, for reuse
	// memLimit is the largest source received into memory (maxMemSource).
	memLimit int64
}

// Read implements io.Reader. A source segment that is missing fails it
// with an error wrapping ErrSourceChanged; one whose bytes no longer match
// its index line with an *IntegrityError (errors.Is ErrIntegrity).
func (r *ExportReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.pos >= r.x.Size {
		return 0, io.EOF
	}
	i := sort.Search(len(r.x.starts), func(i int) bool { return r.x.starts[i] > r.pos }) - 1
	c := r.x.chunks[i]
	in := r.pos - r.x.starts[i]
	want := min(int64(len(p)), c.len()-in)
	if c.mem != nil {
		n := copy(p[:want], c.mem[in:])
		r.pos += int64(n)
		return n, nil
	}
	if err := r.open(c.src); err != nil {
		r.fail(err)
		return 0, err
	}
	var n int
	var err error
	if r.rem != nil {
		n, err = r.rem.ReadAt(p[:want], c.off+in)
	} else {
		n, err = r.v.readAt(p[:want], c.off+in, r.Strict || i == r.x.lastChunk[c.src])
	}
	if errors.Is(err, ErrIntegrity) {
		r.fail(err)
		return 0, err
	}
	r.pos += int64(n)
	if err != nil && n < int(want) {
		seg := r.x.Segments[c.src]
		r.err = fmt.Errorf("camera %s: segment %s: read: %v: %w", r.x.Camera, seg.ID, err, ErrSourceChanged)
		return n, r.err
	}
	return n, nil
}

func (r *ExportReader) fail(err error) {
	r.err = err
	if r.x.cat != nil {
		r.x.cat.ReportDamaged(err)
	}
}

func (r *ExportReader) open(src int) error {
	if r.cur == src && (r.v != nil || r.rem != nil) {
		return nil
	}
	if r.v != nil {
		r.v.Close()
		r.v = nil
	}
	r.rem = nil
	if r.remote(src) {
		if r.next != nil && r.next.src != src+1 {
			r.next.cancel()
			r.next = nil
		}
		if r.next == nil && src+1 < len(r.x.Segments) && !r.remote(src+1) {
			r.next = startVerifyAhead(src+1, r.x.Segments[src+1])
		}
		return r.openRemote(src)
	}
	if r.x.remote != nil {
		r.fetchAhead(src)
	}
	v, err := openVerified(r.x.Segments[src])
	if err != nil {
		return fmt.Errorf("camera %s: export: %w", r.x.Camera, err)
	}
	if r.next != nil && r.next.src == src {
		v.ahead, r.next = r.next, nil
	} else if !r.Strict {
		// hashed beside the sending, not on its goroutine; Strict checks
		// the whole source before any of it is sent anyway
		v.ahead = startVerifyAhead(src, r.x.Segments[src])
	}
	if r.next != nil { // a seek skipped it
		r.next.cancel()
		r.next = nil
	}
	if src+1 < len(r.x.Segments) && !r.remote(src+1) {
		r.next = startVerifyAhead(src+1, r.x.Segments[src+1])
	}
	r.v, r.cur = v, src
	return nil
}

// remote reports whether source src is another node's.
func (r *ExportReader) remote(src int) bool { return r.x.remote != nil && r.x.remote[src] != nil }

// Seek implements io.Seeker.
func (r *ExportReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.x.Size
	}
	if off < 0 {
		return 0, errors.New("export: negative position")
	}
	r.pos = off
	return off, nil
}

// WriteTo copies the rest of the file to w in large reads.
func (r *ExportReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Err returns the error that stopped reading, if any.
func (r *ExportReader) Err() error { return r.err }

// Close closes the open source file.
func (r *ExportReader) Close() error {
	if r.next != nil {
		r.next.cancel()
		r.next = nil
	}
	for k, f := range r.fetches {
		f.cancel()
		delete(r.fetches, k)
	}
	r.rem = nil
	if r.v != nil {
		err := r.v.Close()
		r.v = nil
		return err
	}
	return nil
}

// exportComment is the text an export carries in its comment tag, so that
// the file itself says what it is: the camera, the range and every gap, in
// UTC (RFC 3339).
func exportComment(x *Export) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vigil export camera=%s start=%s end=%s from=%s", x.Camera, formatTime(x.Start), formatTime(x.End), formatTime(x.From))
	for _, g := range x.Gaps {
		fmt.Fprintf(&b, " gap=%s/%s", formatTime(g.Start), formatTime(g.End))
	}
	return b.String()
}
