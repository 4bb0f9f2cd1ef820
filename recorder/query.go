package recorder

import (
	"net/url"
	"time"
)

var (
	minRangeTime = time.Unix(0, 0)
	maxRangeTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ParseTimeRange reads the start and end query parameters (RFC 3339). With
// neither, the range is the last def before now; with one, the other is def
// away from it. The range may not be longer than max nor end before start.
func ParseTimeRange(q url.Values, now time.Time, def, max time.Duration) (start, end time.Time, err error) {
	s, e := q.Get("start"), q.Get("end")
	if s != "" {
		if start, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return start, end, badRequest("bad_time", "start %q: not an RFC 3339 time", truncate(s))
		}
	}
	if e != "" {
		if end, err = time.Parse(time.RFC3339Nano, e); err != nil {
			return start, end, badRequest("bad_time", "end %q: not an RFC 3339 time", truncate(e))
		}
	}
	switch {
	case s == "" && e == "":
		end = now
		start = now.Add(-def)
	case s == "":
		start = end.Add(-def)
	case e == "":
		end = start.Add(def)
	}
	// Footage exists only after 1970 and the index's times have four-digit
	// years; a range outside that (the zero time, year 0) is a client bug,
	// and the day arithmetic of a listing would wrap on it.
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{{"start", start}, {"end", end}} {
		if t.t.Before(minRangeTime) || t.t.After(maxRangeTime) {
			return start, end, badRequest("bad_time", "%s %s: outside 1970-01-01 – 9999-12-31", t.name, t.t.UTC().Format(time.RFC3339))
		}
	}
	if end.Before(start) {
		return start, end, badRequest("bad_range", "end %s is before start %s", formatTime(end), formatTime(start))
	}
	if d := end.Sub(start); d > max || d < 0 {
		return start, end, badRequest("range_too_long", "range of %v exceeds the limit of %v", end.Sub(start), max)
	}
	return start.UTC(), end.UTC(), nil
}

// ParseExportQuery reads an export's start, end (both required, RFC 3339)
// and format from q.
func ParseExportQuery(camera string, q url.Values, maxRange time.Duration) (ExportRequest, error) {
	if !ValidCameraID(camera) {
		return ExportRequest{}, badRequest("bad_camera_id", "invalid camera id")
	}
	if q.Get("start") == "" || q.Get("end") == "" {
		return ExportRequest{}, badRequest("bad_range", "start and end are required (RFC 3339)")
	}
	if maxRange <= 0 {
		maxRange = DefaultMaxExportRange
	}
	start, end, err := ParseTimeRange(q, time.Time{}, 0, maxRange)
	if err != nil {
		return ExportRequest{}, err
	}
	req := ExportRequest{Camera: camera, Start: start, End: end, Format: q.Get("format"), MaxRange: maxRange}
	if err := checkExportRequest(&req); err != nil {
		return ExportRequest{}, err
	}
	return req, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
