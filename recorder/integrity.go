package recorder

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIntegrity means a closed segment's bytes no longer match its index
// line: its SHA-256 differs (the file was altered) or its size does (it
// was cut or grown). Unlike ErrSourceChanged it does not go away on retry.
var ErrIntegrity = errors.New("recording failed its integrity check")

// IntegrityError names the segment that failed its check and why.
type IntegrityError struct {
	Camera  string
	Segment string
	Reason  string // "sha256 mismatch", "truncated: …", "not indexed: …"
	// Known is true when the segment was listed damaged already and was
	// not read again: a refusal, not a new failed check.
	Known bool

	reported bool // counted and recorded once, however many layers see it
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("camera %s: segment %s: %s: %v", e.Camera, e.Segment, e.Reason, ErrIntegrity)
}

// Unwrap makes errors.Is(err, ErrIntegrity) true.
func (e *IntegrityError) Unwrap() error { return ErrIntegrity }

// HealthRecordingTampered is the health kind raised, once per damaged
// segment, when a closed segment fails its integrity check.
const HealthRecordingTampered = "recording_tampered"

const damagedFile = "damaged.jsonl"

// damageRecord is one line of <dir>/damaged.jsonl: the damage found stays
// listed across restarts, not only until the next verify pass.
type damageRecord struct {
	Camera  string    `json:"camera"`
	Segment string    `json:"segment"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// damageBook remembers the segments found damaged, on disk and in memory.
type damageBook struct {
	path string
	mu   sync.Mutex
	m    map[string]string // camera + "/" + segment → reason
	// onFound is called, outside mu, the first time a segment is found
	// damaged. The recorder counts, logs and raises the alert there.
	onFound func(camera, segment, reason string)
	// onCheck is called for every failed check, the first or not.
	onCheck func()
	now     func() time.Time
}

func openDamageBook(dir string) *damageBook {
	b := &damageBook{path: filepath.Join(dir, damagedFile), m: make(map[string]string), now: time.Now}
	f, err := os.Open(b.path)
	if err != nil {
		return b // none yet, or unreadable: the verifier finds the damage again
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec damageRecord
		if json.Unmarshal(sc.Bytes(), &rec) != nil || !ValidCameraID(rec.Camera) {
			continue
		}
		day, file, _, err := ParseSegmentID(rec.Segment)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, rec.Camera, day, file)); errors.Is(err, fs.ErrNotExist) {
			continue // retention deleted it since
		}
		b.m[rec.Camera+"/"+rec.Segment] = rec.Reason
	}
	return b
}

// found records a failed check of camera's segment; it reports whether the
// segment was not known to be damaged before.
func (b *damageBook) found(camera, segment, reason string) bool {
	if b == nil {
		return false
	}
	if b.onCheck != nil {
		b.onCheck()
	}
	k := camera + "/" + segment
	b.mu.Lock()
	_, known := b.m[k]
	if !known {
		b.m[k] = reason
		line, _ := json.Marshal(damageRecord{Camera: camera, Segment: segment, Reason: reason, At: b.now().UTC()})
		if f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			f.Write(append(line, '\n')) // best effort: the verifier finds it again after a restart
			f.Sync()
			f.Close()
		}
	}
	b.mu.Unlock()
	if !known && b.onFound != nil {
		b.onFound(camera, segment, reason)
	}
	return !known
}

// reason returns why camera's segment is known damaged, or "".
func (b *damageBook) reason(camera, segment string) string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[camera+"/"+segment]
}

func (b *damageBook) forget(camera, segment string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.m, camera+"/"+segment)
	b.mu.Unlock()
}

// verifiedFile reads a closed segment while hashing it front to back, and
// compares the hash with the index before the bytes that complete it are
// handed out: whoever reads the whole file either gets bytes that match
// the index or an error, never all the bytes of an altered file.
type verifiedFile struct {
	f      *os.File
	seg    Segment
	h      hash.Hash
	hashed int64 // bytes hashed so far, from offset 0
	buf    []byte
	err    error // the integrity failure, once found
	done   bool  // hashed whole and matching
	// ahead, when set, is hashing the whole file on another goroutine
	// (started while the previous source was read): advance then only
	// waits for its verdict when the end is reached.
	ahead *verifyAhead
}

// verifyAhead hashes a segment whole on its own goroutine, so that an
// export's next source is checked while the current one is sent instead of
// on the sending goroutine.
type verifyAhead struct {
	src  int
	done chan struct{}
	err  error
	stop atomic.Bool
}

var errStopped = errors.New("verification stopped")

func startVerifyAhead(src int, seg Segment) *verifyAhead {
	a := &verifyAhead{src: src, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = hashSegment(seg, make([]byte, 256<<10), func(int) error {
			if a.stop.Load() {
				return errStopped
			}
			return nil
		}, func(int) {})
	}()
	return a
}

// cancel stops the hashing and waits for its goroutine.
func (a *verifyAhead) cancel() {
	a.stop.Store(true)
	<-a.done
}

// openVerified opens a closed segment for verified reading. A missing file
// wraps ErrSourceChanged (retention deleted it after the listing); a file
// whose size differs from its index line is an *IntegrityError.
func openVerified(seg Segment) (*verifiedFile, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		return nil, fmt.Errorf("camera %s: segment %s: %v: %w", seg.Camera, seg.ID, err, ErrSourceChanged)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("camera %s: segment %s: %w", seg.Camera, seg.ID, err)
	}
	// An open segment is checked over the bytes listed of it, its flushed
	// parts, against the hash of exactly those; the writer appends past them.
	if st.Size() != seg.Bytes && !(seg.Open && st.Size() > seg.Bytes) {
		f.Close()
		return nil, sizeMismatch(seg, st.Size())
	}
	return &verifiedFile{f: f, seg: seg, h: sha256.New()}, nil
}

func sizeMismatch(seg Segment, size int64) *IntegrityError {
	reason := fmt.Sprintf("truncated: %d bytes on disk, %d indexed", size, seg.Bytes)
	if size > seg.Bytes {
		reason = fmt.Sprintf("grown: %d bytes on disk, %d indexed", size, seg.Bytes)
	}
	return &IntegrityError{Camera: seg.Camera, Segment: seg.ID, Reason: reason}
}

// advance hashes the file up to offset to; reaching the end, it compares.
func (v *verifiedFile) advance(to int64) error {
	if v.err != nil || v.done {
		return v.err
	}
	to = min(to, v.seg.Bytes)
	if v.ahead != nil {
		if to < v.seg.Bytes {
			return nil // the end's check covers these bytes
		}
		<-v.ahead.done
		if v.err = v.ahead.err; v.err == nil {
			v.done = true
		}
		return v.err
	}
	if v.buf == nil && v.hashed < to {
		v.buf = make([]byte, 256<<10)
	}
	for v.hashed < to {
		n := int(min(int64(len(v.buf)), to-v.hashed))
		m, err := v.f.ReadAt(v.buf[:n], v.hashed)
		v.h.Write(v.buf[:m])
		v.hashed += int64(m)
		if err != nil && m < n {
			if errors.Is(err, io.EOF) {
				v.err = sizeMismatch(v.seg, v.hashed)
			} else {
				v.err = fmt.Errorf("camera %s: segment %s: read: %w", v.seg.Camera, v.seg.ID, err)
			}
			return v.err
		}
	}
	if v.hashed == v.seg.Bytes {
		var sum [sha256.Size]byte
		if hex.EncodeToString(v.h.Sum(sum[:0])) != v.seg.SHA256 {
			v.err = &IntegrityError{Camera: v.seg.Camera, Segment: v.seg.ID, Reason: "sha256 mismatch"}
			return v.err
		}
		v.done, v.buf = true, nil
	}
	return nil
}

// finish hashes the rest of the file and compares.
func (v *verifiedFile) finish() error { return v.advance(v.seg.Bytes) }

// readAt reads len(p) bytes at off after hashing up to their end; with
// last, or when they end the file, after the whole file was checked.
func (v *verifiedFile) readAt(p []byte, off int64, last bool) (int, error) {
	to := off + int64(len(p))
	if last || to >= v.seg.Bytes {
		to = v.seg.Bytes
	}
	if v.ahead == nil && v.err == nil && !v.done && off == v.hashed && to == off+int64(len(p)) && len(p) > 0 {
		return v.readHashing(p, off)
	}
	if err := v.advance(to); err != nil {
		return 0, err
	}
	return v.f.ReadAt(p, off)
}

// readHashing reads p at off, where hashing stands, and hashes it there:
// a download read front to back reads each byte once instead of twice. The
// bytes that complete the file are handed out only after the hash matched.
func (v *verifiedFile) readHashing(p []byte, off int64) (int, error) {
	n, err := v.f.ReadAt(p, off)
	v.h.Write(p[:n])
	v.hashed += int64(n)
	if err != nil && n < len(p) {
		if errors.Is(err, io.EOF) {
			v.err = sizeMismatch(v.seg, v.hashed)
		} else {
			v.err = fmt.Errorf("camera %s: segment %s: read: %w", v.seg.Camera, v.seg.ID, err)
		}
		return 0, v.err
	}
	if v.hashed == v.seg.Bytes {
		var sum [sha256.Size]byte
		if hex.EncodeToString(v.h.Sum(sum[:0])) != v.seg.SHA256 {
			v.err = &IntegrityError{Camera: v.seg.Camera, Segment: v.seg.ID, Reason: "sha256 mismatch"}
			return 0, v.err
		}
		v.done, v.buf = true, nil
	}
	return n, nil
}

func (v *verifiedFile) Close() error {
	if v.ahead != nil {
		v.ahead.cancel()
	}
	return v.f.Close()
}

// segmentReader is a verified io.ReadSeeker over one segment for
// http.ServeContent.
type segmentReader struct {
	v   *verifiedFile
	pos int64
}

func (r *segmentReader) Read(p []byte) (int, error) {
	if r.pos >= r.v.seg.Bytes {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.v.seg.Bytes-r.pos)]
	n, err := r.v.readAt(p, r.pos, false)
	r.pos += int64(n)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

func (r *segmentReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.v.seg.Bytes
	}
	if off < 0 {
		return 0, errors.New("segment: negative position")
	}
	r.pos = off
	return off, nil
}

// hashSegment hashes a closed segment at no more than the pace allows and
// reports a mismatch as an *IntegrityError.
func hashSegment(seg Segment, buf []byte, pace func(n int) error, count func(n int)) error {
	v, err := openVerified(seg)
	if err != nil {
		return err
	}
	defer v.Close()
	v.buf = buf
	for !v.done {
		before := v.hashed
		err := v.advance(min(v.hashed+int64(len(buf)), seg.Bytes))
		n := int(v.hashed - before)
		count(n)
		if err != nil {
			return err
		}
		if err := pace(n); err != nil {
			return err
		}
		if seg.Bytes == 0 {
			break
		}
	}
	return nil
}

// unindexedReason is the damage of a file in a day folder that no valid
// index line names.
func unindexedReason(badLines int) string {
	if badLines > 0 {
		return fmt.Sprintf("not indexed: %d damaged index line(s)", badLines)
	}
	return "not indexed"
}
