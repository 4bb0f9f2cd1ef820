package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ExportSource is one segment of a cluster export (PlanExportOf): a file
// of this node (Segment.Path set), or another node's segment, planned from
// its Boxes and read through Fetch while the export is sent.
type ExportSource struct {
	Segment
	// Boxes are another node's segment's boxes (ParseSegmentBoxes of
	// what it sent for Segment.Bytes bytes).
	Boxes *SegmentBoxes
	// Fetch writes another node's segment's first Segment.Bytes bytes to
	// w as that node sends them. It returns early, with an error, once
	// stop is closed. It may be called more than once (a Range request
	// that goes back).
	Fetch func(stop <-chan struct{}, w io.Writer) error
}

// RemoteSourceError is another node's segment whose bytes, as received
// here, are not what that node listed (size or SHA-256), or whose boxes
// are not the ones the export was planned from. It is never this node's
// damage: the segment is not in its catalog.
type RemoteSourceError struct {
	Node, Camera, Segment string
	Reason                string
}

func (e *RemoteSourceError) Error() string {
	return fmt.Sprintf("segment %s of camera %s from node %s: %s", e.Segment, e.Camera, e.Node, e.Reason)
}

// maxMemSource is the largest source of another node an export holds in
// memory while it is sent; a larger one is held in a temporary file.
const maxMemSource = 64 << 20

// fetchAhead is how many of another node's segments an export receives
// and checks while it sends the one before them.
const fetchAhead = 2

// fetched is one of another node's segments, received whole and checked,
// or being received.
type fetched struct {
	src  int
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error // set before done is closed
	mem  []byte
	file *os.File
	// spare takes mem back for the next fetch: allocating and clearing
	// 30 MB a segment cost more than the copy into it.
	spare chan []byte
}

// startFetch receives source src of x on its own goroutine.
func startFetch(x *Export, src int, dir string, spare chan []byte) *fetched {
	f := &fetched{src: src, stop: make(chan struct{}), done: make(chan struct{}), spare: spare}
	go func() {
		defer close(f.done)
		f.err = f.receive(x.Segments[src], x.remote[src], dir)
		if f.err != nil {
			f.release()
		}
	}()
	return f
}

// receive fetches seg into memory or a file and checks its size, SHA-256
// and boxes.
func (f *fetched) receive(seg Segment, rs *ExportSource, dir string) error {
	mismatch := func(format string, args ...any) error {
		return &RemoteSourceError{Node: seg.Node, Camera: seg.Camera, Segment: seg.ID, Reason: fmt.Sprintf(format, args...)}
	}
	var spool io.Writer
	if seg.Bytes <= maxMemSource {
		select {
		case b := <-f.spare:
			if int64(cap(b)) >= seg.Bytes {
				f.mem = b[:0]
			}
		default:
		}
		if f.mem == nil {
			f.mem = make([]byte, 0, seg.Bytes)
		}
		spool = (*memSpool)(&f.mem)
	} else {
		file, err := os.CreateTemp(dir, "vigil-source-")
		if err != nil {
			return fmt.Errorf("camera %s: segment %s of node %s: %w", seg.Camera, seg.ID, seg.Node, err)
		}
		_ = os.Remove(file.Name()) // held open only
		f.file = file
		spool = file
	}
	h := sha256.New()
	w := &limitedWriter{w: io.MultiWriter(spool, h), left: seg.Bytes}
	if err := rs.Fetch(f.stop, w); err != nil {
		if w.over {
			return mismatch("more than the %d bytes it listed were received", seg.Bytes)
		}
		return fmt.Errorf("camera %s: segment %s of node %s: %w", seg.Camera, seg.ID, seg.Node, err)
	}
	if got := seg.Bytes - w.left; w.left != 0 {
		return mismatch("received %d bytes, the node listed %d", got, seg.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != seg.SHA256 {
		return mismatch("received bytes with sha256 %s, the node listed %s", got, seg.SHA256)
	}
	boxes, err := appendBoxes(nil, f, seg.Bytes)
	if err != nil || !bytes.Equal(boxes, rs.Boxes.Bytes()) {
		return mismatch("its boxes differ from the ones the node sent to plan the export")
	}
	return nil
}

// ReadAt reads the received bytes.
func (f *fetched) ReadAt(p []byte, off int64) (int, error) {
	if f.file != nil {
		return f.file.ReadAt(p, off)
	}
	if off >= int64(len(f.mem)) {
		return 0, io.EOF
	}
	n := copy(p, f.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cancel stops the fetch, waits for its goroutine and frees what it
// received.
func (f *fetched) cancel() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	f.release()
}

func (f *fetched) release() {
	if f.mem != nil {
		select {
		case f.spare <- f.mem[:0]:
		default:
		}
	}
	f.mem = nil
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
}

type memSpool []byte

func (m *memSpool) Write(p []byte) (int, error) {
	*m = append(*m, p...)
	return len(p), nil
}

// limitedWriter fails a write past left bytes.
type limitedWriter struct {
	w    io.Writer
	left int64
	over bool
}

var errTooLong = errors.New("more bytes than listed")

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errTooLong
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// openRemote makes source src, another node's, the one read: received
// and checked whole before any of it is handed out.
func (r *ExportReader) openRemote(src int) error {
	f := r.fetches[src]
	if f == nil {
		f = startFetch(r.x, src, r.SpoolDir, r.spare)
		r.fetches[src] = f
	}
	r.fetchAhead(src)
	<-f.done
	if f.err != nil {
		return f.err
	}
	r.rem, r.cur = f, src
	return nil
}

// fetchAhead starts receiving the other nodes' sources among the
// fetchAhead after src, and drops any received for elsewhere (a seek).
func (r *ExportReader) fetchAhead(src int) {
	for k, f := range r.fetches {
		if k < src || k > src+fetchAhead {
			f.cancel()
			delete(r.fetches, k)
		}
	}
	for k := src + 1; k <= src+fetchAhead && k < len(r.x.Segments); k++ {
		if r.x.remote[k] != nil && r.fetches[k] == nil {
			r.fetches[k] = startFetch(r.x, k, r.SpoolDir, r.spare)
		}
	}
}
