package configs

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// ErrEmptyFile is wrapped by the Error for a configuration file that holds
// no YAML document at all.
var ErrEmptyFile = errors.New("empty configuration file")

// Error is one problem in a configuration file, at a line and column.
// Load returns all of them joined with errors.Join; Errors takes them apart.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the key path, like "cameras[2].url" or "storage.segment".
	Path string
	Msg  string
	// Err is the underlying error, if any.
	Err error
	// Warning marks a problem that does not stop the configuration from
	// loading (Config.Warnings).
	Warning bool
}

// Error reads "file:line:col: path: message", with "warning: " before the
// message of a warning.
func (e *Error) Error() string {
	msg := e.Msg
	if e.Warning {
		msg = "warning: " + msg
	}
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Path, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors returns the *Error values inside err (as returned by Load), in
// order. Errors that are not *Error (a file that cannot be read) are left
// out.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// sortErrors orders errors by file (in the order files were read), line and
// column, keeping the order of errors found at one place.
func sortErrors(errs []*Error, files []string) {
	rank := func(f string) int {
		if i := slices.Index(files, f); i >= 0 {
			return i
		}
		return len(files)
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(rank(a.File), rank(b.File)), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}
