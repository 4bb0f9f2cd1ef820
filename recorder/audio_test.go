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
