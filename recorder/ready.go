package recorder

import (
	"fmt"
	"os"
)

// Ready reports whether the recorder can record now: its directory takes a
// new file, and the file system has at least MinFreeBytes free. The error
// says which check failed.
func (r *Recorder) Ready() error {
	f, err := os.CreateTemp(r.opts.Dir, ".vigil-ready-*")
	if err != nil {
		return fmt.Errorf("storage %s not writable: %w", r.opts.Dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("storage %s: %w", r.opts.Dir, err)
	}
	free, _, err := r.opts.Statfs(r.opts.Dir)
	if err != nil {
		return fmt.Errorf("storage %s: free space: %w", r.opts.Dir, err)
	}
	if free < r.opts.MinFreeBytes {
		return fmt.Errorf("storage %s: %d bytes free, below min_free_bytes %d", r.opts.Dir, free, r.opts.MinFreeBytes)
	}
	// An empty file fits on a full disk, and min_free_bytes may be 0: the
	// cameras' own writes say whether recording works.
	if n, kind := r.failingWriters(); n > 0 {
		return fmt.Errorf("storage %s: every recording camera (%d) fails to write (%s)", r.opts.Dir, n, kind)
	}
	return nil
}

// failingWriters returns the number of cameras with a stream when every
// one of them failed its last write, and the health kind of one; 0 when
// any camera records or none has a stream.
func (r *Recorder) failingWriters() (int, string) {
	r.mu.Lock()
	ws := make([]*Writer, 0, len(r.writers))
	for _, w := range r.writers {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	n, kind := 0, ""
	for _, w := range ws {
		w.mu.Lock()
		streaming, failed, k := w.stream != nil && !w.closed, w.failed, w.failKind
		w.mu.Unlock()
		if !streaming {
			continue
		}
		if !failed {
			return 0, ""
		}
		n, kind = n+1, k
	}
	return n, kind
}
