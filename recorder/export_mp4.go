package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A progressive MP4's moov lists every sample: an hour at 25 fps is 90,000
// entries per table. pmp4 builds them through a reflective box writer (about
// 130 ms an hour here), which alone would miss the 50 ms first-byte target,
// so the tables are written directly. The boxes that describe the codec
// (stsd) and the tracks (tkhd, hdlr, vmhd…) are copied from the recorded init
// segment, so the export carries exactly the parameters the camera sent.

// mp4Track is one track of a progressive export: its samples and, for each
// chunk (a run of samples contiguous in mdat), the sample count and the
// offset relative to the start of the mdat payload.
type mp4Track struct {
	id        uint32
	timeScale uint32
	start     uint64 // where the first sample lies after the export's start, in timeScale
	samples   []srcSample
	chunkN    []uint32
	chunkOff  []int64
}

var errBadInit = errors.New("unexpected init segment layout")

// buildMoov returns ftyp, moov and the mdat header of a progressive MP4
// whose mdat payload is dataSize bytes, with tracks described by the
// recorded init moov srcMoov.
//
// The movie carries created as its creation time and comment as its comment
// tag (QuickTime udta ©cmt, which ffprobe shows as "comment").
func buildMoov(srcMoov []byte, tracks []*mp4Track, dataSize int64, samples int, created time.Time, comment string) ([]byte, error) {
	be := binary.BigEndian
	var ftyp []byte
	ftyp = be.AppendUint32(ftyp, 28)
	ftyp = append(ftyp, "ftypisom"...)
	ftyp = be.AppendUint32(ftyp, 0x200)
	ftyp = append(ftyp, "isomiso2mp41"...)

	_, moovBody, _, err := nextBox(srcMoov)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadInit, err)
	}
	var mvhd []byte
	traks := map[uint32][]byte{}
	for b := moovBody; len(b) > 0; {
		typ, payload, rest, err := nextBox(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadInit, err)
		}
		switch typ {
		case "mvhd":
			mvhd = b[:len(b)-len(rest)]
		case "trak":
			id, err := trakID(payload)
			if err != nil {
				return nil, err
			}
			traks[id] = payload
		}
		b = rest
	}
	if mvhd == nil {
		return nil, fmt.Errorf("%w: no mvhd", errBadInit)
	}
	movieScale, err := mvhdTimeScale(mvhd)
	if err != nil {
		return nil, err
	}

	large := dataSize+16 > 1<<32-1
	// stsz and ctts take 4 and 8 bytes a sample, stss and stts a few more
	moov := make([]byte, 0, len(srcMoov)+1024+samples*20)
	moov = boxStart(moov, "moov")
	var movieDur uint64
	for _, t := range tracks {
		d := t.start + trackTicks(t)
		if md := d * uint64(movieScale) / uint64(t.timeScale); md > movieDur {
			movieDur = md
		}
	}
	mv := append([]byte(nil), mvhd...)
	if err := patchDuration(mv, 8, movieDur); err != nil {
		return nil, err
	}
	if err := patchCreation(mv, created); err != nil {
		return nil, err
	}
	moov = append(moov, mv...)
	var offsetFields []offsetField
	for _, t := range tracks {
		src, ok := traks[t.id]
		if !ok {
			return nil, fmt.Errorf("%w: no trak %d", errBadInit, t.id)
		}
		moov, offsetFields, err = appendTrak(moov, src, t, movieScale, large, offsetFields)
		if err != nil {
			return nil, err
		}
	}
	moov = appendUdta(moov, comment)
	moov = boxEnd(moov, 0)

	head := make([]byte, 0, len(ftyp)+len(moov)+16)
	head = append(append(head, ftyp...), moov...)
	mdatHeader := int64(8)
	if large {
		mdatHeader = 16
	}
	dataStart := int64(len(head)) + mdatHeader
	for _, f := range offsetFields {
		off := len(ftyp) + f.pos
		for i, rel := range f.track.chunkOff {
			if large {
				be.PutUint64(head[off+8*i:], uint64(dataStart+rel))
			} else {
				be.PutUint32(head[off+4*i:], uint32(dataStart+rel))
			}
		}
	}
	if large {
		head = be.AppendUint32(head, 1)
		head = append(head, "mdat"...)
		head = be.AppendUint64(head, uint64(16+dataSize))
	} else {
		head = be.AppendUint32(head, uint32(8+dataSize))
		head = append(head, "mdat"...)
	}
	return head, nil
}

type offsetField struct {
	pos   int // position of the first chunk offset in moov
	track *mp4Track
}

func trackTicks(t *mp4Track) uint64 {
	var d uint64
	for _, s := range t.samples {
		d += uint64(s.dur)
	}
	return d
}

func boxStart(b []byte, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, 0)
	return append(b, typ...)
}

// boxEnd patches the size of the box started at start.
func boxEnd(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

func trakID(trak []byte) (uint32, error) {
	for b := trak; len(b) > 0; {
		typ, p, rest, err := nextBox(b)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errBadInit, err)
		}
		if typ == "tkhd" {
			if len(p) < 4 {
				return 0, errBadInit
			}
			off := 4 + 8 // version/flags, creation and modification (v0)
			if p[0] == 1 {
				off = 4 + 16
			}
			if len(p) < off+4 {
				return 0, errBadInit
			}
			return binary.BigEndian.Uint32(p[off:]), nil
		}
		b = rest
	}
	return 0, fmt.Errorf("%w: trak without tkhd", errBadInit)
}

func mvhdTimeScale(mvhd []byte) (uint32, error) {
	p := mvhd[8:]
	off := 4 + 8
	if len(p) > 0 && p[0] == 1 {
		off = 4 + 16
	}
	if len(p) < off+4 {
		return 0, errBadInit
	}
	ts := binary.BigEndian.Uint32(p[off:])
	if ts == 0 {
		return 0, fmt.Errorf("%w: zero time scale", errBadInit)
	}
	return ts, nil
}

// patchDuration sets the duration of a full box (mvhd, tkhd, mdhd) whose
// header is hdr bytes long. In mvhd and mdhd the duration follows the time
// scale; in tkhd it follows the track ID and a reserved word: the same
// position.
func patchDuration(box []byte, hdr int, d uint64) error {
	p := box[hdr:]
	if len(p) < 4 {
		return errBadInit
	}
	if p[0] == 1 {
		if len(p) < 4+16+4+8 {
			return errBadInit
		}
		binary.BigEndian.PutUint64(p[4+16+4:], d)
		return nil
	}
	if len(p) < 4+8+4+4 {
		return errBadInit
	}
	if d > 1<<32-1 {
		return fmt.Errorf("duration %d does not fit a version 0 box; export a shorter range or use fmp4", d)
	}
	binary.BigEndian.PutUint32(p[4+8+4:], uint32(d))
	return nil
}

// appendTrak writes the trak of t: tkhd, mdhd, hdlr and the media header
// copied from the recorded trak, durations patched, and a new sample table.
func appendTrak(moov, src []byte, t *mp4Track, movieScale uint32, large bool, fields []offsetField) ([]byte, []offsetField, error) {
	ticks := trackTicks(t)
	trak := len(moov)
	moov = boxStart(moov, "trak")
	for b := src; len(b) > 0; {
		typ, p, rest, err := nextBox(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errBadInit, err)
		}
		whole := b[:len(b)-len(rest)]
		b = rest
		switch typ {
		case "tkhd":
			at := len(moov)
			moov = append(moov, whole...)
			movieTicks := ticks * uint64(movieScale) / uint64(t.timeScale)
			// rounded, not truncated: the movie's time scale is often
			// coarse (1/1000 s)
			emptyTicks := (t.start*uint64(movieScale) + uint64(t.timeScale)/2) / uint64(t.timeScale)
			if err := patchDuration(moov[at:], 8, emptyTicks+movieTicks); err != nil {
				return nil, nil, err
			}
			// edts: an empty edit for a track that begins after the
			// export's start (audio keeps its offset to the video), then
			// the media from its first sample's composition time.
			be := binary.BigEndian
			entries := uint32(1)
			if emptyTicks > 0 {
				entries = 2
			}
			moov = be.AppendUint32(moov, 8+16+12*entries)
			moov = append(moov, "edts"...)
			moov = be.AppendUint32(moov, 16+12*entries)
			moov = append(moov, "elst"...)
			moov = be.AppendUint32(moov, 0)
			moov = be.AppendUint32(moov, entries)
			if emptyTicks > 0 {
				moov = be.AppendUint32(moov, uint32(min(emptyTicks, 1<<32-1)))
				moov = be.AppendUint32(moov, 0xffffffff) // media time -1: empty
				moov = be.AppendUint32(moov, 1<<16)
			}
			moov = be.AppendUint32(moov, uint32(min(movieTicks, 1<<32-1)))
			var mediaTime int32
			if len(t.samples) > 0 && t.samples[0].cts > 0 {
				mediaTime = t.samples[0].cts
			}
			moov = be.AppendUint32(moov, uint32(mediaTime))
			moov = be.AppendUint32(moov, 1<<16) // rate 1.0
		case "mdia":
			mdia := len(moov)
			moov = boxStart(moov, "mdia")
			for mb := p; len(mb) > 0; {
				typ, mp, rest, err := nextBox(mb)
				if err != nil {
					return nil, nil, fmt.Errorf("%w: %v", errBadInit, err)
				}
				whole := mb[:len(mb)-len(rest)]
				mb = rest
				switch typ {
				case "mdhd":
					at := len(moov)
					moov = append(moov, whole...)
					if err := patchDuration(moov[at:], 8, ticks); err != nil {
						return nil, nil, err
					}
				case "minf":
					minf := len(moov)
					moov = boxStart(moov, "minf")
					for nb := mp; len(nb) > 0; {
						typ, np, rest, err := nextBox(nb)
						if err != nil {
							return nil, nil, fmt.Errorf("%w: %v", errBadInit, err)
						}
						whole := nb[:len(nb)-len(rest)]
						nb = rest
						if typ != "stbl" {
							moov = append(moov, whole...)
							continue
						}
						stsd, err := findBox(np, "stsd")
						if err != nil {
							return nil, nil, err
						}
						var pos int
						moov, pos = appendStbl(moov, stsd, t, large)
						fields = append(fields, offsetField{pos: pos, track: t})
					}
					moov = boxEnd(moov, minf)
				default:
					moov = append(moov, whole...)
				}
			}
			moov = boxEnd(moov, mdia)
		}
		// edts and anything else of a fragmented init do not apply
	}
	return boxEnd(moov, trak), fields, nil
}

func findBox(b []byte, want string) ([]byte, error) {
	for len(b) > 0 {
		typ, _, rest, err := nextBox(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadInit, err)
		}
		if typ == want {
			return b[:len(b)-len(rest)], nil
		}
		b = rest
	}
	return nil, fmt.Errorf("%w: no %s", errBadInit, want)
}

// appendStbl writes the sample table; it returns where the chunk offsets
// start, to be filled once the size of moov is known.
func appendStbl(b, stsd []byte, t *mp4Track, large bool) ([]byte, int) {
	be := binary.BigEndian
	stbl := len(b)
	b = boxStart(b, "stbl")
	b = append(b, stsd...)

	// stts: runs of equal durations
	at := len(b)
	b = boxStart(b, "stts")
	b = be.AppendUint32(b, 0)
	countAt := len(b)
	b = be.AppendUint32(b, 0)
	var n uint32
	for i := 0; i < len(t.samples); {
		j := i + 1
		for j < len(t.samples) && t.samples[j].dur == t.samples[i].dur {
			j++
		}
		b = be.AppendUint32(b, uint32(j-i))
		b = be.AppendUint32(b, t.samples[i].dur)
		n++
		i = j
	}
	be.PutUint32(b[countAt:], n)
	b = boxEnd(b, at)

	// stss: only when some sample is not a sync sample
	allSync, anyCTS := true, false
	for _, s := range t.samples {
		allSync = allSync && s.sync
		anyCTS = anyCTS || s.cts != 0
	}
	if !allSync {
		at = len(b)
		b = boxStart(b, "stss")
		b = be.AppendUint32(b, 0)
		countAt = len(b)
		b = be.AppendUint32(b, 0)
		n = 0
		for i, s := range t.samples {
			if s.sync {
				b = be.AppendUint32(b, uint32(i+1))
				n++
			}
		}
		be.PutUint32(b[countAt:], n)
		b = boxEnd(b, at)
	}

	// ctts (version 1: signed offsets) when any sample has one
	if anyCTS {
		at = len(b)
		b = boxStart(b, "ctts")
		b = be.AppendUint32(b, 1<<24)
		countAt = len(b)
		b = be.AppendUint32(b, 0)
		n = 0
		for i := 0; i < len(t.samples); {
			j := i + 1
			for j < len(t.samples) && t.samples[j].cts == t.samples[i].cts {
				j++
			}
			b = be.AppendUint32(b, uint32(j-i))
			b = be.AppendUint32(b, uint32(t.samples[i].cts))
			n++
			i = j
		}
		be.PutUint32(b[countAt:], n)
		b = boxEnd(b, at)
	}

	// stsc: runs of chunks with the same sample count
	at = len(b)
	b = boxStart(b, "stsc")
	b = be.AppendUint32(b, 0)
	countAt = len(b)
	b = be.AppendUint32(b, 0)
	n = 0
	for i, c := range t.chunkN {
		if i == 0 || c != t.chunkN[i-1] {
			b = be.AppendUint32(b, uint32(i+1))
			b = be.AppendUint32(b, c)
			b = be.AppendUint32(b, 1)
			n++
		}
	}
	be.PutUint32(b[countAt:], n)
	b = boxEnd(b, at)

	// stsz
	at = len(b)
	b = boxStart(b, "stsz")
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, 0) // sizes vary
	b = be.AppendUint32(b, uint32(len(t.samples)))
	for _, s := range t.samples {
		b = be.AppendUint32(b, s.size)
	}
	b = boxEnd(b, at)

	// stco or co64, offsets filled in later
	at = len(b)
	if large {
		b = boxStart(b, "co64")
	} else {
		b = boxStart(b, "stco")
	}
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, uint32(len(t.chunkOff)))
	pos := len(b)
	width := 4
	if large {
		width = 8
	}
	b = append(b, make([]byte, width*len(t.chunkOff))...)
	b = boxEnd(b, at)
	return boxEnd(b, stbl), pos
}

// mp4Epoch is where MP4 times count from.
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

// patchCreation sets the creation and modification times of an mvhd box
// (whole, header included) to t, seconds since 1904.
func patchCreation(mvhd []byte, t time.Time) error {
	p := mvhd[8:]
	secs := uint64(max(t.Sub(mp4Epoch)/time.Second, 0))
	switch {
	case len(p) >= 4+16 && p[0] == 1:
		binary.BigEndian.PutUint64(p[4:], secs)
		binary.BigEndian.PutUint64(p[12:], secs)
	case len(p) >= 4+8 && p[0] == 0:
		if secs > 1<<32-1 {
			return fmt.Errorf("%w: creation time past 2040 in a version 0 mvhd", errBadInit)
		}
		binary.BigEndian.PutUint32(p[4:], uint32(secs))
		binary.BigEndian.PutUint32(p[8:], uint32(secs))
	default:
		return fmt.Errorf("%w: short mvhd", errBadInit)
	}
	return nil
}

// appendUdta appends a udta box holding comment as a QuickTime ©cmt text
// (16-bit length, language 0 = undetermined in the Macintosh scheme… ffmpeg
// reads it as UTF-8 with language code 0x55c4 "und").
func appendUdta(b []byte, comment string) []byte {
	if comment == "" {
		return b
	}
	be := binary.BigEndian
	text := comment
	if len(text) > 1<<15 {
		text = text[:1<<15]
	}
	udta := len(b)
	b = boxStart(b, "udta")
	cmt := len(b)
	b = boxStart(b, "\xa9cmt")
	b = be.AppendUint16(b, uint16(len(text)))
	b = be.AppendUint16(b, 0x55c4) // ISO 639-2 "und" packed
	b = append(b, text...)
	b = boxEnd(b, cmt)
	return boxEnd(b, udta)
}

// withMovieTags returns a copy of an fMP4 init segment whose mvhd carries
// created and whose moov ends with a udta holding comment.
func withMovieTags(init []byte, created time.Time, comment string) ([]byte, error) {
	out := make([]byte, 0, len(init)+len(comment)+32)
	for b := init; len(b) > 0; {
		typ, body, rest, err := nextBox(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadInit, err)
		}
		whole := b[:len(b)-len(rest)]
		b = rest
		if typ != "moov" {
			out = append(out, whole...)
			continue
		}
		moov := len(out)
		out = boxStart(out, "moov")
		for mb := body; len(mb) > 0; {
			typ, _, rest, err := nextBox(mb)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errBadInit, err)
			}
			at := len(out)
			out = append(out, mb[:len(mb)-len(rest)]...)
			mb = rest
			if typ == "mvhd" {
				if err := patchCreation(out[at:], created); err != nil {
					return nil, err
				}
			}
		}
		out = appendUdta(out, comment)
		out = boxEnd(out, moov)
	}
	return out, nil
}
