package recorder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"vigil/internal/media"
)

// aacFrames encodes secs seconds of a tone with ffmpeg and returns the raw
// AAC frames and their AudioSpecificConfig.
func aacFrames(t *testing.T, secs int) ([][]byte, []byte) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required: %v", err)
	}
	out := filepath.Join(t.TempDir(), "tone.aac")
	cmd := exec.Command(bin, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", strconv.Itoa(secs), "-ac", "1", "-c:a", "aac", "-b:a", "64k", "-f", "adts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	buf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	conf, err := (&mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelCount: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, len(pkts))
	for i, p := range pkts {
		frames[i] = p.AU
	}
	return frames, conf
}

// recordWithAAC records secs seconds of the fixture's video on camera
// hall-counter with the AAC frames of a tone interleaved by DTS, leaving out
// the audio frames lost reports (nil: none), and closes the camera. It
// returns the recorder and the indexes of the audio frames fed.
func recordWithAAC(t *testing.T, secs int, lost func(int) bool) (*Recorder, []int) {
	t.Helper()
	c := fixture(t)
	audio, conf := aacFrames(t, secs)
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, _ := r.Camera("hall-counter", 0)
	s := stream(c, "hall-counter", 1, t0)
	s.Audio = &media.AudioTrack{Codec: media.AAC, ClockRate: 48000, ChannelCount: 1, Config: conf}
	w.OnStream(s)
	f := &feeder{c: c, wall: t0}
	aacDur := time.Second * 1024 / 48000
	var fed []int
	ai := 0
	for range min(len(c.Frames), int(float64(secs)*c.FPS)) {
		au := f.next()
		for ai < len(audio) && time.Duration(ai)*aacDur < au.DTS {
			if lost == nil || !lost(ai) {
				adts := time.Duration(ai) * aacDur
				w.OnAccessUnit(media.AccessUnit{Kind: media.Audio, DTS: adts, PTS: adts, Payload: [][]byte{audio[ai]}, Wall: t0.Add(adts)})
				fed = append(fed, ai)
			}
			ai++
		}
		w.OnAccessUnit(au)
	}
	if err := r.CloseCamera("hall-counter"); err != nil {
		t.Fatal(err)
	}
	return r, fed
}

func TestRecordVideoAndAAC(t *testing.T) {
	r, _ := recordWithAAC(t, 10, nil)
	segs, _, err := r.Catalog().List("hall-counter", t0, t0.Add(time.Minute))
	if err != nil || len(segs) != 3 {
		t.Fatalf("segments %+v %v", segs, err)
	}
	for _, s := range segs {
		if s.Codec != "h264+aac" {
			t.Errorf("codec %q", s.Codec)
		}
		p := ffprobe(t, s.Path)
		if p.Stderr != "" || p.Frames != s.Frames {
			t.Errorf("%s: ffprobe %+v, index frames %d", s.ID, p, s.Frames)
		}
		if b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0", s.Path).Output(); err != nil || string(b) != "aac\n" {
			t.Errorf("%s: audio stream %q %v", s.ID, b, err)
		}
	}
}

// TestRecordAACLostFramesKeepSync: AAC frames that never arrive (RTP
// packets lost over UDP) leave a hole in the audio timeline; the frames
// after it keep their own time instead of playing early. The hole falls
// inside a part (the frame before it lasts longer) or at the start of one
// (the part's audio starts later).
func TestRecordAACLostFramesKeepSync(t *testing.T) {
	for _, tc := range []struct {
		name             string
		lostFrom, lostTo int // frame i lasts 1024/48000 s: frame 47 starts the second 1-s part
	}{
		{"inside a part", 40, 45},
		{"across a part boundary", 45, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, fed := recordWithAAC(t, 5, func(i int) bool { return i >= tc.lostFrom && i < tc.lostTo })
			segs, _, err := r.Catalog().List("hall-counter", t0, t0.Add(time.Minute))
			if err != nil || len(segs) == 0 {
				t.Fatalf("segments %+v %v", segs, err)
			}
			out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "packet=pts", "-of", "csv=p=0", segs[0].Path).Output()
			if err != nil {
				t.Fatalf("ffprobe: %v", err)
			}
			var pts []int64
			for _, l := range strings.Fields(string(out)) {
				v, err := strconv.ParseInt(strings.TrimSuffix(l, ","), 10, 64)
				if err != nil {
					t.Fatalf("ffprobe pts %q: %v", l, err)
				}
				pts = append(pts, v)
			}
			if len(pts) < tc.lostTo {
				t.Fatalf("%d audio packets in the first segment", len(pts))
			}
			for j := range pts {
				// 48 kHz time base: frame i starts at i*1024.
				if want := int64(fed[j]-fed[0]) * 1024; pts[j]-pts[0] != want {
					t.Fatalf("audio packet %d (frame %d) at %d, want %d: the frames after the loss moved", j, fed[j], pts[j]-pts[0], want)
				}
			}
		})
	}
}

// recordWithOffsetAudio records secs seconds of video on hall-counter with
// an audio track whose frames start offset after each video frame grid
// (as a camera's audio does), frames of frameDur each, and closes the
// camera. It returns the recorder and the wall time of audio frame 0.
func recordWithOffsetAudio(t *testing.T, secs int, track *media.AudioTrack, frame func(i int) []byte, frameDur, offset time.Duration) (*Recorder, time.Time) {
	t.Helper()
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, _ := r.Camera("hall-counter", 0)
	s := stream(c, "hall-counter", 1, t0)
	s.Audio = track
	w.OnStream(s)
	f := &feeder{c: c, wall: t0}
	ai := 0
	for range min(len(c.Frames), int(float64(secs)*c.FPS)) {
		au := f.next()
		for at := offset + time.Duration(ai)*frameDur; at < au.DTS; at = offset + time.Duration(ai)*frameDur {
			w.OnAccessUnit(media.AccessUnit{Kind: media.Audio, DTS: at, PTS: at, Payload: [][]byte{frame(ai)}, Wall: t0.Add(at)})
			ai++
		}
		w.OnAccessUnit(au)
	}
	if err := r.CloseCamera("hall-counter"); err != nil {
		t.Fatal(err)
	}
	return r, t0.Add(offset)
}

// packetTimes is the pts_time of every packet of one stream type ("v" or
// "a") of a file, in seconds.
func packetTimes(t *testing.T, path, stream string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("pts_time %q: %v", l, err)
		}
		ts = append(ts, v)
	}
	return ts
}

// An export keeps time: every audio frame sits at the same offset from the
// video as in the recording (within 1 ms), whatever the export's start, for
// AAC and for G.711, in both formats. Time t in the file is From+t.
func TestExportKeepsAudioOffset(t *testing.T) {
	const offset = 37 * time.Millisecond // not a multiple of an AAC frame (21.3 ms) nor of a video frame
	aac, conf := aacFrames(t, 10)
	g711 := make([]byte, 160) // 20 ms of µ-law at 8 kHz
	for i := range g711 {
		g711[i] = byte(0x7f - i%32)
	}
	cases := []struct {
		name     string
		track    *media.AudioTrack
		frame    func(int) []byte
		frameDur time.Duration
	}{
		{"aac", &media.AudioTrack{Codec: media.AAC, ClockRate: 48000, ChannelCount: 1, Config: conf}, func(i int) []byte { return aac[i%len(aac)] }, time.Second * 1024 / 48000},
		{"g711", &media.AudioTrack{Codec: media.G711, ClockRate: 8000, ChannelCount: 1, MULaw: true}, func(int) []byte { return g711 }, 20 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, audio0 := recordWithOffsetAudio(t, 10, c.track, c.frame, c.frameDur, offset)
			for _, start := range []time.Duration{1300 * time.Millisecond, 4100 * time.Millisecond, 6700 * time.Millisecond} {
				for _, format := range []string{FormatMP4, FormatFMP4} {
					x, err := PlanExport(r.Catalog(), ExportRequest{Camera: "hall-counter", Start: t0.Add(start), End: t0.Add(start + 2*time.Second), Format: format})
					if err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(t.TempDir(), "clip.mp4")
					writeExport(t, x, path)
					for _, v := range packetTimes(t, path, "v") {
						wall := x.From.Add(time.Duration(v * float64(time.Second)))
						if d := wall.Sub(t0) % (40 * time.Millisecond); d > time.Millisecond && d < 39*time.Millisecond {
							t.Fatalf("start %v %s: a video frame at %v, off the 25 fps grid by %v", start, format, wall.Sub(t0), d)
						}
					}
					as := packetTimes(t, path, "a")
					if len(as) == 0 {
						t.Fatalf("start %v %s: no audio", start, format)
					}
					for _, a := range as {
						wall := x.From.Add(time.Duration(a * float64(time.Second)))
						k := (wall.Sub(audio0) + c.frameDur/2) / c.frameDur
						if d := wall.Sub(audio0.Add(k * c.frameDur)); d < -time.Millisecond || d > time.Millisecond {
							t.Fatalf("start %v %s: audio frame %d at %v, %v off its recorded time %v", start, format, k, wall.Sub(t0), d, audio0.Add(k*c.frameDur).Sub(t0))
						}
					}
				}
			}
		})
	}
}
