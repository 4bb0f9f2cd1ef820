package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
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
	pending *pendingSample
	lastDur uint32 // ticks of the last video frame, for the last sample before a break
	lastEnd time.Time

	failed    bool   // a write failed; waiting for retryAt and a keyframe
	failKind  string // health kind raised while failed or until a part is written again
	retryAt   time.Time
	unindexed []Segment // closed segments whose index line could not be written yet
}

var _ media.Sink = (*Writer)(nil)

type pendingSample struct {
	sample *fmp4.Sample
	dts    time.Duration
}

// segmentFile is the segment being written.
type segmentFile struct {
	f       File
	dir     string
	day     string
	file    string
	start   time.Time
	baseDTS time.Duration
	hash    hash.Hash
	bytes   int64 // bytes written and hashed so far
	seq     uint32

	videoTicks     uint64 // end of the last video sample handed to the part
	frames         int
	writtenTicks   uint64 // video ticks covered by the parts on disk
	writtenFrames  int
	partVideoBase  uint64
	partVideo      []*fmp4.Sample
	audioRate      uint64
	audioStarted   bool
	audioTicks     uint64
	partAudioBase  uint64
	partAudio      []*fmp4.Sample
	wroteFirstPart bool

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

// Close ends the segment being written, indexes it and stops recording.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.finishSegment("close")
	w.closed = true
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
		w.pending = w.newPending(au)
		return
	}
	seg := w.seg
	dur := uint32(0)
	if t := toTicks(au.DTS-seg.baseDTS, videoTimeScale); t > seg.videoTicks {
		dur = uint32(t - seg.videoTicks)
	}
	if w.pending != nil {
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
				return
			}
		} else {
			return
		}
	} else if seg.videoTicks-seg.partVideoBase >= toTicks(w.r.opts.Part, videoTimeScale) {
		if !w.flushPart() {
			return
		}
	}
	w.pending = w.newPending(au)
}

func (w *Writer) newPending(au media.AccessUnit) *pendingSample {
	var s fmp4.Sample
	var err error
	ptsOffset := int32(toTicks(au.PTS-au.DTS, videoTimeScale))
	if w.stream.Video.Codec == media.H265 {
		err = s.FillH265(ptsOffset, au.Payload)
	} else {
		err = s.FillH264(ptsOffset, au.Payload)
	}
	if err != nil {
		w.log.Warn("dropping malformed access unit", "error", err)
		return nil
	}
	s.IsNonSyncSample = !au.Key
	return &pendingSample{sample: &s, dts: au.DTS}
}

func (w *Writer) emitPending(dur uint32) {
	seg := w.seg
	if dur == 0 {
		dur = videoTimeScale / 25
	}
	w.pending.sample.Duration = dur
	w.lastDur = dur
	seg.partVideo = append(seg.partVideo, w.pending.sample)
	seg.videoTicks += uint64(dur)
	seg.frames++
	w.pending = nil
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
	switch a.Codec {
	case media.AAC:
		for _, frame := range au.Payload {
			seg.partAudio = append(seg.partAudio, &fmp4.Sample{Duration: mpeg4audio.SamplesPerAccessUnit, Payload: bytes.Clone(frame)})
			seg.audioTicks += mpeg4audio.SamplesPerAccessUnit
		}
	case media.G711:
		var enc []byte
		for _, p := range au.Payload {
			enc = append(enc, p...)
		}
		var pcm []byte
		if a.MULaw {
			var m g711.Mulaw
			m.Unmarshal(enc)
			pcm = m
		} else {
			var m g711.Alaw
			m.Unmarshal(enc)
			pcm = m
		}
		ch := max(a.ChannelCount, 1)
		n := uint32(len(enc) / ch)
		if n == 0 {
			return
		}
		seg.partAudio = append(seg.partAudio, &fmp4.Sample{Duration: n, Payload: pcm})
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
	seg := &segmentFile{f: f, dir: dir, day: day, file: file, start: start, baseDTS: baseDTS, hash: sha256.New(), seq: 1}
	if w.stream.Audio != nil {
		seg.audioRate = uint64(max(w.stream.Audio.ClockRate, 1))
	}
	w.seg = seg
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: videoTrackID, TimeScale: videoTimeScale, Codec: w.video}}}
	if w.audio != nil {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: audioTrackID, TimeScale: uint32(seg.audioRate), Codec: w.audio})
	}
	seg.buf.Reset()
	if err := init.Marshal(&seg.buf); err != nil {
		w.abandonSegment()
		w.log.Error("cannot build init segment; not recording", "error", err)
		w.stream = nil
		return false
	}
	if !w.write(seg.buf.Bytes()) {
		return false
	}
	return true
}

// write appends b to the segment file and the hash, and fsyncs per the
// Fsync option. On failure it drops the segment's broken tail and closes it.
func (w *Writer) write(b []byte) bool {
	seg := w.seg
	n, err := seg.f.Write(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(b))
	}
	if err == nil && w.r.opts.Fsync == FsyncPart {
		err = seg.f.Sync()
	}
	if err != nil {
		w.fail("write segment "+seg.file, err)
		if terr := seg.f.Truncate(seg.bytes); terr != nil {
			w.log.Warn("cannot drop the broken tail; recovery will at next start", "file", seg.file, "error", terr)
		}
		w.finishBroken()
		return false
	}
	seg.hash.Write(b)
	seg.bytes += int64(n)
	w.bytes.Add(float64(n))
	return true
}

// flushPart writes the buffered samples as one moof+mdat.
func (w *Writer) flushPart() bool {
	seg := w.seg
	if len(seg.partVideo) == 0 && len(seg.partAudio) == 0 {
		return true
	}
	part := fmp4.Part{SequenceNumber: seg.seq}
	if len(seg.partVideo) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: videoTrackID, BaseTime: seg.partVideoBase, Samples: seg.partVideo})
	}
	if len(seg.partAudio) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: audioTrackID, BaseTime: seg.partAudioBase, Samples: seg.partAudio})
	}
	seg.buf.Reset()
	if err := part.Marshal(&seg.buf); err != nil {
		w.log.Error("cannot build part; dropping it", "error", err)
	} else if !w.write(seg.buf.Bytes()) {
		return false
	}
	seg.seq++
	seg.partVideo = seg.partVideo[:0]
	seg.partAudio = seg.partAudio[:0]
	seg.partVideoBase = seg.videoTicks
	seg.partAudioBase = seg.audioTicks
	seg.writtenTicks = seg.videoTicks
	seg.writtenFrames = seg.frames
	if !seg.wroteFirstPart {
		seg.wroteFirstPart = true
		w.recovered()
	}
	return true
}

// finishSegment closes the current segment where the media stops (break,
// new stream, close): the last frame gets the previous frame's duration.
func (w *Writer) finishSegment(why string) {
	if w.seg == nil {
		w.pending = nil
		return
	}
	if w.pending != nil {
		w.emitPending(w.lastDur)
	}
	w.lastEnd = w.seg.start.Add(ticksToDuration(w.seg.videoTicks, videoTimeScale))
	w.closeSegment()
}

// closeSegment flushes the last part, closes the file and indexes it.
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
	}
	w.index(seg)
}

// finishBroken closes a segment after a write error, keeping the parts
// already on disk.
func (w *Writer) finishBroken() {
	seg := w.seg
	w.seg = nil
	w.pending = nil
	w.lastEnd = time.Time{}
	seg.f.Close()
	if seg.writtenFrames == 0 {
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
	seg.f.Close()
	os.Remove(filepath.Join(seg.dir, seg.file))
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
	}
	w.unindexed = append(w.unindexed, s)
	w.flushIndex()
}

// flushIndex appends the index lines that are waiting, oldest first.
func (w *Writer) flushIndex() {
	for len(w.unindexed) > 0 {
		s := w.unindexed[0]
		if err := w.r.appendIndex(s); err != nil {
			w.fail("index "+s.ID, err)
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
	w.flushIndex()
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
