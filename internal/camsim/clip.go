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
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
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

// LoadClip reads an H.264 clip that starts with an IDR frame and has no
// B-frames (the simulator sends PTS = DTS): either an MP4 file with an
// H.264 track, or an Annex B file whose frames are separated by access unit
// delimiters (see testdata/README.md for how to make either with ffmpeg).
// fps is used when an Annex B SPS carries no timing information; 0 means 25.
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

// ParseClip parses an MP4 file or an Annex B H.264 stream; see LoadClip.
func ParseClip(buf []byte, fps float64) (*Clip, error) {
	if looksMP4(buf) {
		return parseMP4Clip(buf)
	}
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
	if err := c.check(); err != nil {
		return nil, err
	}
	var sps h264.SPS
	_ = sps.Unmarshal(c.SPS) // checked
	c.FPS = sps.FPS()
	if c.FPS <= 0 {
		c.FPS = fps
	}
	if c.FPS <= 0 {
		c.FPS = 25
	}
	return c, nil
}

// check verifies what every clip needs and sets the picture size.
func (c *Clip) check() error {
	if c.SPS == nil || c.PPS == nil {
		return errors.New("no SPS/PPS in stream")
	}
	if len(c.Frames) == 0 || !c.Frames[0].Key {
		return errors.New("stream does not start with an IDR frame")
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.SPS); err != nil {
		return fmt.Errorf("sps: %w", err)
	}
	c.Width, c.Height = sps.Width(), sps.Height()
	return nil
}

// looksMP4 reports whether buf starts with an MP4 box header (a size, then
// a four-letter type such as ftyp, free or wide) rather than an Annex B
// start code.
func looksMP4(buf []byte) bool {
	if len(buf) < 8 || bytes.HasPrefix(buf, []byte{0, 0, 1}) || bytes.HasPrefix(buf, []byte{0, 0, 0, 1}) {
		return false
	}
	for _, c := range buf[4:8] {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != ' ' {
			return false
		}
	}
	return true
}

// parseMP4Clip reads the first H.264 track of an MP4 file. Its frames get
// SPS and PPS in-band before every IDR, as cameras send them; the frame
// rate is the track's mean sample duration.
func parseMP4Clip(buf []byte) (*Clip, error) {
	var p pmp4.Presentation
	if err := p.Unmarshal(bytes.NewReader(buf)); err != nil {
		return nil, fmt.Errorf("mp4: %w", err)
	}
	var track *pmp4.Track
	var codec *codecs.H264
	for _, t := range p.Tracks {
		if h, ok := t.Codec.(*codecs.H264); ok {
			track, codec = t, h
			break
		}
	}
	if track == nil {
		return nil, errors.New("mp4: no H.264 track")
	}
	if track.TimeScale == 0 {
		return nil, errors.New("mp4: H.264 track without a time scale")
	}
	c := &Clip{SPS: bytes.Clone(codec.SPS), PPS: bytes.Clone(codec.PPS)}
	var ticks uint64
	for i, s := range track.Samples {
		if s.PTSOffset != 0 {
			return nil, fmt.Errorf("mp4: sample %d: B-frames are not simulated; re-encode with -bf 0", i)
		}
		if int64(s.PayloadSize) > int64(len(buf)) {
			return nil, fmt.Errorf("mp4: sample %d: %d bytes, more than the file", i, s.PayloadSize)
		}
		payload, err := s.GetPayload()
		if err != nil {
			return nil, fmt.Errorf("mp4: sample %d: %w", i, err)
		}
		var avcc h264.AVCC
		if err := avcc.Unmarshal(payload); err != nil {
			return nil, fmt.Errorf("mp4: sample %d: %w", i, err)
		}
		// A keyframe is one with an IDR NAL unit, as in Annex B: a sync
		// sample of an open GOP is not one the loop can restart on.
		var fr Frame
		for _, n := range avcc {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS:
				continue // delimiters are not sent; parameter sets are added below
			case h264.NALUTypeIDR:
				fr.Key = true
			}
			fr.NALUs = append(fr.NALUs, n)
		}
		if len(fr.NALUs) == 0 {
			continue
		}
		if fr.Key {
			fr.NALUs = append([][]byte{c.SPS, c.PPS}, fr.NALUs...)
		}
		for _, n := range fr.NALUs {
			c.Bytes += len(n)
		}
		c.Frames = append(c.Frames, fr)
		ticks += uint64(s.Duration)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("mp4: %w", err)
	}
	if ticks == 0 {
		return nil, errors.New("mp4: H.264 track without sample durations")
	}
	c.FPS = float64(len(c.Frames)) * float64(track.TimeScale) / float64(ticks)
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
