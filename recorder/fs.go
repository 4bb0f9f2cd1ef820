package recorder

import (
	"io"
	"os"
)

// FS is the part of the file system the segment writer uses. Tests inject
// one that fails with ENOSPC or EIO; the default is the operating system's.
type FS interface {
	// Create creates a new segment file; it fails if name exists.
	Create(name string) (File, error)
	// Append opens name for appending, creating it when missing.
	Append(name string) (File, error)
	MkdirAll(path string) error
	// SyncDir makes the files created, renamed or removed in directory
	// dir durable.
	SyncDir(dir string) error
}

// File is an open segment or index file.
type File interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

func (osFS) Append(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

func (osFS) MkdirAll(path string) error { return os.MkdirAll(path, 0o755) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
