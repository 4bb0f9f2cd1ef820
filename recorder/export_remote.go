package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
func startFetch(x *Export, src int, dir string, memLimit int64, spare chan []byte) *fetched {
	f := &fetched{src: src, stop: make(chan struct{}), done: make(chan struct{}), spare: spare}
	go func() {
		defer close(f.done)
		f.err = f.receive(x.Segments[src], x.remote[src], dir, memLimit)
		if f.err != nil {
			f.release()
		}
	}()
	return f
}

// receive fetches seg into memory or a file and checks its size, SHA-256
// and boxes.
func (f *fetched) receive(seg Segment, rs *ExportSource, dir string, memLimit int64) error {
	mismatch := func(format string, args ...any) error {
		return &RemoteSourceError{Node: seg.Node, Camera: seg.Camera, Segment: seg.ID, Reason: fmt.Sprintf(format, args...)}
	}
	rc := &receiver{f: f, h: sha256.New(), left: seg.Bytes}
	if seg.Bytes <= memLimit {
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
	} else {
		file, err := os.CreateTemp(dir, "vigil-source-")
		if err != nil {
			return fmt.Errorf("camera %s: segment %s of node %s: %w", seg.Camera, seg.ID, seg.Node, err)
		}
		_ = os.Remove(file.Name()) // held open only
		f.file = file
	}
	if f.file == nil {
		// hashed beside the receiving, not between its reads: one
		// segment arrives about twice as fast
		q, hashed := make(chan []byte, 64), make(chan struct{})
		go func() {
			defer close(hashed)
			for b := range q {
				rc.h.Write(b)
			}
		}()
		rc.hashq = q
		rc.wait = func() { close(q); <-hashed; rc.hashq = nil }
	}
	err := rs.Fetch(f.stop, rc)
	if rc.wait != nil {
		rc.wait()
	}
	if err != nil {
		if rc.over {
			return mismatch("more than the %d bytes it listed were received", seg.Bytes)
		}
		return fmt.Errorf("camera %s: segment %s of node %s: %w", seg.Camera, seg.ID, seg.Node, err)
	}
	if got := seg.Bytes - rc.left; rc.left != 0 {
		return mismatch("received %d bytes, the node listed %d", got, seg.Bytes)
	}
	if got := hex.EncodeToString(rc.h.Sum(nil)); got != seg.SHA256 {
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

// receiver takes a source's bytes into its fetched (memory or file),
// hashing them, and fails past the size listed.
type receiver struct {
	f    *fetched
	h    hash.Hash
	left int64
	over bool
	// hashq, in memory, takes what was received to the goroutine that
	// hashes it (received memory is never written again); wait ends it.
	hashq chan []byte
	wait  func()
}

// hash hashes b, received into memory or not.
func (rc *receiver) hash(b []byte) {
	if rc.hashq != nil {
		rc.hashq <- b
		return
	}
	rc.h.Write(b)
}

var errTooLong = errors.New("more bytes than listed")

func (rc *receiver) Write(p []byte) (int, error) {
	if int64(len(p)) > rc.left {
		rc.over = true
		return 0, errTooLong
	}
	if rc.f.file != nil {
		if _, err := rc.f.file.Write(p); err != nil {
			return 0, err
		}
		rc.h.Write(p)
	} else {
		n := len(rc.f.mem)
		rc.f.mem = append(rc.f.mem, p...)
		rc.hash(rc.f.mem[n:])
	}
	rc.left -= int64(len(p))
	return len(p), nil
}

// ReadFrom reads straight into memory and hashes each read while it is
// in the cache: no copy through a buffer.
func (rc *receiver) ReadFrom(r io.Reader) (int64, error) {
	if rc.f.file != nil {
		return io.CopyBuffer(struct{ io.Writer }{rc}, r, make([]byte, 256<<10))
	}
	var total int64
	for {
		if rc.left == 0 { // anything more is more than listed
			var one [1]byte
			n, err := r.Read(one[:])
			if n > 0 {
				rc.over = true
				return total, errTooLong
			}
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			continue
		}
		mem := rc.f.mem
		n, err := r.Read(mem[len(mem):min(cap(mem), len(mem)+int(min(rc.left, 1<<20)))])
		if n > 0 {
			rc.hash(mem[len(mem) : len(mem)+n])
		}
		rc.f.mem = mem[:len(mem)+n]
		rc.left -= int64(n)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// openRemote makes source src, another node's, the one read: received
// and checked whole before any of it is handed out.
func (r *ExportReader) openRemote(src int) error {
	f := r.fetches[src]
	if f == nil {
		f = startFetch(r.x, src, r.SpoolDir, r.memLimit, r.spare)
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
			r.fetches[k] = startFetch(r.x, k, r.SpoolDir, r.memLimit, r.spare)
		}
	}
}
