package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
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
	// Damage is why the segment cannot be trusted, "" when it can: its
	// bytes failed their SHA-256 or size check ("sha256 mismatch",
	// "truncated: …"), or no valid index line names the file ("not
	// indexed: …"; such a segment has no SHA256).
	Damage string
	// Open marks the segment being written: End is the end of its last
	// flushed part, Bytes the length of the file up to there (its init and
	// complete parts) and SHA256 the hash of exactly those bytes. Its final
	// hash comes with its index line when it closes.
	Open bool
	// Node and Epoch say who recorded the segment in a cluster: the node's
	// ID and the fencing epoch of its camera lease when the segment
	// started. Both are zero for a single node. Where two nodes recorded
	// the same time (a partition), the higher epoch is preferred.
	Node  string
	Epoch int64
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
	Node   string `json:"node,omitempty"`
	Epoch  int64  `json:"epoch,omitempty"`
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
		Node:   seg.Node,
		Epoch:  seg.Epoch,
	})
	return append(b, '\n')
}

// parseIndexLine decodes one index line of camera's day folder. It validates
// every field, so a damaged line is an error rather than a bogus segment.
func parseIndexLine(camera, day string, line []byte) (Segment, error) {
	f, err := parseIndexFields(line)
	if err != nil {
		return Segment{}, err
	}
	return Segment{
		ID:     segmentID(day, string(f.file)),
		Camera: camera,
		Start:  f.start,
		End:    f.end,
		Bytes:  f.bytes,
		SHA256: string(f.sha256),
		Frames: f.frames,
		Codec:  internCodec(f.codec),
		Node:   string(f.node),
		Epoch:  f.epoch,
	}, nil
}

// indexFields is one validated index line; the byte slices point into the
// line, so a day's worth can be turned into strings in one allocation.
type indexFields struct {
	file, sha256, codec, node []byte
	start, end                time.Time
	bytes, epoch              int64
	frames                    int
}

func parseIndexFields(line []byte) (indexFields, error) {
	line = bytes.TrimSpace(line)
	f, ok := parseIndexFast(line)
	if !ok {
		var rec indexRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return f, fmt.Errorf("%w: %v", errBadIndexRecord, err)
		}
		var err error
		if f.start, err = parseTime(rec.Start); err != nil {
			return f, fmt.Errorf("%w: start: %v", errBadIndexRecord, err)
		}
		if f.end, err = parseTime(rec.End); err != nil {
			return f, fmt.Errorf("%w: end: %v", errBadIndexRecord, err)
		}
		f.file, f.sha256, f.codec, f.node = []byte(rec.File), []byte(rec.SHA256), []byte(rec.Codec), []byte(rec.Node)
		f.bytes, f.frames, f.epoch = rec.Bytes, rec.Frames, rec.Epoch
	}
	if !validFileName(f.file) {
		return f, fmt.Errorf("%w: file %q", errBadIndexRecord, f.file)
	}
	if f.end.Before(f.start) {
		return f, fmt.Errorf("%w: end before start", errBadIndexRecord)
	}
	if f.bytes < 0 || f.frames < 0 || f.epoch < 0 {
		return f, fmt.Errorf("%w: negative size", errBadIndexRecord)
	}
	if !validSHA256(f.sha256) {
		return f, fmt.Errorf("%w: sha256", errBadIndexRecord)
	}
	f.start, f.end = f.start.UTC(), f.end.UTC()
	return f, nil
}

// internCodec returns the index's common codec names without allocating.
func internCodec(b []byte) string {
	switch string(b) {
	case "h264":
		return "h264"
	case "h265":
		return "h265"
	case "h264+aac":
		return "h264+aac"
	case "h265+aac":
		return "h265+aac"
	case "h264+g711":
		return "h264+g711"
	case "h265+g711":
		return "h265+g711"
	}
	return string(b)
}

// parseIndexFast decodes a line in exactly the form marshalIndexLine writes
// (key order, no escapes, the index's own time form), several times faster
// than encoding/json and without allocating; any other form reports false
// and goes through encoding/json.
func parseIndexFast(line []byte) (f indexFields, ok bool) {
	p := line
	lit := func(s string) bool {
		if len(p) < len(s) || string(p[:len(s)]) != s {
			return false
		}
		p = p[len(s):]
		return true
	}
	str := func() ([]byte, bool) {
		i := bytes.IndexByte(p, '"')
		if i < 0 {
			return nil, false
		}
		for _, c := range p[:i] {
			if c < 0x20 || c >= 0x80 || c == '\\' { // escapes, control bytes, non-ASCII: encoding/json
				return nil, false
			}
		}
		v := p[:i:i]
		p = p[i+1:]
		return v, true
	}
	tm := func() (time.Time, bool) {
		v, ok := str()
		if !ok {
			return time.Time{}, false
		}
		return parseIndexTime(v)
	}
	num := func() (int64, bool) {
		i, v := 0, int64(0)
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			v = v*10 + int64(p[i]-'0')
			i++
		}
		if i == 0 || i > 18 || (i > 1 && p[0] == '0') {
			return 0, false
		}
		p = p[i:]
		return v, true
	}
	var frames int64
	if !lit(`{"file":"`) {
		return f, false
	}
	if f.file, ok = str(); !ok || !lit(`,"start":"`) {
		return f, false
	}
	if f.start, ok = tm(); !ok || !lit(`,"end":"`) {
		return f, false
	}
	if f.end, ok = tm(); !ok || !lit(`,"bytes":`) {
		return f, false
	}
	if f.bytes, ok = num(); !ok || !lit(`,"sha256":"`) {
		return f, false
	}
	if f.sha256, ok = str(); !ok || !lit(`,"frames":`) {
		return f, false
	}
	if frames, ok = num(); !ok || !lit(`,"codec":"`) {
		return f, false
	}
	f.frames = int(frames)
	if f.codec, ok = str(); !ok {
		return f, false
	}
	if lit(`,"node":"`) { // a cluster node's line
		if f.node, ok = str(); !ok || !lit(`,"epoch":`) {
			return f, false
		}
		if f.epoch, ok = num(); !ok {
			return f, false
		}
	}
	if !lit("}") || len(p) != 0 {
		return f, false
	}
	return f, true
}

// validFileName is fileNamePattern without the regexp cost: "15-04-05.000Z.mp4".
func validFileName[T string | []byte](f T) bool {
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

func validSHA256[T string | []byte](h T) bool {
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
	if t, ok := parseIndexTime(v); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t.UTC(), err
}

// parseIndexTime reads exactly "2006-01-02T15:04:05.000Z", a valid date.
func parseIndexTime[T string | []byte](v T) (time.Time, bool) {
	const form = "dddd-dd-ddTdd:dd:dd.dddZ"
	if len(v) != len(form) {
		return time.Time{}, false
	}
	for i := range len(form) {
		if form[i] == 'd' {
			if v[i] < '0' || v[i] > '9' {
				return time.Time{}, false
			}
		} else if v[i] != form[i] {
			return time.Time{}, false
		}
	}
	n := func(a, b int) int {
		x := 0
		for i := a; i < b; i++ {
			x = x*10 + int(v[i]-'0')
		}
		return x
	}
	y, mo, d, h, mi, sec, ms := n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23)
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h >= 24 || mi >= 60 || sec >= 60 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC)
	if t.Day() != d { // 2026-02-31
		return time.Time{}, false
	}
	return t, true
}
