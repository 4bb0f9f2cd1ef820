package recorder

import (
	"io"
	"log/slog"
)

// OpenCatalog returns a read-only catalog of the recordings in dir, for
// tools that run beside the service (vigil export). Unlike New it repairs
// nothing and takes no lock, so it never touches a segment the service is
// writing; it sees segments once their index line is written.
func OpenCatalog(dir string, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return newCatalog(dir, log)
}
