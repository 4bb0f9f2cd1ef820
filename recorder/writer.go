package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/media"
)

const (
	videoTrackID   = 1
	audioTrackID   = 2
	videoTimeScale = 90000
	// maxAudioGap bounds, in seconds, the hole left by lost audio (filled
	// with silence for G.711), so that a jump in a camera's RTP timestamps
	// cannot make the writer buffer minutes of silence or stretch a frame.
	maxAudioGap = 5
)

// Writer records one camera: it implements media.Sink and turns the access
// units it receives into fMP4 segments. Ingest calls OnStream, OnAccessUnit
// and OnBreak from one goroutine; Close may be called from any goroutine.
// Writer copies what it keeps of an access unit's payload.
type Writer struct {
	r      *Recorder
	camera string
	log    *slog.Logger

	segments, bytes, writeErrors prometheus.Counter

	mu      sync.Mutex
	closed  bool
	stream  *media.Stream
	video   fmp4.Codec
	audio   fmp4.Codec
	codec   string
	seg     *segmentFile
	pending pendingSample
	// hasPending says pending holds the last video frame, whose duration
	// is known only when the next one arrives.
	hasPending bool
	lastDur    uint32 // ticks of the last video frame, for the last sample before a break

	// The part being built, reused from part to part and segment to
	// segment so that recording allocates nothing per frame: each track's
	// sample table and media data, the latter already in mdat layout
	// (length-prefixed NAL units, AAC frames, 16-bit PCM), written to the
	// file right after the moof without another copy.
	part    [2]partTrack // video, audio
	moof    []byte
	tables  [2][]srcSample
	bases   [2]uint64
	lastEnd time.Time

	failed    bool   // a write failed; waiting for retryAt and a keyframe
	failKind  string // health kind raised while failed or until a part is written again
	retryAt   time.Time
	unindexed []unindexedSegment // closed segments whose index line could not be written yet, oldest first

	// open is the segment being written as far as its parts are on disk,
	// for listings and exports while it grows; nil before its first part
	// and once it is indexed. Read without mu, which a write holds.
	open atomic.Pointer[Segment]
	// started is the start of the segment being written, from the
	// creation of its file (open is still nil then) until the media
	// stops. A segment closed at a keyframe hands over to the next one
	// without clearing it: listings read the handover, up to the next
	// segment's first part, as recording, not as an outage.
	started atomic.Pointer[time.Time]
	// epoch is the fencing epoch of this node's lease on the camera (0
	// without a cluster); segments started from now on carry it.
	epoch atomic.Int64
}

var _ media.Sink = (*Writer)(nil)

// pendingSample is the table entry of the last video frame; its data is
// already at the end of the video part.
type pendingSample struct {
	sample srcSample
}

// partTrack is one track of the part being built.
type partTrack struct {
	samples []srcSample
	data    []byte
	emitted int // bytes of data that belong to samples (the rest is the pending frame's)
}

// add appends a complete sample whose data is the last size bytes of data.
func (t *partTrack) add(s srcSample) {
	t.samples = append(t.samples, s)
	t.emitted += int(s.size)
}

// written drops the samples of a part that went to the file, keeping data
// that was not part of it.
func (t *partTrack) written() {
	n := copy(t.data, t.data[t.emitted:])
	t.data, t.samples, t.emitted = t.data[:n], t.samples[:0], 0
}

func (t *partTrack) reset() { t.data, t.samples, t.emitted = t.data[:0], t.samples[:0], 0 }

// unindexedSegment is a closed segment waiting for its index line.
type unindexedSegment struct {
	Segment
	// reread: the file may not hold what was hashed (its Sync or Close
	// failed, or a broken tail could not be cut), so its line is made
	// from the file as it is on disk, the way startup recovery makes it,
	// once a part was written again; until then it and the segments after
	// it wait, unindexed, which leaves them to recovery after a restart.
	reread bool
}

// segmentFile is the segment being written.
type segmentFile struct {
	f       File
	dir     string
	day     string
	file    string
	start   time.Time
	epoch   int64 // the camera lease's fencing epoch when the segment started
	baseDTS time.Duration
	hash    hash.Hash
	bytes   int64 // bytes written and hashed so far
	seq     uint32
	init    *fmp4.Init

	videoTicks     uint64 // end of the last video sample handed to the part
	frames         int
	writtenTicks   uint64 // video ticks covered by the parts on disk
	writtenFrames  int
	partVideoBase  uint64
	audioRate      uint64
	audioStarted   bool
	audioTicks     uint64
	partAudioBase  uint64
	wroteFirstPart bool
	// reread: what was hashed may not be what the file holds; see
	// unindexedSegment.
	reread bool

	buf seekablebuffer.Buffer
}

func toTicks(d time.Duration, rate uint64) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d/time.Second)*rate + uint64(d%time.Second)*rate/uint64(time.Second)
}

func ticksToDuration(t uint64, rate uint64) time.Duration {
	return time.Duration(t/rate)*time.Second + time.Duration((t%rate)*uint64(time.Second)/rate)
}

// OnStream starts a new session of the camera. A new session or changed
// parameter sets close the current segment; the next one starts at the
// next keyframe.
func (w *Writer) OnStream(s media.Stream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.stream != nil && w.stream.Session == s.Session && sameParams(w.stream, &s) {
		return
	}
	w.finishSegment("new stream")
	video, audio, codec, err := codecsOf(&s)
	if err != nil {
		w.log.Error("unsupported stream; not recording", "error", err)
		w.stream, w.video, w.audio = nil, nil, nil
		return
	}
	sc := s
	w.stream, w.video, w.audio, w.codec = &sc, video, audio, codec
}

// OnBreak closes the current segment; the next starts at the next keyframe
// and the catalog shows the gap.
func (w *Writer) OnBreak(reason string, dropped int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.finishSegment("break: " + reason)
	w.lastEnd = time.Time{} // what follows is not continuous
}

// SetEpoch sets the fencing epoch of this node's lease on the camera:
// segments started from now on carry it in their index lines. A cluster
// node sets it before subscribing the writer to the camera's stream.
func (w *Writer) SetEpoch(epoch int64) { w.epoch.Store(epoch) }

// Close ends the segment being written, indexes it and stops recording.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.finishSegment("close")
	w.closed = true
	w.part, w.moof, w.tables = [2]partTrack{}, nil, [2][]srcSample{} // a closed writer holds no buffers
	if len(w.unindexed) > 0 {
		return fmt.Errorf("camera %s: %d segments left unindexed", w.camera, len(w.unindexed))
	}
	return nil
}

// OnAccessUnit records one access unit.
func (w *Writer) OnAccessUnit(au media.AccessUnit) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.stream == nil {
		return
	}
	switch au.Kind {
	case media.Video:
		w.onVideo(au)
	case media.Audio:
		w.onAudio(au)
	}
}

func (w *Writer) onVideo(au media.AccessUnit) {
	if w.seg == nil {
		if !au.Key {
			return
		}
		if w.failed && w.r.now().Before(w.retryAt) {
			return
		}
		w.updateParams(au)
		start := au.Wall
		if !w.lastEnd.IsZero() && start.Before(w.lastEnd) {
			start = w.lastEnd
		}
		if !w.openSegment(start, au.DTS) {
			return
		}
		w.newPending(au)
		return
	}
	seg := w.seg
	dur := uint32(0)
	if t := toTicks(au.DTS-seg.baseDTS, videoTimeScale); t > seg.videoTicks {
		dur = uint32(t - seg.videoTicks)
	}
	if w.hasPending {
		if dur == 0 {
			dur = w.lastDur
		}
		w.emitPending(dur)
	}
	if au.Key && (au.DTS-seg.baseDTS >= w.r.opts.Segment || w.paramsChanged(au)) {
		end := seg.start.Add(ticksToDuration(seg.videoTicks, videoTimeScale))
		w.closeSegment()
		w.updateParams(au)
		if w.seg == nil && !w.failed {
			if !w.openSegment(end, au.DTS) {
				w.started.Store(nil)
				return
			}
		} else {
			w.started.Store(nil)
			return
		}
	} else if seg.videoTicks-seg.partVideoBase >= toTicks(w.r.opts.Part, videoTimeScale) {
		if !w.flushPart() {
			return
		}
	}
	w.newPending(au)
}

// newPending appends the frame's NAL units to the video part in AVCC form
// (each behind its 4-byte length, as mediacommon's FillH264/FillH265 lay
// them out) and keeps its table entry pending until its duration is known.
func (w *Writer) newPending(au media.AccessUnit) {
	v := &w.part[0]
	off := len(v.data)
	for _, n := range au.Payload {
		v.data = binary.BigEndian.AppendUint32(v.data, uint32(len(n)))
		v.data = append(v.data, n...)
	}
	ptsOffset := int32(toTicks(au.PTS-au.DTS, videoTimeScale))
	w.pending = pendingSample{sample: srcSample{size: uint32(len(v.data) - off), cts: ptsOffset, sync: au.Key}}
	w.hasPending = true
}

func (w *Writer) emitPending(dur uint32) {
	seg := w.seg
	if dur == 0 {
		dur = videoTimeScale / 25
	}
	w.pending.sample.dur = dur
	w.lastDur = dur
	w.part[0].add(w.pending.sample)
	seg.videoTicks += uint64(dur)
	seg.frames++
	w.dropPending()
}

// dropPending forgets the pending frame, and its data if it was not emitted.
func (w *Writer) dropPending() {
	w.pending, w.hasPending = pendingSample{}, false
	v := &w.part[0]
	v.data = v.data[:v.emitted]
}

func (w *Writer) onAudio(au media.AccessUnit) {
	seg := w.seg
	if seg == nil || w.audio == nil || au.DTS < seg.baseDTS {
		return
	}
	if !seg.audioStarted {
		seg.audioStarted = true
		seg.audioTicks = toTicks(au.DTS-seg.baseDTS, seg.audioRate)
		seg.partAudioBase = seg.audioTicks
	}
	a := w.stream.Audio
	t := &w.part[1]
	switch a.Codec {
	case media.AAC:
		// A gap in the DTS is frames that never arrived. AAC cannot be
		// padded without an encoder, so the hole goes into the timeline:
		// the last frame before it lasts longer (or, at the start of a
		// part, the part's audio starts later), and what follows keeps
		// its time instead of playing early.
		// Whole frames are lost, so the hole is rounded to frames: DTS
		// converted to and from nanoseconds is a tick off now and then.
		const frame = mpeg4audio.SamplesPerAccessUnit
		if at := toTicks(au.DTS-seg.baseDTS, seg.audioRate); at > seg.audioTicks && at-seg.audioTicks <= maxAudioGap*seg.audioRate {
			if gap := (at - seg.audioTicks + frame/2) / frame * frame; gap > 0 {
				if n := len(t.samples); n > 0 {
					t.samples[n-1].dur += uint32(gap)
				} else {
					seg.partAudioBase += gap
				}
				seg.audioTicks += gap
			}
		}
		for _, frame := range au.Payload {
			t.data = append(t.data, frame...)
			t.add(srcSample{size: uint32(len(frame)), dur: mpeg4audio.SamplesPerAccessUnit, sync: true})
			seg.audioTicks += mpeg4audio.SamplesPerAccessUnit
		}
	case media.G711:
		enc := 0
		for _, p := range au.Payload {
			enc += len(p)
		}
		ch := max(a.ChannelCount, 1)
		n := uint32(enc / ch)
		if n == 0 {
			return
		}
		// A gap in the DTS is audio that never arrived (an RTP packet
		// lost over UDP); filled with silence, what follows stays in sync
		// with the video instead of playing early.
		if at := toTicks(au.DTS-seg.baseDTS, seg.audioRate); at >= seg.audioTicks+uint64(n) && at-seg.audioTicks <= maxAudioGap*seg.audioRate {
			gap := at - seg.audioTicks
			t.data = append(t.data, make([]byte, 2*uint64(ch)*gap)...)
			t.add(srcSample{size: uint32(2 * uint64(ch) * gap), dur: uint32(gap), sync: true})
			seg.audioTicks = at
		}
		for _, p := range au.Payload {
			if a.MULaw {
				var m g711.Mulaw
				m.Unmarshal(p)
				t.data = append(t.data, m...)
			} else {
				var m g711.Alaw
				m.Unmarshal(p)
				t.data = append(t.data, m...)
			}
		}
		t.add(srcSample{size: uint32(2 * enc), dur: n, sync: true})
		seg.audioTicks += uint64(n)
	}
}

// openSegment creates the file of a new segment and writes its init
// segment. It reports false, with the failure handled, when that fails.
func (w *Writer) openSegment(start time.Time, baseDTS time.Duration) bool {
	start = start.UTC().Truncate(time.Millisecond)
	day, file := fileNames(start)
	dir := filepath.Join(w.r.opts.Dir, w.camera, day)
	if err := w.r.fs.MkdirAll(dir); err != nil {
		w.fail("mkdir", err)
		return false
	}
	var f File
	var err error
	for range 1000 { // a name taken by a segment of the same millisecond
		f, err = w.r.fs.Create(filepath.Join(dir, file))
		if !errors.Is(err, os.ErrExist) {
			break
		}
		start = start.Add(time.Millisecond)
		day, file = fileNames(start)
		dir = filepath.Join(w.r.opts.Dir, w.camera, day)
	}
	if err != nil {
		w.fail("create segment", err)
		return false
	}
	seg := &segmentFile{f: f, dir: dir, day: day, file: file, start: start, epoch: w.epoch.Load(), baseDTS: baseDTS, hash: sha256.New(), seq: 1}
	if w.stream.Audio != nil {
		seg.audioRate = uint64(max(w.stream.Audio.ClockRate, 1))
	}
	w.seg = seg
	w.started.Store(&start)
	w.part[0].reset()
	w.part[1].reset()
	init := &fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: videoTrackID, TimeScale: videoTimeScale, Codec: w.video}}}
	if w.audio != nil {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: audioTrackID, TimeScale: uint32(seg.audioRate), Codec: w.audio})
	}
	seg.init = init
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		w.abandonSegment()
		w.log.Error("cannot build init segment; not recording", "error", err)
		w.stream = nil
		return false
	}
	return w.write(buf.Bytes())
}

// write appends bufs, in order, to the segment file and the hash, and
// fsyncs per the Fsync option. On failure it drops the segment's broken
// tail, whatever of bufs got written, and closes it.
func (w *Writer) write(bufs ...[]byte) bool {
	seg := w.seg
	var err error
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		var m int
		m, err = seg.f.Write(b)
		n += m
		if err == nil && m != len(b) {
			err = fmt.Errorf("short write: %d of %d bytes", m, len(b))
		}
		if err != nil {
			break
		}
	}
	if err == nil && w.r.opts.Fsync == FsyncPart {
		err = seg.f.Sync()
	}
	if err != nil {
		w.fail("write segment "+seg.file, err)
		if terr := seg.f.Truncate(seg.bytes); terr != nil {
			w.log.Warn("cannot drop the broken tail; the segment is read back before it is indexed", "file", seg.file, "error", terr)
			seg.reread = true
		}
		w.finishBroken()
		return false
	}
	for _, b := range bufs {
		seg.hash.Write(b)
	}
	seg.bytes += int64(n)
	w.bytes.Add(float64(n))
	return true
}

// flushPart writes the buffered samples as one moof+mdat, the same bytes
// mediacommon's fmp4.Part.Marshal produces (TestPartMatchesMediacommon),
// without copying the media data into a part first.
func (w *Writer) flushPart() bool {
	seg := w.seg
	v, a := &w.part[0], &w.part[1]
	if len(v.samples) == 0 && len(a.samples) == 0 {
		return true
	}
	w.tables[0], w.tables[1] = v.samples, a.samples
	w.bases[0], w.bases[1] = seg.partVideoBase, seg.partAudioBase
	tracks := w.tables[:len(seg.init.Tracks)]
	w.moof = appendMoof(w.moof[:0], seg.seq, seg.init, w.bases[:len(tracks)], tracks)
	if !w.write(w.moof, v.data[:v.emitted], a.data[:a.emitted]) {
		return false
	}
	seg.seq++
	v.written()
	a.written()
	seg.partVideoBase = seg.videoTicks
	seg.partAudioBase = seg.audioTicks
	seg.writtenTicks = seg.videoTicks
	seg.writtenFrames = seg.frames
	w.open.Store(&Segment{
		ID: segmentID(seg.day, seg.file), Camera: w.camera, Start: seg.start,
		End:   seg.start.Add(ticksToDuration(seg.writtenTicks, videoTimeScale)).Truncate(time.Millisecond),
		Bytes: seg.bytes, SHA256: hex.EncodeToString(seg.hash.Sum(nil)), // Sum leaves the hash running
		Frames: seg.writtenFrames, Codec: w.codec, Path: filepath.Join(seg.dir, seg.file), Open: true,
		Node: w.r.opts.Node, Epoch: seg.epoch,
	})
	if !seg.wroteFirstPart {
		seg.wroteFirstPart = true
		w.recovered()
	}
	return true
}

// finishSegment closes the current segment where the media stops (break,
// new stream, close): the last frame gets the previous frame's duration.
func (w *Writer) finishSegment(why string) {
	w.started.Store(nil)
	if w.seg == nil {
		w.dropPending()
		return
	}
	if w.hasPending {
		w.emitPending(w.lastDur)
	}
	w.lastEnd = w.seg.start.Add(ticksToDuration(w.seg.videoTicks, videoTimeScale))
	w.closeSegment()
}

// closeSegment flushes the last part, closes the file and indexes it.
// When Sync or Close fails, the bytes hashed may not be the bytes on disk:
// the failure is handled like a failed write, and the segment's index
// line waits for the file to be read back.
func (w *Writer) closeSegment() {
	if !w.flushPart() {
		return
	}
	seg := w.seg
	var err error
	if w.r.opts.Fsync != FsyncNever {
		err = seg.f.Sync()
	}
	if cerr := seg.f.Close(); err == nil {
		err = cerr
	}
	w.seg = nil
	if err != nil {
		w.fail("close segment "+seg.file, err)
		seg.reread = true
	}
	w.index(seg)
}

// finishBroken closes a segment after a write error, keeping the parts
// already on disk.
func (w *Writer) finishBroken() {
	seg := w.seg
	w.seg = nil
	w.started.Store(nil)
	w.dropPending()
	w.part[0].reset()
	w.part[1].reset()
	w.lastEnd = time.Time{}
	if err := seg.f.Close(); err != nil {
		w.log.Warn("cannot close broken segment", "file", seg.file, "error", err)
		seg.reread = true
	}
	if seg.writtenFrames == 0 {
		w.open.Store(nil)
		if err := os.Remove(filepath.Join(seg.dir, seg.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.log.Warn("cannot remove empty segment", "file", seg.file, "error", err)
		}
		return
	}
	seg.videoTicks, seg.frames = seg.writtenTicks, seg.writtenFrames
	w.index(seg)
}

// abandonSegment drops a segment that never got media.
func (w *Writer) abandonSegment() {
	seg := w.seg
	w.seg = nil
	w.started.Store(nil)
	w.open.Store(nil)
	if err := seg.f.Close(); err != nil {
		w.log.Warn("cannot close abandoned segment", "file", seg.file, "error", err)
	}
	if err := os.Remove(filepath.Join(seg.dir, seg.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Warn("cannot remove abandoned segment", "file", seg.file, "error", err)
	}
}

func (w *Writer) index(seg *segmentFile) {
	s := Segment{
		ID:     segmentID(seg.day, seg.file),
		Camera: w.camera,
		Start:  seg.start,
		End:    seg.start.Add(ticksToDuration(seg.videoTicks, videoTimeScale)),
		Bytes:  seg.bytes,
		SHA256: hex.EncodeToString(seg.hash.Sum(nil)),
		Frames: seg.frames,
		Codec:  w.codec,
		Path:   filepath.Join(seg.dir, seg.file),
		Node:   w.r.opts.Node,
		Epoch:  seg.epoch,
	}
	if seg.reread {
		s.SHA256 = "" // of bytes the file may not hold
	}
	w.unindexed = append(w.unindexed, unindexedSegment{Segment: s, reread: seg.reread})
	w.flushIndex(false)
	// indexed (listed from the catalog now), or waiting for its line:
	// either way no longer growing
	w.open.Store(nil)
}

// flushIndex appends the index lines that are waiting, oldest first. A
// segment to be read back stops it unless reread is set (a part was
// written again since its failure).
func (w *Writer) flushIndex(reread bool) {
	for len(w.unindexed) > 0 {
		u := &w.unindexed[0]
		if u.reread {
			if !reread {
				return
			}
			day, file, _, err := ParseSegmentID(u.ID)
			if err != nil {
				w.fail("read back "+u.ID, err)
				return
			}
			s, ok, err := w.r.repairSegment(w.camera, day, file)
			if err != nil {
				w.fail("read back "+u.ID, err)
				return
			}
			if !ok { // removed: not one complete part on disk
				w.unindexed = w.unindexed[1:]
				continue
			}
			// the line tells what the file holds; who recorded it stays
			u.End, u.Bytes, u.SHA256, u.Frames, u.reread = s.End, s.Bytes, s.SHA256, s.Frames, false
		}
		if err := w.r.appendIndex(u.Segment); err != nil {
			w.fail("index "+u.ID, err)
			return
		}
		w.unindexed = w.unindexed[1:]
		w.segments.Inc()
	}
}

// fail counts a write error, raises the health signal and schedules a
// retry.
func (w *Writer) fail(op string, err error) {
	w.writeErrors.Inc()
	kind := HealthRecordingFailure
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		kind = HealthStorageFull
	}
	if !w.failed || w.failKind != kind {
		w.log.Error("recording failed; retrying", "op", op, "error", err, "kind", kind)
		if w.failKind != "" && w.failKind != kind {
			w.r.health(w.camera, w.failKind, false, "")
		}
		w.r.health(w.camera, kind, true, fmt.Sprintf("%s: %v", op, err))
	}
	w.failed = true
	w.failKind = kind
	w.retryAt = w.r.now().Add(w.r.opts.RetryInterval)
}

// recovered ends the health signal once a part was written again.
func (w *Writer) recovered() {
	if w.failKind == "" {
		return
	}
	w.flushIndex(true)
	if len(w.unindexed) > 0 {
		return
	}
	w.log.Info("recording resumed")
	w.r.health(w.camera, w.failKind, false, "")
	w.failed = false
	w.failKind = ""
}

func (w *Writer) paramsChanged(au media.AccessUnit) bool {
	v := w.stream.Video
	for _, n := range au.Payload {
		if len(n) == 0 {
			continue
		}
		switch v.Codec {
		case media.H264:
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if !bytes.Equal(n, v.SPS) {
					return true
				}
			case h264.NALUTypePPS:
				if !bytes.Equal(n, v.PPS) {
					return true
				}
			}
		case media.H265:
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				if !bytes.Equal(n, v.VPS) {
					return true
				}
			case h265.NALUType_SPS_NUT:
				if !bytes.Equal(n, v.SPS) {
					return true
				}
			case h265.NALUType_PPS_NUT:
				if !bytes.Equal(n, v.PPS) {
					return true
				}
			}
		}
	}
	return false
}

// updateParams takes in-band parameter sets of a keyframe as the stream's.
func (w *Writer) updateParams(au media.AccessUnit) {
	if !w.paramsChanged(au) {
		return
	}
	v := *w.stream.Video
	for _, n := range au.Payload {
		if len(n) == 0 {
			continue
		}
		if v.Codec == media.H264 {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				v.SPS = bytes.Clone(n)
			case h264.NALUTypePPS:
				v.PPS = bytes.Clone(n)
			}
		} else {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				v.VPS = bytes.Clone(n)
			case h265.NALUType_SPS_NUT:
				v.SPS = bytes.Clone(n)
			case h265.NALUType_PPS_NUT:
				v.PPS = bytes.Clone(n)
			}
		}
	}
	s := *w.stream
	s.Video = &v
	video, audio, codec, err := codecsOf(&s)
	if err != nil {
		w.log.Warn("ignoring in-band parameter sets", "error", err)
		return
	}
	w.stream, w.video, w.audio, w.codec = &s, video, audio, codec
}

func sameParams(a, b *media.Stream) bool {
	if (a.Video == nil) != (b.Video == nil) || (a.Audio == nil) != (b.Audio == nil) {
		return false
	}
	if a.Video != nil {
		av, bv := a.Video, b.Video
		if av.Codec != bv.Codec || !bytes.Equal(av.VPS, bv.VPS) || !bytes.Equal(av.SPS, bv.SPS) || !bytes.Equal(av.PPS, bv.PPS) {
			return false
		}
	}
	if a.Audio != nil {
		aa, ba := a.Audio, b.Audio
		if aa.Codec != ba.Codec || aa.ClockRate != ba.ClockRate || aa.ChannelCount != ba.ChannelCount ||
			aa.MULaw != ba.MULaw || !bytes.Equal(aa.Config, ba.Config) {
			return false
		}
	}
	return true
}

// codecsOf maps a stream's tracks to fMP4 codecs and names the combination
// for the index ("h264", "h264+aac").
func codecsOf(s *media.Stream) (video, audio fmp4.Codec, name string, err error) {
	if s.Video == nil {
		return nil, nil, "", errors.New("no video track")
	}
	v := s.Video
	switch v.Codec {
	case media.H264:
		if len(v.SPS) == 0 || len(v.PPS) == 0 {
			return nil, nil, "", errors.New("h264 without SPS/PPS")
		}
		video = &fmp4.CodecH264{SPS: v.SPS, PPS: v.PPS}
	case media.H265:
		if len(v.VPS) == 0 || len(v.SPS) == 0 || len(v.PPS) == 0 {
			return nil, nil, "", errors.New("h265 without VPS/SPS/PPS")
		}
		video = &fmp4.CodecH265{VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}
	default:
		return nil, nil, "", fmt.Errorf("video codec %q not recorded", v.Codec)
	}
	name = string(v.Codec)
	if a := s.Audio; a != nil {
		switch a.Codec {
		case media.AAC:
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(a.Config); err != nil {
				return nil, nil, "", fmt.Errorf("aac config: %w", err)
			}
			audio = &fmp4.CodecMPEG4Audio{Config: conf}
			name += "+aac"
		case media.G711:
			audio = &fmp4.CodecLPCM{BitDepth: 16, SampleRate: a.ClockRate, ChannelCount: max(a.ChannelCount, 1)}
			name += "+g711"
		}
	}
	return video, audio, name, nil
}
