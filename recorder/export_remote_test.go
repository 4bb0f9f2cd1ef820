package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countingWriter counts what an export reader hands out.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// firstByteOf is the offset in x's file of the first byte read from
// source segment id.
func firstByteOf(t *testing.T, x *Export, id string) int64 {
	t.Helper()
	for k, c := range x.chunks {
		if c.mem == nil && x.Segments[c.src].ID == id {
			return x.starts[k]
		}
	}
	t.Fatalf("segment %s is not read by the export", id)
	return 0
}

// Another node's segment that arrives other than listed fails the export
// before any of its bytes is handed out: the reader never yields a whole
// file, whatever the format, and the error names the node and segment.
func TestRemoteSourceCheckedBeforeItsBytesAreSent(t *testing.T) {
	segs := recordOn(t, "village-2", 1, t0, 250) // 10 s: three segments
	if len(segs) < 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	bad := segs[1]
	moof := func(b []byte) int { // offset of the first moof box
		return bytes.Index(b, []byte("moof")) - 4
	}
	cases := []struct {
		name  string
		alter func(b []byte) []byte
		list  func(s *Segment, altered []byte) // what the node lists
		want  string                           // in the error; "" for none
	}{
		{"intact", nil, nil, ""},
		{"one media byte flipped", func(b []byte) []byte { b[len(b)-100] ^= 0x40; return b }, nil, "sha256"},
		{"a byte too many", func(b []byte) []byte { return append(b, 0) }, nil, "more than"},
		{"cut short", func(b []byte) []byte { return b[:len(b)-1] }, nil, "received"},
		// the node's bytes and hash agree, but not with the boxes it
		// sent to plan from
		{"boxes not the bytes'", func(b []byte) []byte { b[moof(b)+20] ^= 1; return b },
			func(s *Segment, altered []byte) { sum := sha256.Sum256(altered); s.SHA256 = hex.EncodeToString(sum[:]) }, "boxes"},
	}
	for _, format := range []string{FormatMP4, FormatFMP4} {
		for _, tc := range cases {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				srcs := asRemote(t, segs, func(i int, b []byte) []byte {
					if segs[i].ID == bad.ID && tc.alter != nil {
						return tc.alter(b)
					}
					return b
				})
				if tc.list != nil {
					data, err := os.ReadFile(bad.Path)
					if err != nil {
						t.Fatal(err)
					}
					tc.list(&srcs[1].Segment, tc.alter(data))
				}
				x, err := PlanExportOf(ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(10 * time.Second), Format: format}, srcs)
				if err != nil {
					t.Fatal(err)
				}
				rd := x.Reader()
				var w countingWriter
				_, err = rd.WriteTo(&w)
				if cerr := rd.Close(); cerr != nil {
					t.Fatal(cerr)
				}
				if tc.want == "" {
					if err != nil || w.n != x.Size {
						t.Fatalf("read %d of %d bytes: %v", w.n, x.Size, err)
					}
					return
				}
				var re *RemoteSourceError
				if !errors.As(err, &re) || re.Node != "village-2" || re.Segment != bad.ID || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want a *RemoteSourceError of village-2's %s about %q", err, bad.ID, tc.want)
				}
				if errors.Is(err, ErrIntegrity) {
					t.Errorf("another node's bytes reported as this node's damage: %v", err)
				}
				if first := firstByteOf(t, x, bad.ID); w.n > first {
					t.Errorf("handed out %d bytes: %d of them from the segment that failed its check", w.n, w.n-first)
				}
			})
		}
	}
}

// A Range reader that seeks back to another node's source receives it
// again rather than handing out bytes it dropped.
func TestRemoteSourceReadAfterSeek(t *testing.T) {
	segs := recordOn(t, "village-2", 1, t0, 250)
	srcs := asRemote(t, segs, nil)
	x, err := PlanExportOf(ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(10 * time.Second)}, srcs)
	if err != nil {
		t.Fatal(err)
	}
	rd := x.Reader()
	defer rd.Close()
	whole, err := io.ReadAll(rd)
	if err != nil || int64(len(whole)) != x.Size {
		t.Fatalf("read %d of %d bytes: %v", len(whole), x.Size, err)
	}
	mid := firstByteOf(t, x, segs[1].ID) + 10
	if _, err := rd.Seek(mid, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	again := make([]byte, 4096)
	if _, err := io.ReadFull(rd, again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, whole[mid:mid+4096]) {
		t.Fatal("bytes read after a seek differ from the first read")
	}
}

// realBoxes are the boxes of a recorded segment and its size.
func realBoxes(t testing.TB) ([]byte, int64) {
	t.Helper()
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 50)
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(exportCamera, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	b, err := AppendSegmentBoxes(nil, segs[0])
	if err != nil {
		t.Fatal(err)
	}
	return b, segs[0].Bytes
}

// ParseSegmentBoxes reads another node's answer: whatever it accepts
// encodes exactly as it was sent (the holder's encoding is the reference),
// reads only inside itself, and plans without a panic.
func FuzzParseSegmentBoxes(f *testing.F) {
	real, size := realBoxes(f)
	f.Add(real, size)
	f.Add(real[:len(real)-3], size)
	box := func(typ string, n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(n))
		return append(append(b, typ...), make([]byte, n-8)...)
	}
	f.Add(append(box("ftyp", 16), box("mdat", 8)...), int64(16+1000))
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 16}, int64(16))
	f.Add([]byte{1, 2, 3}, int64(3))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		sb, err := ParseSegmentBoxes(b, size)
		if err != nil {
			return
		}
		again, err := appendBoxes(nil, sb, size)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted boxes encode as %x (%v), sent %x", again, err, b)
		}
		var scratch []byte
		_, _ = scanSource(sb, Segment{ID: "x", Bytes: size, Start: t0}, nil, &scratch)
	})
}

// An export of another node's segments is byte for byte the export of
// the same segments as files here, over more segments than are received
// ahead (so buffers are reused), in both formats.
func TestRemoteSourcesExportLikeFiles(t *testing.T) {
	segs := recordOn(t, "village-2", 1, t0, 700) // 28 s: seven segments
	for _, tc := range []struct {
		format   string
		memLimit int64 // 0: every source spooled to a file
	}{{FormatMP4, maxMemSource}, {FormatFMP4, maxMemSource}, {FormatMP4, 0}} {
		t.Run(tc.format+"/"+strconv.FormatInt(tc.memLimit, 10), func(t *testing.T) {
			req := ExportRequest{Camera: exportCamera, Start: t0.Add(time.Second), End: t0.Add(27 * time.Second), Format: tc.format}
			spool := t.TempDir()
			read := func(srcs []ExportSource) []byte {
				x, err := PlanExportOf(req, srcs)
				if err != nil {
					t.Fatal(err)
				}
				rd := x.Reader()
				rd.memLimit, rd.SpoolDir = tc.memLimit, spool
				defer rd.Close()
				var buf bytes.Buffer
				if _, err := rd.WriteTo(&buf); err != nil || int64(buf.Len()) != x.Size {
					t.Fatalf("read %d of %d bytes: %v", buf.Len(), x.Size, err)
				}
				return buf.Bytes()
			}
			if !bytes.Equal(read(asRemote(t, segs, nil)), read(asLocal(segs))) {
				t.Fatal("the export of another node's segments differs from the same segments' as files")
			}
			if ents, _ := os.ReadDir(spool); len(ents) != 0 {
				t.Errorf("%d spool files left behind", len(ents))
			}
		})
	}
}
