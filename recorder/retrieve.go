package recorder

import (
	"io"
	"os"
	"time"
)

// What an HTTP layer (recorder/footageapi) needs to serve footage: the
// recorder owns planning and verifying, the layer only speaks HTTP.

// Errors a lookup by camera or segment ID wraps when the ID does not match
// its pattern.
var (
	ErrBadCameraID  = errBadCameraID
	ErrBadSegmentID = errBadSegmentID
)

// FormatTime renders t as the index and the API do (UTC, RFC 3339 with
// milliseconds).
func FormatTime(t time.Time) string { return formatTime(t) }

// AppendTime appends FormatTime(t) to b.
func AppendTime(b []byte, t time.Time) []byte { return appendTime(b, t) }

// ManifestGaps renders gaps as a manifest lists them.
func ManifestGaps(gaps []Gap) []ManifestGap { return manifestGaps(gaps) }

// ExportPlanner plans exports over one catalog, keeping the sample tables
// of recently scanned segments so that repeated exports of a range (an
// alert's clip, a Range request's retries) do not read them again.
type ExportPlanner struct {
	cat   *Catalog
	cache *exportCache
}

// NewExportPlanner returns a planner over cat; 2 hours at 25 fps twice
// over (about 12 MB of sample tables) are cached.
func NewExportPlanner(cat *Catalog) *ExportPlanner {
	return &ExportPlanner{cat: cat, cache: newExportCache(360_000)}
}

// Plan is PlanExport with the planner's cache.
func (p *ExportPlanner) Plan(req ExportRequest) (*Export, error) {
	return planExport(p.cat, req, p.cache)
}

// SegmentReader reads one segment for a download, hashing it as it goes:
// whoever reads it to the end either gets bytes matching the index's
// SHA-256 or an error (an *IntegrityError, wrapping ErrIntegrity).
type SegmentReader struct{ r segmentReader }

// OpenSegment opens seg for a verified download. A missing file wraps
// ErrSourceChanged; a size that differs from the index is an
// *IntegrityError.
func OpenSegment(seg Segment) (*SegmentReader, error) {
	v, err := openVerified(seg)
	if err != nil {
		return nil, err
	}
	return &SegmentReader{r: segmentReader{v: v}}, nil
}

// OpenSegmentFile opens seg's file for a reader that checks its SHA-256
// itself: another node receiving it whole for an export compares it with
// the hash this node listed and aborts on a mismatch, so hashing it here
// too would only cost the export a third of its speed (and the file can go
// out by sendfile). Its size is checked against the index as OpenSegment
// does; an open segment's file may be longer than listed.
func OpenSegmentFile(seg Segment) (*os.File, error) {
	v, err := openVerified(seg)
	if err != nil {
		return nil, err
	}
	return v.f, nil
}

var _ io.ReadSeekCloser = (*SegmentReader)(nil)

func (s *SegmentReader) Read(p []byte) (int, error)                { return s.r.Read(p) }
func (s *SegmentReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

// Verify hashes the whole segment now and compares: a partial answer may
// end anywhere, so a Range request checks the file first.
func (s *SegmentReader) Verify() error { return s.r.v.finish() }

// Err is the integrity failure found while reading, if any.
func (s *SegmentReader) Err() error { return s.r.v.err }

// Close closes the file.
func (s *SegmentReader) Close() error { return s.r.v.Close() }
