package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// genericMaxKey bounds Event.Key from the generic hook: keys name alerts in
// the journal and on the desk, so a runaway one is refused, not truncated.
const genericMaxKey = 256

// ParseGeneric reads one event pushed to the generic hook
// (POST /api/v1/hooks/{camera}/events) as a JSON object, at most
// MaxPayloadBytes:
//
//	{"type": "intrusion", "state": "active", "at": "2026-11-26T21:05:00+08:00",
//	 "key": "gate-1", "detail": {"rule": "Gate"}}
//
// type is required and one of motion, tamper, video_loss, line_crossing,
// intrusion, io_alarm, other (camera_offline, recording_failure and
// storage_full are Vigil's own health events and refused). state is required:
// active, inactive or pulse. at is RFC 3339; missing or null means now. key
// (at most 256 bytes) and detail (an object of strings) are optional.
// Unknown fields, a second value after the object and any other spelling are
// errors that name the field.
func ParseGeneric(camera string, body io.Reader, now time.Time) (Event, error) {
	b, err := readPayload(body)
	if err != nil {
		return Event{}, fmt.Errorf("generic: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Event{}, errors.New("generic: body: want a JSON object")
	}
	var p struct {
		Type   *string           `json:"type"`
		State  *string           `json:"state"`
		At     *string           `json:"at"`
		Key    string            `json:"key"`
		Detail map[string]string `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Event{}, fmt.Errorf("generic: %s", genericJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, errors.New("generic: data after the JSON object")
	}
	e := Event{Camera: camera, Source: SourceGeneric, At: now, Key: p.Key, Detail: make(map[string]string, len(p.Detail))}
	if p.Type == nil {
		return Event{}, errors.New("generic: type missing")
	}
	switch t := Type(*p.Type); t {
	case Motion, Tamper, VideoLoss, LineCrossing, Intrusion, IOAlarm, Other:
		e.Type = t
	case CameraOffline, RecordingFailure, StorageFull, RecordingTampered:
		return Event{}, fmt.Errorf("generic: type %s is reserved for Vigil's own health events", parseQuote(*p.Type))
	default:
		return Event{}, fmt.Errorf("generic: type %s: want motion, tamper, video_loss, line_crossing, intrusion, io_alarm or other", parseQuote(*p.Type))
	}
	if p.State == nil {
		return Event{}, errors.New("generic: state missing")
	}
	switch s := State(*p.State); s {
	case Active, Inactive, Pulse:
		e.State = s
	default:
		return Event{}, fmt.Errorf("generic: state %s: want active, inactive or pulse", parseQuote(*p.State))
	}
	if p.At != nil {
		t, err := time.Parse(time.RFC3339Nano, *p.At)
		if err != nil {
			return Event{}, fmt.Errorf("generic: at %s: want an RFC 3339 time such as 2026-11-26T21:05:00+08:00", parseQuote(*p.At))
		}
		e.At = t.UTC()
	}
	if len(p.Key) > genericMaxKey {
		return Event{}, fmt.Errorf("generic: key of %d bytes: want at most %d", len(p.Key), genericMaxKey)
	}
	for k, v := range p.Detail {
		e.Detail[k] = v
	}
	return e, nil
}

// genericJSONError rewords encoding/json errors so that they name the field
// in the terms of the hook's contract.
func genericJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "detail" && te.Type != nil && te.Type.Kind() == reflect.Map:
		return fmt.Sprintf("detail: got a JSON %s, want an object of strings", te.Value)
	case errors.As(err, &te) && strings.HasPrefix(te.Field, "detail"):
		return fmt.Sprintf("detail: got a JSON %s among the values, want strings only", te.Value)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s: got a JSON %s, want a string", te.Field, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of body"
	}
	return err.Error() // unknown field: `json: unknown field "x"`
}
