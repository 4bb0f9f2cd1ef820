package vendor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"vigil/alerts"
)

// ParseDahua reads a Dahua event push (POST /api/v1/hooks/{camera}/dahua,
// or one part of an eventManager.cgi attach stream) and judges each event
// record on its own: it returns one Event per good record, in order, and
// one alerts.RejectedRecord (1-based record number and what was wrong) per
// bad one, so that a truncated or garbled record never discards its valid
// siblings. err is for the body as a whole only: too large, empty, or
// multipart framing that cannot be read. contentType is the request's
// Content-Type header (only its multipart boundary is used); body is read
// up to MaxPayloadBytes.
//
// It accepts:
//   - records "Code=VideoMotion;action=Start;index=0", one or more, one per
//     line (LF or CRLF), fields in any order, names in any case, a trailing
//     ";" tolerated;
//   - an optional data={json} field whose JSON object may span lines; data
//     that is not valid JSON (a record cut short) is kept as text in
//     Detail["data"] and the record is still read;
//   - the DHIP JSON shape {"Code":…,"Action":…,"Index":…,"Data":{…}}, one
//     object or several, or an array of them;
//   - the eventManager.cgi stream shape: parts separated by "--myboundary"
//     lines (any boundary, from the Content-Type or the first line), each
//     with its own headers, with or without the blank line after them;
//     text/plain and JSON parts are read, others (snapshots) skipped;
//   - "Heartbeat" records and action=State reports (VideoMotionInfo), which
//     are skipped: a body of them only gives no events and no rejected
//     records.
//
// Codes map: VideoMotion, SmartMotionHuman, SmartMotionVehicle → motion;
// CrossLineDetection → line_crossing; CrossRegionDetection → intrusion;
// VideoBlind, VideoAbnormalDetection → tamper; VideoLoss → video_loss;
// AlarmLocal → io_alarm; anything else → other. action Start → active,
// Stop → inactive, Pulse → pulse (line crossing too: a camera that sends
// Start and Stop reports a state, and its Stop must end it).
//
// Event.Key is "index=N", with ";rule=NAME" naming the rule: data.Name for
// the IVS codes; for VideoMotion the region (data.RegionName), never
// data.Name, which many firmwares fill with the device name. A Stop
// without data cannot name its rule; DahuaStops ends every rule of that
// code and index. Event.At is data.UTC when the record has it (the
// camera's time, local wall clock on many firmwares: the engine checks that
// it is plausible), else now; the raw value also stays in
// Detail["data.UTC"]. Detail has "code", "action", "index", "rule",
// "object" (data.Object.ObjectType), every other field of the record under
// its name, and the scalar top-level data fields as "data.NAME".
func ParseDahua(camera, contentType string, body io.Reader, now time.Time) ([]alerts.Event, []alerts.RejectedRecord, error) {
	b, err := readPayload(body)
	if err != nil {
		return nil, nil, fmt.Errorf("dahua: %w", err)
	}
	text := strings.TrimPrefix(string(b), "\ufeff")
	if strings.TrimSpace(text) == "" {
		return nil, nil, errors.New("dahua: empty body")
	}
	var texts []string
	if boundary, ok := dahuaBoundary(contentType, text); ok {
		if texts, err = dahuaParts(text, boundary); err != nil {
			return nil, nil, err
		}
	} else {
		texts = []string{text}
	}
	var events []alerts.Event
	var rejected []alerts.RejectedRecord
	n := 0
	for _, t := range texts {
		for _, r := range dahuaRecords(t) {
			n++
			e, err := r.event(camera, now)
			if err == errDahuaStateReport {
				continue
			}
			if err != nil {
				rejected = append(rejected, alerts.RejectedRecord{Record: n, Error: "dahua: record " + strconv.Itoa(n) + ": " + err.Error()})
				continue
			}
			events = append(events, e)
		}
	}
	return events, rejected, nil
}

// dahuaBoundary finds the multipart boundary: from the Content-Type when it
// is multipart, else from a body that starts with a "--boundary" line.
func dahuaBoundary(contentType, text string) (string, bool) {
	if mt, params, err := mime.ParseMediaType(contentType); err == nil && strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		return params["boundary"], true
	}
	t := strings.TrimLeft(text, " \t\r\n")
	if !strings.HasPrefix(t, "--") {
		return "", false
	}
	line, _, _ := strings.Cut(t, "\n")
	line = strings.TrimSpace(strings.TrimPrefix(line, "--"))
	if line == "" || strings.ContainsAny(line, ";=") {
		return "", false
	}
	return line, true
}

// dahuaParts splits a multipart event stream into the bodies of its
// text/plain parts. The closing "--boundary--" is optional: a stream read
// until the push ended rarely has one.
func dahuaParts(text, boundary string) ([]string, error) {
	delim := "--" + strings.TrimPrefix(boundary, "--")
	var parts []string
	var cur []string
	seen := false
	flush := func() error {
		defer func() { cur = cur[:0] }()
		if !seen {
			if strings.TrimSpace(strings.Join(cur, "\n")) != "" {
				return fmt.Errorf("dahua: text before the first %s line", parseQuote(delim))
			}
			return nil
		}
		// Headers up to the first blank line, then the body. Some
		// firmwares send no blank line: the body then starts at the first
		// line that is not a "Name: value" header.
		i := 0
		isText := true
		body := -1
		for ; i < len(cur); i++ {
			h := strings.TrimSpace(cur[i])
			if h == "" {
				body = i + 1
				break
			}
			name, value, ok := strings.Cut(h, ":")
			if !ok || !IsHeaderName(name) {
				body = i
				break
			}
			if strings.EqualFold(strings.TrimSpace(name), "Content-Type") {
				mt, _, _ := mime.ParseMediaType(value)
				isText = mt == "" || mt == "text/plain" || mt == "application/json"
			}
		}
		if isText && body >= 0 {
			parts = append(parts, strings.Join(cur[body:], "\n"))
		}
		return nil
	}
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimRight(line, "\r \t")
		if l == delim || l == delim+"--" {
			if err := flush(); err != nil {
				return nil, err
			}
			seen = true
			continue
		}
		cur = append(cur, line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return parts, nil
}

// errDahuaStateReport marks a record with action=State: skipped, like a
// heartbeat, neither an event nor a rejected record.
var errDahuaStateReport = errors.New("state report")

// dahuaRecord is one event record: its fields in order, and data if any.
// err, when set, is why the record cannot be read; it is rejected alone.
type dahuaRecord struct {
	fields   [][2]string
	data     map[string]any
	hasDat   bool
	dataText string // data that is not valid JSON, kept as sent
	err      error
}

// dahuaRecords parses the records of one text body. A record that cannot
// be read is returned with its err, and reading resumes at the next line
// that starts a record, so that its siblings survive.
func dahuaRecords(s string) []dahuaRecord {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return dahuaJSONRecords(t)
	}
	var recs []dahuaRecord
	pos := 0
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' }
	for {
		for pos < len(s) && isSpace(s[pos]) {
			pos++
		}
		if pos >= len(s) {
			return recs
		}
		var r dahuaRecord
		fail := func(err error) {
			r.err = err
			pos = dahuaNextRecord(s, pos)
		}
		for {
			// One field: NAME=value, NAME=value;... up to the end of the line.
			end := strings.IndexAny(s[pos:], "=;\n")
			if end < 0 || s[pos+end] != '=' {
				tok := s[pos:]
				if end >= 0 {
					tok = s[pos : pos+end]
				}
				tok = strings.TrimSpace(tok)
				if len(r.fields) == 0 && !r.hasDat && strings.EqualFold(tok, "Heartbeat") {
					if end < 0 {
						end = len(s) - pos
					}
					pos += end
					break
				}
				fail(fmt.Errorf("field %s: want NAME=value", parseQuote(tok)))
				break
			}
			name := strings.TrimSpace(s[pos : pos+end])
			pos += end + 1
			if strings.EqualFold(name, "data") {
				if r.hasDat || r.dataText != "" {
					fail(errors.New("data given twice"))
					break
				}
				dec := json.NewDecoder(strings.NewReader(s[pos:]))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					// Cut short (a stream that ended, a firmware bug): keep
					// the text up to the next record; the record stands.
					next := dahuaNextRecord(s, pos)
					r.dataText = strings.TrimSpace(s[pos:next])
					pos = next
					break
				}
				obj, ok := v.(map[string]any)
				if !ok {
					fail(errors.New("data: want a JSON object"))
					break
				}
				r.data, r.hasDat = obj, true
				pos += int(dec.InputOffset())
				for pos < len(s) && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r') {
					pos++
				}
			} else {
				end := strings.IndexAny(s[pos:], ";\n")
				if end < 0 {
					end = len(s) - pos
				}
				r.fields = append(r.fields, [2]string{name, strings.TrimSpace(s[pos : pos+end])})
				pos += end
			}
			if pos >= len(s) || s[pos] == '\n' {
				break
			}
			if s[pos] != ';' {
				fail(fmt.Errorf("%s after data: want ';' or a new line", parseQuote(s[pos:min(pos+16, len(s))])))
				break
			}
			pos++ // ';'
			rest := strings.TrimLeft(s[pos:], " \t\r")
			if rest == "" || rest[0] == '\n' {
				break // trailing ';'
			}
		}
		if len(r.fields) > 0 || r.hasDat || r.dataText != "" || r.err != nil {
			recs = append(recs, r)
		}
	}
}

// dahuaNextRecord returns the offset of the next line after pos that starts
// a record ("Code=", any case) or a heartbeat, else len(s).
func dahuaNextRecord(s string, pos int) int {
	for {
		nl := strings.IndexByte(s[pos:], '\n')
		if nl < 0 {
			return len(s)
		}
		pos += nl + 1
		line := strings.ToLower(strings.TrimLeft(s[pos:min(len(s), pos+16)], " \t"))
		if strings.HasPrefix(line, "code=") || strings.HasPrefix(line, "heartbeat") {
			return pos
		}
	}
}

// dahuaJSONRecords reads the DHIP JSON shape: objects with Code, Action,
// Index and Data, one after another or in an array.
func dahuaJSONRecords(s string) []dahuaRecord {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var recs []dahuaRecord
	add := func(v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			recs = append(recs, dahuaRecord{err: errors.New("JSON record: want an object")})
			return
		}
		var r dahuaRecord
		for k, v := range obj {
			switch strings.ToLower(k) {
			case "data":
				if d, ok := v.(map[string]any); ok {
					r.data, r.hasDat = d, true
				}
				continue
			}
			switch v := v.(type) {
			case string:
				r.fields = append(r.fields, [2]string{k, v})
			case json.Number:
				r.fields = append(r.fields, [2]string{k, v.String()})
			}
		}
		sort.Slice(r.fields, func(i, j int) bool { return r.fields[i][0] < r.fields[j][0] })
		recs = append(recs, r)
	}
	for len(recs) < 10_000 {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			recs = append(recs, dahuaRecord{err: fmt.Errorf("JSON record: %v", err)})
			break
		}
		if arr, ok := v.([]any); ok {
			for _, x := range arr {
				add(x)
			}
			continue
		}
		add(v)
	}
	return recs
}

func (r *dahuaRecord) event(camera string, now time.Time) (alerts.Event, error) {
	if r.err != nil {
		return alerts.Event{}, r.err
	}
	e := alerts.Event{Camera: camera, Source: alerts.SourceDahua, At: now, Detail: map[string]string{}}
	var code, action, index string
	for _, f := range r.fields {
		name, value := f[0], f[1]
		switch strings.ToLower(name) {
		case "code":
			code = value
			e.Detail["code"] = value
		case "action":
			action = value
			e.Detail["action"] = value
		case "index":
			index = value
			e.Detail["index"] = value
		default:
			if name != "" {
				e.Detail[name] = value
			}
		}
	}
	if code == "" {
		return alerts.Event{}, errors.New("Code missing")
	}
	e.Type = dahuaCodeType(code)
	switch strings.ToLower(action) {
	case "start":
		e.State = alerts.Active
	case "stop":
		e.State = alerts.Inactive
	case "pulse":
		e.State = alerts.Pulse
	case "state":
		// VideoMotionInfo;action=State and the like report a setting, not
		// an incident; cameras send them between events all the time.
		return alerts.Event{}, errDahuaStateReport
	default:
		return alerts.Event{}, fmt.Errorf("code %s: action %s: want Start, Stop or Pulse", parseQuote(code), parseQuote(action))
	}
	if index != "" {
		if _, err := strconv.ParseUint(index, 10, 16); err != nil {
			return alerts.Event{}, fmt.Errorf("code %s: index %s: want a channel number", parseQuote(code), parseQuote(index))
		}
		e.Key = "index=" + index
	}
	if r.dataText != "" {
		e.Detail["data"] = r.dataText
	}
	if name := dahuaRuleName(code, r.data); name != "" {
		e.Detail["rule"] = name
		if e.Key != "" {
			e.Key += ";"
		}
		e.Key += "rule=" + name
	}
	if obj, ok := r.data["Object"].(map[string]any); ok {
		if ot, ok := obj["ObjectType"].(string); ok && ot != "" {
			e.Detail["object"] = ot
		}
	}
	for k, v := range r.data {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = strconv.FormatBool(v)
		default:
			continue
		}
		if len(s) <= 256 && utf8.ValidString(k) {
			e.Detail["data."+k] = s
		}
	}
	// data.UTC (epoch seconds) is the camera's time. Many firmwares put
	// local wall-clock time there: the engine uses it only when it is
	// plausible (within alerts.max_event_age of the receipt), else it keeps
	// it as detail.camera_time.
	if n, ok := r.data["UTC"].(json.Number); ok {
		if sec, err := n.Int64(); err == nil && sec > 0 && sec < 1<<40 {
			e.At = time.Unix(sec, 0).UTC()
		}
	}
	return e, nil
}

// dahuaRuleName names the rule or region a record is about. VideoMotion's
// data.Name is the device or channel name on many firmwares, the same for
// every region, so its region name is used instead.
func dahuaRuleName(code string, data map[string]any) string {
	if strings.EqualFold(code, "VideoMotion") {
		switch v := data["RegionName"].(type) {
		case string:
			return v
		case []any:
			var names []string
			for _, x := range v {
				if s, ok := x.(string); ok && s != "" {
					names = append(names, s)
				}
			}
			return strings.Join(names, ",")
		}
		return ""
	}
	name, _ := data["Name"].(string)
	return name
}

// dahuaCodeType maps a Dahua event code to a normalized type.
func dahuaCodeType(code string) alerts.Type {
	switch code {
	case "VideoMotion", "SmartMotionHuman", "SmartMotionVehicle":
		return alerts.Motion
	case "CrossLineDetection":
		return alerts.LineCrossing
	case "CrossRegionDetection":
		return alerts.Intrusion
	case "VideoBlind", "VideoAbnormalDetection":
		return alerts.Tamper
	case "VideoLoss":
		return alerts.VideoLoss
	case "AlarmLocal":
		return alerts.IOAlarm
	}
	return alerts.Other
}
