package vendor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"time"

	"vigil/alerts"
)

// HikvisionResult is what one Hikvision ISAPI push holds.
//
// A heartbeat (eventType videoloss, eventState inactive, activePostCount 0:
// the keep-alive Hikvision devices send to an alarm host every few seconds)
// is camera health, not an alert: it gives Heartbeat true and no Event for
// that alert. A push is never both empty and not a heartbeat unless it had
// no EventNotificationAlert at all (which is an error).
type HikvisionResult struct {
	Events []alerts.Event
	// Heartbeat is true when the push held a heartbeat.
	Heartbeat bool
	// Pictures counts the picture parts (JPEG) of a multipart push; they are
	// dropped, the recording is the evidence.
	Pictures int
}

// ParseHikvision reads one Hikvision ISAPI event push
// (POST /api/v1/hooks/{camera}/hikvision). contentType is the request's
// Content-Type header; body is read up to MaxPayloadBytes.
//
// It accepts:
//   - a bare EventNotificationAlert XML body (Content-Type application/xml,
//     text/xml, none, or anything else whose body starts with "<");
//   - multipart/form-data or multipart/mixed with one or more XML parts
//     (by part Content-Type, or a file or field name ending in .xml, or a
//     body starting with "<") and any number of picture parts;
//   - any namespace (ver10, ver20, none): local names only.
//
// eventType maps (any case): VMD, PIR (PIR alarm) → motion; duration →
// the type of its relationEvent (top level or DurationList/Duration); linedetection → line_crossing
// (active gives pulse); fielddetection, regionEntrance → intrusion;
// shelteralarm, tamperdetection, scenechangedetection → tamper; videoloss →
// video_loss; IO → io_alarm; anything else → other. eventState must be
// active or inactive. dateTime with a zone or offset gives Event.At; without
// one it is the camera's local wall clock in an unknown zone, so now is used
// and the raw value kept in Detail["camera_time"].
//
// Event.Key is "channel=N" (channelID, else dynChannelID) and "input=N"
// (inputIOPortID) joined with ";" in that order, e.g. "channel=1" or
// "input=2". Detail has "event_type", "description", "channel_name",
// "active_post_count", "region" (comma-separated regionIDs), "target"
// (detectionTarget) and "ip" when present.
func ParseHikvision(camera, contentType string, body io.Reader, now time.Time) (HikvisionResult, error) {
	b, err := readPayload(body)
	if err != nil {
		return HikvisionResult{}, fmt.Errorf("hikvision: %w", err)
	}
	var res HikvisionResult
	mediaType, params, _ := mime.ParseMediaType(contentType)
	if strings.HasPrefix(mediaType, "multipart/") {
		if err := hikvisionMultipart(&res, camera, params["boundary"], b, now); err != nil {
			return HikvisionResult{}, err
		}
		return res, nil
	}
	if !hikvisionLooksXML(b) {
		return HikvisionResult{}, fmt.Errorf("hikvision: content type %s: body is not XML", parseQuote(contentType))
	}
	if err := hikvisionAlert(&res, camera, b, now); err != nil {
		return HikvisionResult{}, err
	}
	return res, nil
}

func hikvisionMultipart(res *HikvisionResult, camera, boundary string, b []byte, now time.Time) error {
	if boundary == "" {
		return errors.New("hikvision: multipart content type without boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	alerts := 0
	for n := 1; ; n++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("hikvision: multipart part %d: %w", n, err)
		}
		data, err := io.ReadAll(p) // bounded: b is at most MaxPayloadBytes
		if err != nil {
			return fmt.Errorf("hikvision: multipart part %d: %w", n, err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch {
		case strings.HasPrefix(ct, "image/"):
			res.Pictures++
		case ct == "application/xml" || ct == "text/xml" ||
			strings.HasSuffix(strings.ToLower(p.FileName()), ".xml") ||
			strings.HasSuffix(strings.ToLower(p.FormName()), ".xml") ||
			hikvisionLooksXML(data):
			if err := hikvisionAlert(res, camera, data, now); err != nil {
				return fmt.Errorf("%w (multipart part %d)", err, n)
			}
			alerts++
		}
	}
	if alerts == 0 {
		return errors.New("hikvision: multipart body without an XML part")
	}
	return nil
}

func hikvisionLooksXML(b []byte) bool {
	b = bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\xef\xbb\xbf"))
	return len(b) > 0 && b[0] == '<'
}

// hikvisionNotification is EventNotificationAlert by local names.
type hikvisionNotification struct {
	XMLName          xml.Name
	IPAddress        string `xml:"ipAddress"`
	ChannelID        string `xml:"channelID"`
	DynChannelID     string `xml:"dynChannelID"`
	InputIOPortID    string `xml:"inputIOPortID"`
	DateTime         string `xml:"dateTime"`
	ActivePostCount  string `xml:"activePostCount"`
	EventType        string `xml:"eventType"`
	EventState       string `xml:"eventState"`
	EventDescription string `xml:"eventDescription"`
	ChannelName      string `xml:"channelName"`
	RelationEvent    string `xml:"relationEvent"`
	DurationRelation string `xml:"DurationList>Duration>relationEvent"`
	Regions          []struct {
		RegionID string `xml:"regionID"`
		Target   string `xml:"detectionTarget"`
	} `xml:"DetectionRegionList>DetectionRegionEntry"`
}

func hikvisionAlert(res *HikvisionResult, camera string, b []byte, now time.Time) error {
	var n hikvisionNotification
	if err := parseNewXMLDecoder(b).Decode(&n); err != nil {
		return fmt.Errorf("hikvision: malformed XML: %w", err)
	}
	if n.XMLName.Local != "EventNotificationAlert" {
		return fmt.Errorf("hikvision: root element %s: want EventNotificationAlert", parseQuote(n.XMLName.Local))
	}
	evType := strings.TrimSpace(n.EventType)
	if evType == "" {
		return errors.New("hikvision: eventType missing")
	}
	evState := strings.ToLower(strings.TrimSpace(n.EventState))
	var st alerts.State
	switch evState {
	case "active":
		st = alerts.Active
	case "inactive":
		st = alerts.Inactive
	default:
		return fmt.Errorf("hikvision: eventState %s: want active or inactive", parseQuote(n.EventState))
	}
	posts := strings.TrimSpace(n.ActivePostCount)
	if posts != "" {
		if _, err := strconv.ParseUint(posts, 10, 32); err != nil {
			return fmt.Errorf("hikvision: activePostCount %s: want a count", parseQuote(n.ActivePostCount))
		}
	}
	related := ""
	if strings.EqualFold(evType, "duration") {
		// A "duration" event reports how long another event lasted; its
		// type is the related one.
		related = hikvisionFirst(n.DurationRelation, n.RelationEvent)
	}
	typ, pulse := hikvisionEventType(hikvisionFirst(related, evType))
	if typ == alerts.VideoLoss && st == alerts.Inactive && posts != "" && strings.TrimLeft(posts, "0") == "" {
		res.Heartbeat = true
		return nil
	}
	if pulse && st == alerts.Active {
		st = alerts.Pulse
	}
	e := alerts.Event{
		Camera: camera,
		Type:   typ,
		State:  st,
		Source: alerts.SourceHikvision,
		At:     now,
		Detail: map[string]string{"event_type": evType},
	}
	if t, ok := parseCameraTime(n.DateTime); ok && hikvisionHasZone(n.DateTime) {
		e.At = t
	} else if s := strings.TrimSpace(n.DateTime); s != "" {
		e.Detail["camera_time"] = s
	}
	var key []string
	if ch := hikvisionFirst(n.ChannelID, n.DynChannelID); ch != "" {
		key = append(key, "channel="+ch)
		e.Detail["channel"] = ch
	}
	if in := strings.TrimSpace(n.InputIOPortID); in != "" {
		key = append(key, "input="+in)
	}
	e.Key = strings.Join(key, ";")
	var regions, targets []string
	for _, r := range n.Regions {
		if s := strings.TrimSpace(r.RegionID); s != "" {
			regions = append(regions, s)
		}
		if s := strings.TrimSpace(r.Target); s != "" {
			targets = append(targets, s)
		}
	}
	for k, v := range map[string]string{
		"description":       n.EventDescription,
		"channel_name":      n.ChannelName,
		"relation_event":    related,
		"active_post_count": posts,
		"ip":                n.IPAddress,
		"region":            strings.Join(regions, ","),
		"target":            strings.Join(targets, ","),
	} {
		if v = strings.TrimSpace(v); v != "" {
			e.Detail[k] = v
		}
	}
	res.Events = append(res.Events, e)
	return nil
}

// hikvisionEventType maps an ISAPI eventType to a normalized type; pulse is
// true for edge-only events.
func hikvisionEventType(t string) (typ alerts.Type, pulse bool) {
	switch strings.ToLower(t) {
	case "vmd", "pir", "pira", "piralarm":
		return alerts.Motion, false
	case "linedetection":
		return alerts.LineCrossing, true
	case "fielddetection", "regionentrance":
		return alerts.Intrusion, false
	case "shelteralarm", "tamperdetection", "scenechangedetection":
		return alerts.Tamper, false
	case "videoloss":
		return alerts.VideoLoss, false
	case "io":
		return alerts.IOAlarm, false
	}
	return alerts.Other, false
}

// hikvisionHasZone reports whether an ISAPI dateTime carries a zone: "Z" or
// an offset after the time of day.
func hikvisionHasZone(s string) bool {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		return true
	}
	i := strings.IndexAny(s, "Tt ")
	return i >= 0 && strings.ContainsAny(s[i:], "+-")
}

func hikvisionFirst(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
