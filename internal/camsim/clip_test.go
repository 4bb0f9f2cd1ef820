package camsim

import "testing"

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
