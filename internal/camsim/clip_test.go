package camsim

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestLoadClipFixture(t *testing.T) {
	c, err := LoadClip("testdata/hall.h264", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Width != 640 || c.Height != 360 {
		t.Errorf("size %dx%d, want 640x360", c.Width, c.Height)
	}
	if c.FPS != 25 {
		t.Errorf("fps %v, want 25", c.FPS)
	}
	if len(c.Frames) != 250 {
		t.Errorf("%d frames, want 250", len(c.Frames))
	}
	keys := 0
	for _, f := range c.Frames {
		if f.Key {
			keys++
		}
	}
	if keys != 5 {
		t.Errorf("%d keyframes, want 5", keys)
	}
}

func TestParseClipRejectsGarbage(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("not h264 at all"),
		"no sps":  {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 0x88},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseClip(in, 25); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

// TestLoadClipMP4 loads the MP4 remux of an Annex B fixture: the same
// frames, keyframes, rate and size, with SPS and PPS in-band before every
// IDR and no delimiters.
func TestLoadClipMP4(t *testing.T) {
	mp4, err := LoadClip("testdata/small.mp4", 0)
	if err != nil {
		t.Fatal(err)
	}
	annexB, err := LoadClip("testdata/small.h264", 0)
	if err != nil {
		t.Fatal(err)
	}
	if mp4.Width != 320 || mp4.Height != 180 || mp4.FPS != 25 || len(mp4.Frames) != len(annexB.Frames) {
		t.Fatalf("mp4 clip %dx%d at %v fps, %d frames; Annex B has %d", mp4.Width, mp4.Height, mp4.FPS, len(mp4.Frames), len(annexB.Frames))
	}
	if !bytes.Equal(mp4.SPS, annexB.SPS) || !bytes.Equal(mp4.PPS, annexB.PPS) {
		t.Fatal("parameter sets differ")
	}
	for i := range mp4.Frames {
		m, a := mp4.Frames[i], annexB.Frames[i]
		if m.Key != a.Key {
			t.Fatalf("frame %d: key %v, Annex B %v", i, m.Key, a.Key)
		}
		if m.Key && (!bytes.Equal(m.NALUs[0], mp4.SPS) || !bytes.Equal(m.NALUs[1], mp4.PPS)) {
			t.Fatalf("keyframe %d does not start with SPS and PPS", i)
		}
		if !slices.EqualFunc(m.NALUs, a.NALUs, bytes.Equal) {
			t.Fatalf("frame %d: NAL units differ (%d vs %d)", i, len(m.NALUs), len(a.NALUs))
		}
		for _, n := range m.NALUs {
			if h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
				t.Fatalf("frame %d has a delimiter", i)
			}
		}
	}
}

// TestLoadClipMP4Refused: MP4 files the simulator cannot send get a clear
// error, not a clip that plays wrong.
func TestLoadClipMP4Refused(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required: %v", err)
	}
	dir := t.TempDir()
	gen := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		cmd := exec.Command(ffmpeg, append(append([]string{"-v", "error", "-y"}, args...), out)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v: %s", name, err, b)
		}
		return out
	}
	whole, err := os.ReadFile("testdata/small.mp4")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mp4")
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// A file that opens with another box than ftyp is still read as MP4,
	// and its error says so (here the box shifts every sample offset).
	shifted := append([]byte{0, 0, 0, 8, 'f', 'r', 'e', 'e'}, whole...)
	if _, err := ParseClip(shifted, 0); err == nil || !strings.HasPrefix(err.Error(), "mp4:") {
		t.Errorf("MP4 opening with a free box: %v, want an mp4 error", err)
	}
	for name, path := range map[string]string{
		"b-frames":   gen("bframes.mp4", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "1", "-c:v", "libx264", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p"),
		"audio only": gen("audio.mp4", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac"),
		"truncated":  truncated,
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := LoadClip(path, 0); err == nil {
				t.Fatalf("accepted: %d frames", len(c.Frames))
			} else {
				t.Log(err)
			}
		})
	}
}
