package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"vigil/internal/camsim"
	"vigil/internal/media"
)

// h265Fixture is ingest's H.265 clip (../ingest/testdata/README.md): 2 s
// at 25 fps, an IDR frame at 0 s and a CRA frame at 1 s, VPS/SPS/PPS in
// front of both. Frames are split at the access unit delimiters, which
// are dropped, as ingest delivers them.
var h265Fixture = sync.OnceValues(func() (*h265Clip, error) {
	buf, err := os.ReadFile(filepath.Join("..", "ingest", "testdata", "small.h265"))
	if err != nil {
		return nil, err
	}
	c := &h265Clip{Clip: camsim.Clip{FPS: 25, Width: 320, Height: 180}}
	var cur camsim.Frame
	flush := func() {
		if len(cur.NALUs) > 0 {
			c.Frames = append(c.Frames, cur)
		}
		cur = camsim.Frame{}
	}
	for _, n := range camsim.SplitAnnexB(buf) {
		if len(n) < 2 {
			continue
		}
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); {
		case typ == h265.NALUType_AUD_NUT:
			flush()
			continue
		case typ == h265.NALUType_VPS_NUT && c.VPS == nil:
			c.VPS = n
		case typ == h265.NALUType_SPS_NUT && c.SPS == nil:
			c.SPS = n
		case typ == h265.NALUType_PPS_NUT && c.PPS == nil:
			c.PPS = n
		case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
			cur.Key = true
		}
		cur.NALUs = append(cur.NALUs, n)
	}
	flush()
	if c.VPS == nil || c.SPS == nil || c.PPS == nil || len(c.Frames) != 50 || !c.Frames[0].Key || !c.Frames[25].Key {
		return nil, errors.New("small.h265: want VPS/SPS/PPS and 50 frames with keyframes at 0 and 25")
	}
	return c, nil
})

// h265Clip is an H.265 clip: camsim's Clip has no field for the VPS.
type h265Clip struct {
	camsim.Clip
	VPS []byte
}

// streamProbe is what ffprobe reports of one stream of a segment.
type streamProbe struct {
	Type     string // "video", "audio"
	Codec    string
	Frames   int
	Duration time.Duration
	Start    time.Duration
}

// probeStreams runs ffprobe with -count_frames on path, so that every
// packet is decoded, and returns each stream and whatever ffprobe wrote
// on stderr, which at -v error is a decoding error.
func probeStreams(t *testing.T, path string) ([]streamProbe, string) {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required: %v", err)
	}
	cmd := exec.Command(bin, "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_type,codec_name,nb_read_frames,duration,start_time", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var res struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			NbReadFrames string `json:"nb_read_frames"`
			Duration     string `json:"duration"`
			StartTime    string `json:"start_time"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	secs := func(field, s string) time.Duration {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: %s %q: %v", path, field, s, err)
		}
		return time.Duration(f * float64(time.Second))
	}
	streams := make([]streamProbe, len(res.Streams))
	for i, s := range res.Streams {
		n, err := strconv.Atoi(s.NbReadFrames)
		if err != nil {
			t.Fatalf("ffprobe %s: nb_read_frames %q: %v", path, s.NbReadFrames, err)
		}
		streams[i] = streamProbe{Type: s.CodecType, Codec: s.CodecName, Frames: n,
			Duration: secs("duration", s.Duration), Start: secs("start_time", s.StartTime)}
	}
	return streams, stderr.String()
}

// readIndex returns the records of camera's index.jsonl for day, as the
// writer wrote them to disk.
func readIndex(t *testing.T, dir, camera, day string) []indexRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, camera, day, "index.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []indexRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec indexRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("index line %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func indexTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// checkIndexedSegments checks what every codec shares: the index lists
// the segments back to back from t0, each file hashes to the index's
// sha256 and has its size, and ffprobe decodes a video stream of
// videoCodec with the index's frame count and duration. It returns the
// records and the probes of each segment.
func checkIndexedSegments(t *testing.T, dir, camera, codec, videoCodec string, wantSegs, wantFrames int, frameDur time.Duration) ([]indexRecord, [][]streamProbe) {
	t.Helper()
	recs := readIndex(t, dir, camera, t0.Format(dayLayout))
	if len(recs) != wantSegs {
		t.Fatalf("index has %d segments, want %d: %+v", len(recs), wantSegs, recs)
	}
	probes := make([][]streamProbe, len(recs))
	frames := 0
	var prevEnd time.Time
	for i, rec := range recs {
		start, end := indexTime(t, rec.Start), indexTime(t, rec.End)
		if i == 0 && !start.Equal(t0) {
			t.Errorf("segment 0 starts at %v, want %v", start, t0)
		}
		if i > 0 && !start.Equal(prevEnd) {
			t.Errorf("segment %d starts at %v, segment %d ended at %v", i, start, i-1, prevEnd)
		}
		prevEnd = end
		path := filepath.Join(dir, camera, t0.Format(dayLayout), rec.File)
		if got := fileSHA256(t, path); got != rec.SHA256 {
			t.Errorf("segment %d: sha256 %s, index says %s", i, got, rec.SHA256)
		}
		if st, err := os.Stat(path); err != nil || st.Size() != rec.Bytes {
			t.Errorf("segment %d: stat %v %v, index says %d bytes", i, st, err, rec.Bytes)
		}
		if rec.Codec != codec {
			t.Errorf("segment %d: index codec %q, want %q", i, rec.Codec, codec)
		}
		streams, stderr := probeStreams(t, path)
		probes[i] = streams
		if stderr != "" {
			t.Errorf("segment %d does not decode cleanly: %s", i, stderr)
		}
		if len(streams) == 0 || streams[0].Type != "video" {
			t.Fatalf("segment %d: streams %+v, want video first", i, streams)
		}
		v := streams[0]
		if v.Codec != videoCodec {
			t.Errorf("segment %d: video codec %q, want %q", i, v.Codec, videoCodec)
		}
		if v.Frames != rec.Frames {
			t.Errorf("segment %d: ffprobe decodes %d frames, index says %d", i, v.Frames, rec.Frames)
		}
		if d := v.Duration - end.Sub(start); d > frameDur/2 || d < -frameDur/2 {
			t.Errorf("segment %d: ffprobe video duration %v, index %v", i, v.Duration, end.Sub(start))
		}
		frames += rec.Frames
	}
	if frames != wantFrames {
		t.Errorf("index counts %d frames, fed %d", frames, wantFrames)
	}
	return recs, probes
}

// TestRecordH265 records three loops of the H.265 fixture into 3 s
// segments: the first and third start at an IDR frame, the second at a
// CRA frame (an open-GOP keyframe). Each must play in ffprobe as hevc.
func TestRecordH265(t *testing.T) {
	c, err := h265Fixture()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, _ := newTestRecorder(t, Options{Dir: dir, Segment: 3 * time.Second, Part: 400 * time.Millisecond})
	w, err := r.Camera("yard", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(media.Stream{
		Camera: "yard", Session: 1, Started: t0,
		Video: &media.VideoTrack{Codec: media.H265, ClockRate: 90000, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS, Width: c.Width, Height: c.Height},
	})
	fed := 4 * len(c.Frames) // 8 s
	(&feeder{c: &c.Clip, wall: t0}).feed(w, fed)
	if err := r.CloseCamera("yard"); err != nil {
		t.Fatal(err)
	}
	recs, _ := checkIndexedSegments(t, dir, "yard", "h265", "hevc", 3, fed, c.FrameDuration())
	for i, want := range []int{75, 75, 50} { // keyframes every 25 frames; a segment closes at the first one 3 s in
		if recs[i].Frames != want {
			t.Errorf("segment %d: %d frames, want %d", i, recs[i].Frames, want)
		}
	}
}

// g711Audio encodes secs seconds of a tone at 8 kHz with ffmpeg as raw
// G.711 (format "mulaw" or "alaw") and returns it in 20 ms units of 160
// bytes, as an RTP camera sends it, and the same audio decoded by ffmpeg
// to 16-bit little-endian PCM.
func g711Audio(t *testing.T, format string, secs int) (units [][]byte, pcm []byte) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required: %v", err)
	}
	dir := t.TempDir()
	raw, dec := filepath.Join(dir, "tone."+format), filepath.Join(dir, "tone.s16le")
	for _, args := range [][]string{
		{"-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", strconv.Itoa(secs), "-ac", "1", "-f", format, raw},
		{"-v", "error", "-f", format, "-ar", "8000", "-ac", "1", "-i", raw, "-f", "s16le", dec},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
		}
	}
	enc, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if pcm, err = os.ReadFile(dec); err != nil {
		t.Fatal(err)
	}
	if len(enc) != secs*8000 || len(pcm) != 2*len(enc) {
		t.Fatalf("ffmpeg made %d G.711 bytes and %d PCM bytes, want %d and %d", len(enc), len(pcm), secs*8000, 2*secs*8000)
	}
	for len(enc) > 0 {
		n := min(160, len(enc))
		units, enc = append(units, enc[:n]), enc[n:]
	}
	return units, pcm
}

// decodeAudio returns the audio stream of path decoded by ffmpeg to
// 16-bit little-endian PCM.
func decodeAudio(t *testing.T, path string) []byte {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "error", "-i", path, "-map", "0:a", "-f", "s16le", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decoding the audio of %s: %v: %s", path, err, stderr.String())
	}
	return out
}

// TestRecordVideoAndG711 records the H.264 fixture with real G.711 audio
// made by ffmpeg, in 20 ms units interleaved with the video by DTS, and
// checks that each segment's audio decodes, lasts as long as its video,
// and that all segments together hold exactly the samples fed, as ffmpeg
// itself decodes them: the right law, the right byte order, nothing
// dropped or repeated at a segment boundary.
func TestRecordVideoAndG711(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format string // ffmpeg's raw format
		mulaw  bool
		// lost is a unit that never arrives, as an RTP packet lost over
		// UDP: a 20 ms gap in the DTS that the recording must keep as
		// silence, or all audio after it plays early. 0 loses none.
		lost int
	}{
		{name: "mu-law", format: "mulaw", mulaw: true},
		{name: "a-law", format: "alaw"},
		{name: "a-law with a lost packet", format: "alaw", lost: 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t)
			const secs = 10
			units, wantPCM := g711Audio(t, tc.format, secs)
			dir := t.TempDir()
			r, _ := newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second})
			w, _ := r.Camera("dock", 0)
			s := stream(c, "dock", 1, t0)
			s.Audio = &media.AudioTrack{Codec: media.G711, ClockRate: 8000, ChannelCount: 1, MULaw: tc.mulaw}
			w.OnStream(s)
			f := &feeder{c: c, wall: t0}
			const unitDur = 20 * time.Millisecond
			fed := 0                  // audio units fed
			for range len(c.Frames) { // 10 s of video, each frame after the audio that precedes it
				au := f.next()
				for ; fed < len(units) && time.Duration(fed)*unitDur < au.DTS; fed++ {
					if tc.lost > 0 && fed == tc.lost {
						continue
					}
					at := time.Duration(fed) * unitDur
					// A copy, because the writer must not keep what ingest hands it.
					w.OnAccessUnit(media.AccessUnit{Kind: media.Audio, DTS: at, PTS: at, Payload: [][]byte{bytes.Clone(units[fed])}, Wall: t0.Add(at)})
				}
				w.OnAccessUnit(au)
			}
			if err := r.CloseCamera("dock"); err != nil {
				t.Fatal(err)
			}
			recs, probes := checkIndexedSegments(t, dir, "dock", "h264+g711", "h264", 3, len(c.Frames), c.FrameDuration())
			var gotPCM []byte
			for i, streams := range probes {
				if len(streams) != 2 || streams[1].Type != "audio" {
					t.Errorf("segment %d: streams %+v, want video and audio", i, streams)
					continue
				}
				v, a := streams[0], streams[1]
				// The writer decodes G.711 to big-endian 16-bit LPCM.
				if a.Codec != "pcm_s16be" {
					t.Errorf("segment %d: audio codec %q, want pcm_s16be", i, a.Codec)
				}
				if a.Frames == 0 {
					t.Errorf("segment %d: no audio frames decoded", i)
				}
				if a.Start != 0 {
					t.Errorf("segment %d: audio starts at %v, want 0", i, a.Start)
				}
				// The last segment's audio stops at the last unit before the last frame.
				if d := a.Duration - v.Duration; d > c.FrameDuration() || d < -c.FrameDuration() {
					t.Errorf("segment %d: audio lasts %v, video %v", i, a.Duration, v.Duration)
				}
				pcm := decodeAudio(t, filepath.Join(dir, "dock", t0.Format(dayLayout), recs[i].File))
				if got := time.Duration(len(pcm)/2) * time.Second / 8000; got != a.Duration {
					t.Errorf("segment %d: %v of samples decoded, ffprobe says %v", i, got, a.Duration)
				}
				gotPCM = append(gotPCM, pcm...)
			}
			want := wantPCM[:fed*320]
			if tc.lost > 0 {
				clear(want[tc.lost*320 : (tc.lost+1)*320])
			}
			if !bytes.Equal(gotPCM, want) {
				t.Errorf("recorded %d bytes of PCM, fed %d; first difference at sample %d", len(gotPCM), len(want), firstDiff(gotPCM, want)/2)
			}
		})
	}
}

// firstDiff returns the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
