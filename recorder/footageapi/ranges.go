package footageapi

import (
	"cmp"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"vigil/internal/httpx"
)

// MaxRanges is the most byte ranges one request may ask for once
// overlapping and adjacent ranges are merged; more are answered 416.
// net/http serves any number as one multipart body, so 200,000 tiny
// ranges of a 506 KB segment made a 25 MB response.
const MaxRanges = 16

// maxAuditRange is how much of a Range header an audit entry keeps.
const maxAuditRange = 256

// byteRange is [start, end] of a resource, end inclusive as in the header.
type byteRange struct{ start, end int64 }

var errBadRange = errors.New("invalid range")

// parseRanges reads a Range header for a resource of size bytes as
// net/http does: ranges that start beyond the end are dropped, ends beyond
// it are cut. Any syntax error is errBadRange.
func parseRanges(s string, size int64) ([]byteRange, error) {
	spec, ok := strings.CutPrefix(s, "bytes=")
	if !ok {
		return nil, errBadRange
	}
	var out []byteRange
	for ra := range strings.SplitSeq(spec, ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, errBadRange
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		var r byteRange
		if first == "" {
			// -N: the last N bytes.
			if last == "" || last[0] == '-' {
				return nil, errBadRange
			}
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return nil, errBadRange
			}
			if n == 0 {
				continue
			}
			r = byteRange{start: max(size-n, 0), end: size - 1}
		} else {
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil || start < 0 {
				return nil, errBadRange
			}
			r = byteRange{start: start, end: size - 1}
			if last != "" {
				end, err := strconv.ParseInt(last, 10, 64)
				if err != nil || end < start {
					return nil, errBadRange
				}
				r.end = min(end, size-1)
			}
		}
		if r.start >= size {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// coalesce sorts ranges and merges those that overlap or touch.
func coalesce(rs []byteRange) []byteRange {
	slices.SortFunc(rs, func(a, b byteRange) int { return cmp.Compare(a.start, b.start) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.start <= out[n-1].end+1 {
			out[n-1].end = max(out[n-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	return out
}

// serveContent is http.ServeContent with Range requests bounded: the
// ranges are merged where they overlap or touch, more than MaxRanges are
// answered 416, and the merged ranges are what is served. A header
// net/http would refuse or ignore is left to it.
func serveContent(w http.ResponseWriter, r *http.Request, modtime time.Time, content io.ReadSeeker) {
	if h := r.Header.Get("Range"); h != "" && r.Method == http.MethodGet {
		size, err := content.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = content.Seek(0, io.SeekStart)
		}
		if err != nil {
			httpx.Error(w, http.StatusInternalServerError, "internal", "internal error")
			return
		}
		if rs, err := parseRanges(h, size); err == nil && len(rs) > 0 {
			rs = coalesce(rs)
			if len(rs) > MaxRanges {
				w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
				httpx.Error(w, http.StatusRequestedRangeNotSatisfiable, "too_many_ranges",
					"at most "+strconv.Itoa(MaxRanges)+" byte ranges (after merging overlaps) per request")
				return
			}
			var b strings.Builder
			b.WriteString("bytes=")
			for i, rg := range rs {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatInt(rg.start, 10) + "-" + strconv.FormatInt(rg.end, 10))
			}
			r = r.Clone(r.Context())
			r.Header.Set("Range", b.String())
		}
	}
	http.ServeContent(w, r, "", modtime, content)
}

// auditRange is the Range header as an audit entry keeps it: at most
// maxAuditRange bytes, cut at a character boundary.
func auditRange(h string) string {
	if len(h) <= maxAuditRange {
		return h
	}
	i := maxAuditRange
	for i > maxAuditRange-utf8.UTFMax && !utf8.RuneStart(h[i]) {
		i--
	}
	return h[:i]
}
