package recorder

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"vigil/internal/media"
)

// TestPartMatchesMediacommon checks that every segment the writer builds by
// hand (moof from appendMoof, mdat straight from the access units) is
// byte for byte what mediacommon's fmp4.Init.Marshal and fmp4.Part.Marshal
// make of the same samples.
func TestPartMatchesMediacommon(t *testing.T) {
	aacConf, err := (&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		audio *media.AudioTrack
		// ptsOffset gives frame i a composition offset, as B-frames do.
		ptsOffset func(i int) time.Duration
	}{
		{name: "video"},
		{name: "video with composition offsets", ptsOffset: func(i int) time.Duration { return time.Duration(i%3) * 40 * time.Millisecond }},
		{name: "video and aac", audio: &media.AudioTrack{Codec: media.AAC, ClockRate: 48000, ChannelCount: 1, Config: aacConf}},
		{name: "video and g711 mu-law", audio: &media.AudioTrack{Codec: media.G711, ClockRate: 8000, ChannelCount: 1, MULaw: true}},
		{name: "video and g711 a-law stereo", audio: &media.AudioTrack{Codec: media.G711, ClockRate: 8000, ChannelCount: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t)
			r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
			w, _ := r.Camera("cam", 0)
			s := stream(c, "cam", 1, t0)
			s.Audio = tc.audio
			w.OnStream(s)
			f := &feeder{c: c, wall: t0}
			var audioAt time.Duration
			for i := range 2 * len(c.Frames) / 3 {
				au := f.next()
				if tc.ptsOffset != nil {
					au.PTS += tc.ptsOffset(i)
				}
				for tc.audio != nil && audioAt < au.DTS {
					a := media.AccessUnit{Kind: media.Audio, DTS: audioAt, PTS: audioAt, Wall: t0.Add(audioAt)}
					if tc.audio.Codec == media.AAC {
						a.Payload = [][]byte{bytes.Repeat([]byte{byte(i)}, 100+i%7), bytes.Repeat([]byte{byte(i + 1)}, 90)}
						audioAt += 2 * time.Second * 1024 / 48000
					} else {
						a.Payload = [][]byte{bytes.Repeat([]byte{byte(i)}, 80), bytes.Repeat([]byte{byte(3 * i)}, 81)}
						audioAt += 20 * time.Millisecond
					}
					w.OnAccessUnit(a)
				}
				w.OnAccessUnit(au)
			}
			if err := r.CloseCamera("cam"); err != nil {
				t.Fatal(err)
			}
			segs, _, err := r.Catalog().List("cam", t0, t0.Add(time.Minute))
			if err != nil || len(segs) < 2 {
				t.Fatalf("segments %+v %v", segs, err)
			}
			for _, seg := range segs {
				b, err := os.ReadFile(seg.Path)
				if err != nil {
					t.Fatal(err)
				}
				var init fmp4.Init
				if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
				var want seekablebuffer.Buffer
				if err := init.Marshal(&want); err != nil {
					t.Fatal(err)
				}
				var parts fmp4.Parts
				if err := parts.Unmarshal(b[want.Len():]); err != nil {
					t.Fatal(err)
				}
				moofs, frames := 0, 0
				for off := want.Len(); off+8 <= len(b); off += int(binary.BigEndian.Uint32(b[off:])) {
					if string(b[off+4:off+8]) == "moof" {
						moofs++
					}
				}
				for _, p := range parts {
					if err := p.Marshal(&want); err != nil {
						t.Fatal(err)
					}
					frames += len(p.Tracks[0].Samples)
				}
				if !bytes.Equal(b, want.Bytes()) {
					t.Errorf("segment %s: %d bytes differ from mediacommon's %d", seg.ID, len(b), want.Len())
				}
				if len(parts) != moofs || len(parts) < 3 || frames != seg.Frames {
					t.Errorf("segment %s: %d parts, %d moofs, %d frames, index says %d", seg.ID, len(parts), moofs, frames, seg.Frames)
				}
				if tc.audio != nil && len(parts[0].Tracks) != 2 {
					t.Errorf("segment %s: %d tracks in the first part", seg.ID, len(parts[0].Tracks))
				}
			}
		})
	}
}
