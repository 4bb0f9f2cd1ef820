// Package camsim simulates the cameras of the centre for the demo, tests and
// benchmarks: a real RTSP server that loops an H.264 clip in real time, with
// ONVIF metadata events and injectable faults. It is not used in production
// paths.
package camsim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Frame is one access unit of a clip.
type Frame struct {
	NALUs [][]byte // without start codes; no access unit delimiters
	Key   bool     // an IDR frame
}

// Clip is an H.264 elementary stream loaded in memory, ready to be looped.
type Clip struct {
	SPS, PPS      []byte
	Width, Height int
	FPS           float64
	Frames        []Frame
	Bytes         int // payload bytes of all frames
}

// FrameDuration is the time between two frames of the clip.
func (c *Clip) FrameDuration() time.Duration {
	return time.Duration(float64(time.Second) / c.FPS)
}

// Duration is the playing time of one loop of the clip.
func (c *Clip) Duration() time.Duration {
	return time.Duration(len(c.Frames)) * c.FrameDuration()
}

// LoadClip reads an Annex B H.264 file whose frames are separated by access
// unit delimiters and which starts with an IDR frame (see testdata/README.md
// for how to make one with ffmpeg). fps is used when the SPS carries no
// timing information; 0 means 25.
func LoadClip(path string, fps float64) (*Clip, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load clip: %w", err)
	}
	c, err := ParseClip(buf, fps)
	if err != nil {
		return nil, fmt.Errorf("load clip %s: %w", path, err)
	}
	return c, nil
}

// ParseClip parses an Annex B H.264 stream; see LoadClip.
func ParseClip(buf []byte, fps float64) (*Clip, error) {
	au := SplitAnnexB(buf)
	c := &Clip{}
	var cur Frame
	flush := func() {
		if len(cur.NALUs) > 0 {
			c.Frames = append(c.Frames, cur)
			for _, n := range cur.NALUs {
				c.Bytes += len(n)
			}
		}
		cur = Frame{}
	}
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case h264.NALUTypeSPS:
			if c.SPS == nil {
				c.SPS = bytes.Clone(nalu)
			}
		case h264.NALUTypePPS:
			if c.PPS == nil {
				c.PPS = bytes.Clone(nalu)
			}
		case h264.NALUTypeIDR:
			cur.Key = true
		}
		cur.NALUs = append(cur.NALUs, nalu)
	}
	flush()
	if c.SPS == nil || c.PPS == nil {
		return nil, errors.New("no SPS/PPS in stream")
	}
	if len(c.Frames) == 0 || !c.Frames[0].Key {
		return nil, errors.New("stream does not start with an IDR frame")
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.SPS); err != nil {
		return nil, fmt.Errorf("sps: %w", err)
	}
	c.Width, c.Height = sps.Width(), sps.Height()
	c.FPS = sps.FPS()
	if c.FPS <= 0 {
		c.FPS = fps
	}
	if c.FPS <= 0 {
		c.FPS = 25
	}
	return c, nil
}

// SplitAnnexB splits an Annex B byte stream at its start codes. mediacommon's
// AnnexB type caps the NAL unit count of one access unit, so a whole file is
// split here and grouped into access units by their delimiters.
func SplitAnnexB(buf []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(buf); {
		if buf[i] == 0 && buf[i+1] == 0 && buf[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && buf[end-1] == 0 { // trailing zero of a 4-byte start code
					end--
				}
				out = append(out, buf[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(buf) {
		out = append(out, buf[start:])
	}
	return out
}
