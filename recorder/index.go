package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Segment is one recorded fMP4 file of a camera, as listed by its day index.
type Segment struct {
	// ID names the segment within its camera: the UTC day and start time of
	// the file, "2026-11-26T21-05-00.000Z" for
	// <camera>/2026-11-26/21-05-00.000Z.mp4. It matches SegmentIDPattern.
	ID     string
	Camera string
	Start  time.Time
	End    time.Time
	Bytes  int64
	SHA256 string
	Frames int
	Codec  string
	Path   string
}

// Duration is the playing time of the segment.
func (s Segment) Duration() time.Duration { return s.End.Sub(s.Start) }

// Gap is a span without recording between two segments of a camera.
type Gap struct {
	Start time.Time
	End   time.Time
}

// SegmentIDPattern is the form of a Segment.ID.
var SegmentIDPattern = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})T(\d{2}-\d{2}-\d{2}\.\d{3}Z)$`)

var (
	fileNamePattern   = regexp.MustCompile(`^\d{2}-\d{2}-\d{2}\.\d{3}Z\.mp4$`)
	dayPattern        = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	cameraPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	sha256HexPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	errBadSegmentID   = errors.New("invalid segment id")
	errBadCameraID    = errors.New("invalid camera id")
	errBadIndexRecord = errors.New("invalid index line")
)

const (
	dayLayout  = "2006-01-02"
	fileLayout = "15-04-05.000Z"
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
)

// ValidCameraID reports whether id may name a camera folder.
func ValidCameraID(id string) bool { return cameraPattern.MatchString(id) }

// ParseSegmentID splits a segment ID into its day folder and file name and
// returns the start time it encodes. It rejects anything that is not exactly
// of the SegmentIDPattern form, so the result is safe to join into a path.
func ParseSegmentID(id string) (day, file string, start time.Time, err error) {
	m := SegmentIDPattern.FindStringSubmatch(id)
	if m == nil {
		return "", "", time.Time{}, fmt.Errorf("%w: %q", errBadSegmentID, id)
	}
	t, err := time.Parse(dayLayout+"T"+fileLayout, id)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: %q", errBadSegmentID, id)
	}
	return m[1], m[2] + ".mp4", t, nil
}

func segmentID(day, file string) string {
	return day + "T" + file[:len(file)-len(".mp4")]
}

// fileNames returns the day folder and file name of a segment starting at t.
func fileNames(t time.Time) (day, file string) {
	t = t.UTC()
	return t.Format(dayLayout), t.Format(fileLayout) + ".mp4"
}

// indexRecord is one line of <day>/index.jsonl.
type indexRecord struct {
	File   string `json:"file"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	Frames int    `json:"frames"`
	Codec  string `json:"codec"`
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// appendTime appends formatTime(t) without time.Format's layout parsing,
// for the listings' thousands of times.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	return append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// marshalIndexLine renders the index line of seg, newline included.
func marshalIndexLine(seg Segment, file string) []byte {
	b, _ := json.Marshal(indexRecord{ // cannot fail: strings and integers only
		File:   file,
		Start:  formatTime(seg.Start),
		End:    formatTime(seg.End),
		Bytes:  seg.Bytes,
		SHA256: seg.SHA256,
		Frames: seg.Frames,
		Codec:  seg.Codec,
	})
	return append(b, '\n')
}

// parseIndexLine decodes one index line of camera's day folder. It validates
// every field, so a damaged line is an error rather than a bogus segment.
func parseIndexLine(camera, day string, line []byte) (Segment, error) {
	line = bytes.TrimSpace(line)
	rec, ok := parseIndexFast(line)
	if !ok {
		if err := json.Unmarshal(line, &rec); err != nil {
			return Segment{}, fmt.Errorf("%w: %v", errBadIndexRecord, err)
		}
	}
	if !validFileName(rec.File) {
		return Segment{}, fmt.Errorf("%w: file %q", errBadIndexRecord, rec.File)
	}
	start, err := parseTime(rec.Start)
	if err != nil {
		return Segment{}, fmt.Errorf("%w: start: %v", errBadIndexRecord, err)
	}
	end, err := parseTime(rec.End)
	if err != nil {
		return Segment{}, fmt.Errorf("%w: end: %v", errBadIndexRecord, err)
	}
	if end.Before(start) {
		return Segment{}, fmt.Errorf("%w: end before start", errBadIndexRecord)
	}
	if rec.Bytes < 0 || rec.Frames < 0 {
		return Segment{}, fmt.Errorf("%w: negative size", errBadIndexRecord)
	}
	if !validSHA256(rec.SHA256) {
		return Segment{}, fmt.Errorf("%w: sha256", errBadIndexRecord)
	}
	return Segment{
		ID:     segmentID(day, rec.File),
		Camera: camera,
		Start:  start.UTC(),
		End:    end.UTC(),
		Bytes:  rec.Bytes,
		SHA256: rec.SHA256,
		Frames: rec.Frames,
		Codec:  rec.Codec,
	}, nil
}

// parseIndexFast decodes a line in exactly the form marshalIndexLine writes
// (key order, no escapes), several times faster than encoding/json; any
// other form reports false and goes through encoding/json.
func parseIndexFast(line []byte) (rec indexRecord, ok bool) {
	p := line
	lit := func(s string) bool {
		if !bytes.HasPrefix(p, []byte(s)) {
			return false
		}
		p = p[len(s):]
		return true
	}
	str := func() (string, bool) {
		i := bytes.IndexByte(p, '"')
		if i < 0 {
			return "", false
		}
		for _, c := range p[:i] {
			if c < 0x20 || c >= 0x80 || c == '\\' { // escapes, control bytes, non-ASCII: encoding/json
				return "", false
			}
		}
		v := string(p[:i])
		p = p[i+1:]
		return v, true
	}
	num := func() (int64, bool) {
		i := 0
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		if i == 0 || i > 18 || (i > 1 && p[0] == '0') {
			return 0, false
		}
		v, err := strconv.ParseInt(string(p[:i]), 10, 64)
		p = p[i:]
		return v, err == nil
	}
	var frames int64
	if !lit(`{"file":"`) {
		return rec, false
	}
	if rec.File, ok = str(); !ok || !lit(`,"start":"`) {
		return rec, false
	}
	if rec.Start, ok = str(); !ok || !lit(`,"end":"`) {
		return rec, false
	}
	if rec.End, ok = str(); !ok || !lit(`,"bytes":`) {
		return rec, false
	}
	if rec.Bytes, ok = num(); !ok || !lit(`,"sha256":"`) {
		return rec, false
	}
	if rec.SHA256, ok = str(); !ok || !lit(`,"frames":`) {
		return rec, false
	}
	if frames, ok = num(); !ok || !lit(`,"codec":"`) {
		return rec, false
	}
	rec.Frames = int(frames)
	if rec.Codec, ok = str(); !ok || !lit("}") || len(p) != 0 {
		return rec, false
	}
	return rec, true
}

// validFileName is fileNamePattern without the regexp cost: "15-04-05.000Z.mp4".
func validFileName(f string) bool {
	const form = "dd-dd-dd.dddZ.mp4"
	if len(f) != len(form) {
		return false
	}
	for i := range len(form) {
		if form[i] == 'd' {
			if f[i] < '0' || f[i] > '9' {
				return false
			}
		} else if f[i] != form[i] {
			return false
		}
	}
	return true
}

func validSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := range len(h) {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseTime reads the index's own "2006-01-02T15:04:05.000Z" quickly and
// anything else RFC 3339 through time.Parse.
func parseTime(v string) (time.Time, error) {
	const form = "dddd-dd-ddTdd:dd:dd.dddZ"
	ok := len(v) == len(form)
	for i := 0; ok && i < len(form); i++ {
		if form[i] == 'd' {
			ok = v[i] >= '0' && v[i] <= '9'
		} else {
			ok = v[i] == form[i]
		}
	}
	if ok {
		n := func(a, b int) int {
			x := 0
			for _, c := range v[a:b] {
				x = x*10 + int(c-'0')
			}
			return x
		}
		y, mo, d, h, mi, sec, ms := n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23)
		if mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC)
			if t.Day() == d { // not 2026-02-31
				return t, nil
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t.UTC(), err
}
