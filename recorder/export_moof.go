package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// maxSamplesPerTrun bounds one trun as mediacommon's reader does.
const maxSamplesPerTrun = 120 * 160

var errBadMoof = errors.New("malformed moof")

// parseMoof reads the sample table of one fragment: moof is the whole moof
// box found at file offset moofOff; its samples must lie in the mdat
// payload [dataStart, dataEnd). It is the hot path of export planning (an
// hour holds 3,600 fragments), so it reads the few boxes it needs by hand
// instead of through a reflective box reader. Sample wall times are segStart
// plus the sample's decode time: every track of a segment counts from the
// segment's start.
func parseMoof(moof []byte, moofOff, dataStart, dataEnd int64, init *fmp4.Init, segStart time.Time) (srcPart, error) {
	be := binary.BigEndian
	sp := srcPart{tracks: make([][]srcSample, len(init.Tracks))}
	for body := moof[8:]; len(body) > 0; {
		typ, box, rest, err := nextBox(body)
		if err != nil {
			return sp, err
		}
		body = rest
		if typ != "traf" {
			continue
		}
		var (
			ti                     = -1
			base                   = moofOff
			defDur, defSize, defFl uint32
			dts                    uint64
			haveTfdt               bool
			next                   = int64(-1) // data position after the previous trun
		)
		for tb := box; len(tb) > 0; {
			typ, b, r, err := nextBox(tb)
			if err != nil {
				return sp, err
			}
			tb = r
			if len(b) < 4 {
				return sp, errBadMoof
			}
			version, flags := b[0], be.Uint32(b[0:4])&0xffffff
			b = b[4:]
			switch typ {
			case "tfhd":
				if len(b) < 4 {
					return sp, errBadMoof
				}
				ti = trackIndex(init, int(be.Uint32(b)))
				b = b[4:]
				take := func() (uint32, bool) {
					if len(b) < 4 {
						return 0, false
					}
					v := be.Uint32(b)
					b = b[4:]
					return v, true
				}
				ok := true
				if flags&0x01 != 0 {
					if len(b) < 8 {
						return sp, errBadMoof
					}
					base = int64(be.Uint64(b))
					b = b[8:]
				}
				if flags&0x02 != 0 {
					_, ok = take()
				}
				if ok && flags&0x08 != 0 {
					defDur, ok = take()
				}
				if ok && flags&0x10 != 0 {
					defSize, ok = take()
				}
				if ok && flags&0x20 != 0 {
					defFl, ok = take()
				}
				if !ok {
					return sp, errBadMoof
				}
			case "tfdt":
				if version == 1 && len(b) >= 8 {
					dts = be.Uint64(b)
				} else if version == 0 && len(b) >= 4 {
					dts = uint64(be.Uint32(b))
				} else {
					return sp, errBadMoof
				}
				haveTfdt = true
			case "trun":
				if ti < 0 {
					continue // no tfhd, or a track the init does not describe
				}
				if !haveTfdt {
					return sp, fmt.Errorf("%w: trun before tfdt", errBadMoof)
				}
				if len(b) < 4 {
					return sp, errBadMoof
				}
				count := be.Uint32(b)
				b = b[4:]
				if count > maxSamplesPerTrun {
					return sp, fmt.Errorf("%w: %d samples in one trun", errBadMoof, count)
				}
				pos := next
				if flags&0x01 != 0 {
					if len(b) < 4 {
						return sp, errBadMoof
					}
					pos = base + int64(int32(be.Uint32(b)))
					b = b[4:]
				}
				if pos < 0 {
					pos = dataStart
				}
				firstFlags, hasFirst := uint32(0), flags&0x04 != 0
				if hasFirst {
					if len(b) < 4 {
						return sp, errBadMoof
					}
					firstFlags = be.Uint32(b)
					b = b[4:]
				}
				per := 0
				for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} {
					if flags&f != 0 {
						per += 4
					}
				}
				if len(b) < per*int(count) {
					return sp, fmt.Errorf("%w: trun shorter than its %d samples", errBadMoof, count)
				}
				ts := uint64(init.Tracks[ti].TimeScale)
				samples := sp.tracks[ti]
				if samples == nil {
					samples = make([]srcSample, 0, count)
				}
				for i := range int(count) {
					s := srcSample{dur: defDur, size: defSize}
					fl := defFl
					if flags&0x100 != 0 {
						s.dur, b = be.Uint32(b), b[4:]
					}
					if flags&0x200 != 0 {
						s.size, b = be.Uint32(b), b[4:]
					}
					if flags&0x400 != 0 {
						fl, b = be.Uint32(b), b[4:]
					}
					if i == 0 && hasFirst {
						fl = firstFlags
					}
					if flags&0x800 != 0 {
						s.cts, b = int32(be.Uint32(b)), b[4:]
					}
					s.sync = fl&0x10000 == 0
					if s.size == 0 || pos < dataStart || pos+int64(s.size) > dataEnd {
						return sp, fmt.Errorf("%w: sample outside its mdat", errBadMoof)
					}
					s.off = pos
					pos += int64(s.size)
					// Every track's decode times count from the segment's
					// start (the writer's video keyframe is at 0): an audio
					// track that begins later keeps that offset.
					s.wall = segStart.UnixNano() + int64(ticksToDuration(dts, ts))
					dts += uint64(s.dur)
					samples = append(samples, s)
				}
				sp.tracks[ti] = samples
				next = pos
			}
		}
	}
	return sp, nil
}

// nextBox splits the first box off b: its type, its payload and the rest.
func nextBox(b []byte) (typ string, payload, rest []byte, err error) {
	if len(b) < 8 {
		return "", nil, nil, errBadMoof
	}
	size := uint64(binary.BigEndian.Uint32(b))
	hdr := uint64(8)
	if size == 1 {
		if len(b) < 16 {
			return "", nil, nil, errBadMoof
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < hdr || size > uint64(len(b)) {
		return "", nil, nil, fmt.Errorf("%w: box size %d", errBadMoof, size)
	}
	return string(b[4:8]), b[hdr:size], b[size:], nil
}
