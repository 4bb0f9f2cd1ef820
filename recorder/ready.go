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
	return nil
}
