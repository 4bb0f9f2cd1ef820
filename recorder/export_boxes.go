package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// A segment's boxes are the segment file without its media: every
// top-level box whole, except each mdat, of which only the header is kept.
// They hold what an export plans from (the init and the sample tables)
// and are about 0.1 % of the file, so a node plans an export of another
// node's footage from them before any media crosses the network; the
// media then arrives one segment at a time and is checked against the
// SHA-256 its node listed, and its boxes against the ones planned from,
// before any of it is sent on.

// MaxSegmentBoxes bounds the boxes of one segment another node may send
// (an hour-long segment at 25 fps has about 2 MB of them).
const MaxSegmentBoxes = 32 << 20

// errBoxes is a malformed SegmentBoxes encoding.
var errBoxes = errors.New("malformed segment boxes")

// AppendSegmentBoxes appends to b the boxes of seg's first seg.Bytes
// bytes, read from seg.Path: what a node sends another that plans an
// export of its footage.
func AppendSegmentBoxes(b []byte, seg Segment) ([]byte, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		return b, fmt.Errorf("camera %s: segment %s: %v: %w", seg.Camera, seg.ID, err, ErrSourceChanged)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return b, fmt.Errorf("camera %s: segment %s: %w", seg.Camera, seg.ID, err)
	}
	if st.Size() != seg.Bytes && !(seg.Open && st.Size() > seg.Bytes) {
		return b, sizeMismatch(seg, st.Size())
	}
	out, err := appendBoxes(b, f, seg.Bytes)
	if err != nil {
		return b, fmt.Errorf("camera %s: segment %s: %w", seg.Camera, seg.ID, err)
	}
	return out, nil
}

// appendBoxes appends the boxes of r's first n bytes. Bytes after the
// last whole box (fewer than a box header) are kept as they are.
func appendBoxes(b []byte, r io.ReaderAt, n int64) ([]byte, error) {
	var head [16]byte
	off := int64(0)
	for off+8 <= n {
		if _, err := r.ReadAt(head[:8], off); err != nil {
			return b, fmt.Errorf("box at %d: %w", off, err)
		}
		size, hdr := int64(binary.BigEndian.Uint32(head[:])), int64(8)
		if size == 1 {
			if off+16 > n {
				return b, fmt.Errorf("box at %d: %w", off, errBoxes)
			}
			if _, err := r.ReadAt(head[:16], off); err != nil {
				return b, fmt.Errorf("box at %d: %w", off, err)
			}
			size, hdr = int64(binary.BigEndian.Uint64(head[8:])), 16
		}
		if size < hdr || size > n-off {
			return b, fmt.Errorf("box %q at %d: bad size %d: %w", head[4:8], off, size, errBoxes)
		}
		keep := size
		if string(head[4:8]) == "mdat" {
			keep = hdr
		}
		if int64(len(b))+keep > MaxSegmentBoxes {
			return b, fmt.Errorf("boxes longer than %d bytes: %w", MaxSegmentBoxes, errBoxes)
		}
		b = append(b, make([]byte, keep)...)
		if _, err := r.ReadAt(b[len(b)-int(keep):], off); err != nil {
			return b, fmt.Errorf("box at %d: %w", off, err)
		}
		off += size
	}
	if off < n {
		b = append(b, make([]byte, n-off)...)
		if _, err := r.ReadAt(b[len(b)-int(n-off):], off); err != nil {
			return b, fmt.Errorf("tail at %d: %w", off, err)
		}
	}
	return b, nil
}

// SegmentBoxes are another node's segment's boxes (AppendSegmentBoxes),
// readable at the offsets they have in the segment file.
type SegmentBoxes struct {
	raw    []byte
	size   int64   // of the segment file they describe
	pieces []piece // runs of kept bytes, by file offset
}

// piece is raw[at:at+n] at file offset off.
type piece struct{ off, at, n int64 }

// ParseSegmentBoxes checks that b are the boxes of a file of size bytes
// and returns them; b is outside input (another node's answer) and is
// kept, not copied.
func ParseSegmentBoxes(b []byte, size int64) (*SegmentBoxes, error) {
	if len(b) > MaxSegmentBoxes || size < 0 {
		return nil, errBoxes
	}
	sb := &SegmentBoxes{raw: b, size: size}
	add := func(off, at, n int64) {
		if k := len(sb.pieces) - 1; k >= 0 && sb.pieces[k].off+sb.pieces[k].n == off {
			sb.pieces[k].n += n
			return
		}
		sb.pieces = append(sb.pieces, piece{off: off, at: at, n: n})
	}
	var off, at int64
	for at < int64(len(b)) {
		rest := b[at:]
		if len(rest) < 8 || off+8 > size {
			// the tail after the last whole box
			if int64(len(rest)) != size-off || len(rest) >= 8 {
				return nil, fmt.Errorf("tail of %d bytes at %d: %w", len(rest), off, errBoxes)
			}
			add(off, at, int64(len(rest)))
			off, at = size, int64(len(b))
			break
		}
		boxSize, hdr := int64(binary.BigEndian.Uint32(rest)), int64(8)
		if boxSize == 1 {
			if len(rest) < 16 {
				return nil, fmt.Errorf("box at %d: %w", off, errBoxes)
			}
			boxSize, hdr = int64(binary.BigEndian.Uint64(rest[8:])), 16
		}
		if boxSize < hdr || boxSize > size-off {
			return nil, fmt.Errorf("box at %d: bad size %d: %w", off, boxSize, errBoxes)
		}
		keep := boxSize
		if string(rest[4:8]) == "mdat" {
			keep = hdr
		}
		if keep > int64(len(rest)) {
			return nil, fmt.Errorf("box at %d: cut short: %w", off, errBoxes)
		}
		add(off, at, keep)
		off += boxSize
		at += keep
	}
	if off != size {
		return nil, fmt.Errorf("boxes describe %d bytes of a %d-byte file: %w", off, size, errBoxes)
	}
	return sb, nil
}

// ReadAt reads the kept bytes at file offset off; a read that reaches
// into media (or past the end) fails.
func (sb *SegmentBoxes) ReadAt(p []byte, off int64) (int, error) {
	i := sort.Search(len(sb.pieces), func(i int) bool { return sb.pieces[i].off > off }) - 1
	if i < 0 {
		return 0, errBoxes
	}
	pc := sb.pieces[i]
	if off+int64(len(p)) > pc.off+pc.n {
		return 0, fmt.Errorf("read of %d bytes at %d: not in the boxes: %w", len(p), off, errBoxes)
	}
	return copy(p, sb.raw[pc.at+off-pc.off:]), nil
}

// Bytes returns the encoding the boxes were parsed from.
func (sb *SegmentBoxes) Bytes() []byte { return sb.raw }
