package alerts

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor: a List cursor that no journal produced.
var ErrBadCursor = errors.New("invalid list cursor")

// Default and largest page sizes of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// PageLimit is f.Limit bounded to [1, MaxListLimit], DefaultListLimit for 0.
func (f Filter) PageLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultListLimit
	case f.Limit > MaxListLimit:
		return MaxListLimit
	}
	return f.Limit
}

// Match reports whether a passes every field of f except the paging ones.
// Journals share it so that both filter alike.
func (f Filter) Match(a Alert) bool {
	switch {
	case f.Status != "" && a.Status != f.Status,
		f.Open && !a.Status.Open(),
		f.Camera != "" && a.Camera != f.Camera,
		f.Site != "" && a.Site != f.Site,
		f.Severity != "" && a.Severity != f.Severity,
		f.Signal != "" && a.Signal != f.Signal,
		!f.Since.IsZero() && a.RaisedAt.Before(f.Since),
		!f.Until.IsZero() && !a.RaisedAt.Before(f.Until):
		return false
	}
	return true
}

// ListPosition is the place of an alert in List order: newest raised first,
// ties broken by descending ID. Cursors name the last position of a page.
type ListPosition struct {
	RaisedAt time.Time
	ID       string
}

// After reports whether p comes after q in List order.
func (p ListPosition) After(q ListPosition) bool {
	if !p.RaisedAt.Equal(q.RaisedAt) {
		return p.RaisedAt.Before(q.RaisedAt)
	}
	return p.ID < q.ID
}

// EncodeCursor makes the opaque cursor that continues a listing after p.
func EncodeCursor(p ListPosition) string {
	s := strconv.FormatInt(p.RaisedAt.UnixNano(), 10) + ":" + p.ID
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeCursor reverses EncodeCursor; a malformed cursor wraps ErrBadCursor.
func DecodeCursor(c string) (ListPosition, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return ListPosition{}, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	ns, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return ListPosition{}, ErrBadCursor
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return ListPosition{}, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	return ListPosition{RaisedAt: time.Unix(0, n).UTC(), ID: id}, nil
}
