package recorder

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Audit actions.
const (
	AuditDownloaded = "downloaded" // a segment file was served
	AuditExported   = "exported"   // an export was served or written
)

// AuditEntry records who retrieved which footage and what exactly they got.
type AuditEntry struct {
	// ID identifies the entry across copies of it (the local file and the
	// journal's audit log), so that a replay can tell it was already
	// stored. NewAuditID makes one; FileAuditor.Audit sets it when empty.
	ID     string    `json:"id,omitempty"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"` // AuditDownloaded or AuditExported
	// Object names what was retrieved: "camera/<id>/segment/<segment id>"
	// or "camera/<id>/export".
	Object string `json:"object"`
	// Detail holds camera, start, end, from, format, bytes, sha256 (of the
	// bytes sent), range (the Range header, when partial, cut to its
	// first 256 bytes; range_bytes then holds its length), complete
	// ("true" unless the transfer failed) and error.
	Detail map[string]string `json:"detail,omitempty"`
}

// Auditor records retrievals of footage. The app adapts it to the
// journal's audit log; FileAuditor keeps a local append-only file.
type Auditor interface {
	Audit(ctx context.Context, e AuditEntry) error
}

// AuditFunc adapts a function to Auditor.
type AuditFunc func(ctx context.Context, e AuditEntry) error

// Audit calls f.
func (f AuditFunc) Audit(ctx context.Context, e AuditEntry) error { return f(ctx, e) }

// FileAuditor appends audit entries as JSON lines to a file and fsyncs
// each one before Audit returns. It never rewrites what it wrote: a line
// cut by a crash or a failed write is left as it is, and the next entry
// starts a line of its own.
type FileAuditor struct {
	path string
	mu   sync.Mutex
	f    File
	// torn: the file ends inside a line (a write cut short), so the
	// next entry starts with a newline.
	torn bool
}

var _ Auditor = (*FileAuditor)(nil)

// NewFileAuditor opens (creating if needed) the audit file at path for
// appending.
func NewFileAuditor(path string) (*FileAuditor, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	// A crash mid-write can leave a last line without its newline.
	torn, err := tornTail(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	return &FileAuditor{path: path, f: f, torn: torn}, nil
}

// NewAuditID returns a new random audit entry ID (26 base32 characters).
func NewAuditID() string { return rand.Text() }

// Audit appends e, with an ID (NewAuditID when e has none), and fsyncs
// the file.
func (a *FileAuditor) Audit(_ context.Context, e AuditEntry) error {
	if e.ID == "" {
		e.ID = NewAuditID()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return fmt.Errorf("audit: closed")
	}
	if a.torn {
		b = append([]byte{'\n'}, b...)
	}
	n, err := a.f.Write(b)
	if n > 0 {
		// Part of a line on disk: without a newline the next entry
		// would be glued to it, and a reader would lose both.
		a.torn = b[n-1] != '\n'
	}
	if err != nil {
		return fmt.Errorf("audit %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("audit %s: %w", a.path, err)
	}
	return nil
}

// Path is the file's path.
func (a *FileAuditor) Path() string { return a.path }

// Close closes the file.
func (a *FileAuditor) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
