package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseDahua reads a Dahua event push (POST /api/v1/hooks/{camera}/dahua)
// and returns one Event per event record, in order. contentType is the
// request's Content-Type header (only its multipart boundary is used); body
// is read up to MaxPayloadBytes.
//
// It accepts:
//   - records "Code=VideoMotion;action=Start;index=0", one or more, one per
//     line (LF or CRLF), fields in any order, names in any case, a trailing
//     ";" tolerated;
//   - an optional data={json} field whose JSON object may span lines;
//   - the eventManager.cgi stream shape: parts separated by "--myboundary"
//     lines (any boundary, from the Content-Type or the first line), each
//     with its own headers; text/plain parts are read, others (snapshots)
//     skipped;
//   - "Heartbeat" records, which are skipped: a body of heartbeats only
//     gives no events and no error.
//
// Codes map: VideoMotion, SmartMotionHuman, SmartMotionVehicle → motion;
// CrossLineDetection → line_crossing; CrossRegionDetection → intrusion;
// VideoBlind, VideoAbnormalDetection → tamper; VideoLoss → video_loss;
// AlarmLocal → io_alarm; anything else → other. action Start → active (pulse
// for line crossing), Stop → inactive, Pulse → pulse.
//
// Event.Key is "index=N", with ";rule=NAME" when data has a "Name" (the
// rule name). Event.At is data.UTC when the record has it (the camera's
// time, local wall clock on many firmwares: the engine checks that it is
// plausible), else now; the raw value also stays in Detail["data.UTC"]. Detail has "code", "action",
// "index", "rule", "object" (data.Object.ObjectType), every other field of
// the record under its name, and the scalar top-level data fields as
// "data.NAME".
func ParseDahua(camera, contentType string, body io.Reader, now time.Time) ([]Event, error) {
	b, err := readPayload(body)
	if err != nil {
		return nil, fmt.Errorf("dahua: %w", err)
	}
	text := strings.TrimPrefix(string(b), "\ufeff")
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("dahua: empty body")
	}
	var texts []string
	if boundary, ok := dahuaBoundary(contentType, text); ok {
		if texts, err = dahuaParts(text, boundary); err != nil {
			return nil, err
		}
	} else {
		texts = []string{text}
	}
	var events []Event
	n := 0
	for _, t := range texts {
		recs, err := dahuaRecords(t, n)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			n++
			e, err := r.event(camera, now)
			if err != nil {
				return nil, fmt.Errorf("dahua: record %d: %w", n, err)
			}
			events = append(events, e)
		}
	}
	return events, nil
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
		// Headers up to the first blank line, then the body.
		i := 0
		isText := true
		for ; i < len(cur); i++ {
			h := strings.TrimSpace(cur[i])
			if h == "" {
				break
			}
			name, value, ok := strings.Cut(h, ":")
			if !ok {
				return fmt.Errorf("dahua: part %d: header line %s without ':'", len(parts)+1, parseQuote(h))
			}
			if strings.EqualFold(strings.TrimSpace(name), "Content-Type") {
				mt, _, _ := mime.ParseMediaType(value)
				isText = mt == "" || mt == "text/plain"
			}
		}
		if isText && i < len(cur) {
			parts = append(parts, strings.Join(cur[i+1:], "\n"))
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

// dahuaRecord is one event record: its fields in order, and data if any.
type dahuaRecord struct {
	fields [][2]string
	data   map[string]any
	hasDat bool
}

// dahuaRecords parses the records of one text body. before is the number of
// records already read, for error messages.
func dahuaRecords(s string, before int) ([]dahuaRecord, error) {
	var recs []dahuaRecord
	pos := 0
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' }
	for {
		for pos < len(s) && isSpace(s[pos]) {
			pos++
		}
		if pos >= len(s) {
			return recs, nil
		}
		var r dahuaRecord
		num := before + len(recs) + 1
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
				return nil, fmt.Errorf("dahua: record %d: field %s: want NAME=value", num, parseQuote(tok))
			}
			name := strings.TrimSpace(s[pos : pos+end])
			pos += end + 1
			if strings.EqualFold(name, "data") {
				if r.hasDat {
					return nil, fmt.Errorf("dahua: record %d: data given twice", num)
				}
				dec := json.NewDecoder(strings.NewReader(s[pos:]))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					return nil, fmt.Errorf("dahua: record %d: data: invalid JSON: %v", num, err)
				}
				obj, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("dahua: record %d: data: want a JSON object", num)
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
				return nil, fmt.Errorf("dahua: record %d: %s after data: want ';' or a new line", num, parseQuote(s[pos:min(pos+16, len(s))]))
			}
			pos++ // ';'
			rest := strings.TrimLeft(s[pos:], " \t\r")
			if rest == "" || rest[0] == '\n' {
				break // trailing ';'
			}
		}
		if len(r.fields) > 0 || r.hasDat {
			recs = append(recs, r)
		}
	}
}

func (r *dahuaRecord) event(camera string, now time.Time) (Event, error) {
	e := Event{Camera: camera, Source: SourceDahua, At: now, Detail: map[string]string{}}
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
		return Event{}, errors.New("Code missing")
	}
	typ, pulse := dahuaCodeType(code)
	e.Type = typ
	switch strings.ToLower(action) {
	case "start":
		e.State = Active
		if pulse {
			e.State = Pulse
		}
	case "stop":
		e.State = Inactive
	case "pulse":
		e.State = Pulse
	default:
		return Event{}, fmt.Errorf("code %s: action %s: want Start, Stop or Pulse", parseQuote(code), parseQuote(action))
	}
	if index != "" {
		if _, err := strconv.ParseUint(index, 10, 16); err != nil {
			return Event{}, fmt.Errorf("code %s: index %s: want a channel number", parseQuote(code), parseQuote(index))
		}
		e.Key = "index=" + index
	}
	if name, ok := r.data["Name"].(string); ok && name != "" {
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

// dahuaCodeType maps a Dahua event code to a normalized type; pulse is true
// for edge-only codes.
func dahuaCodeType(code string) (typ Type, pulse bool) {
	switch code {
	case "VideoMotion", "SmartMotionHuman", "SmartMotionVehicle":
		return Motion, false
	case "CrossLineDetection":
		return LineCrossing, true
	case "CrossRegionDetection":
		return Intrusion, false
	case "VideoBlind", "VideoAbnormalDetection":
		return Tamper, false
	case "VideoLoss":
		return VideoLoss, false
	case "AlarmLocal":
		return IOAlarm, false
	}
	return Other, false
}
