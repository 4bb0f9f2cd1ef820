package vendor

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"vigil/alerts"
)

// ParseONVIF reads one ONVIF metadata document, as ingest reassembles it from
// the camera's vnd.onvif.metadata RTP track, and returns one Event per
// wsnt:NotificationMessage, in document order. camera names the camera; now
// stands in for a missing or implausible time.
//
// It accepts:
//   - tt:MetadataStream (also spelled tt:MetaDataStream) under any namespace
//     prefix, holding any number of tt:Event elements; other children (frames
//     of tt:VideoAnalytics, tt:PTZ) are ignored, so a document without events
//     gives no events and no error;
//   - the document plain or gzip-compressed (told apart by the gzip magic
//     bytes, whatever the RTP format said); at most MaxPayloadBytes either way;
//   - wsnt:Topic with any prefix on any path segment
//     ("tns1:RuleEngine/tnsaxis:CellMotionDetector/Motion"), mapped by the
//     local path (see onvifTopicType);
//   - tt:Message UtcTime with or without zone (no zone is UTC), any fraction;
//     an empty, unreadable or pre-2001 time gives now;
//   - PropertyOperation Initialized (Event.Sync = true: a state report, never
//     a new alert), Changed, Deleted (always Inactive) or none (an
//     event-only topic);
//   - SimpleItem values true/false/1/0/active/inactive/on/off in any case.
//
// Event.Key joins the tt:Source SimpleItems as "Name=value" pairs sorted by
// name (for example "Rule=Gate;VideoSourceConfigurationToken=VSC1"); tt:Key
// items (ObjectId) only go to Detail. A message without Source items is
// keyed "topic=" and its topic without prefixes, so that two Axis VMD4
// profiles stay two signals.
//
// Topics that describe a state and not an incident (PTZ moving or on a
// preset, day/night mode, relay state, monitoring) come back as type other
// with Detail["state_topic"] = "true"; Mapping.Apply drops them unless
// events.map names them (StateTopic).
// Event.Detail holds every SimpleItem by name, plus "topic" (as sent),
// "rule" (from the Rule or RuleName item) and "operation".
//
// The error names the notification (1-based) and what was wrong with it; one
// bad notification fails the whole document.
func ParseONVIF(camera string, doc []byte, now time.Time) ([]alerts.Event, error) {
	if len(doc) > MaxPayloadBytes {
		return nil, fmt.Errorf("onvif: document of %d bytes: %w", len(doc), ErrPayloadTooLarge)
	}
	if len(doc) >= 2 && doc[0] == 0x1f && doc[1] == 0x8b {
		plain, err := onvifGunzip(doc)
		if err != nil {
			return nil, err
		}
		doc = plain
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, errors.New("onvif: empty document")
	}
	var ms onvifMetadataStream
	if err := parseNewXMLDecoder(doc).Decode(&ms); err != nil {
		return nil, fmt.Errorf("onvif: malformed XML: %w", err)
	}
	if !strings.EqualFold(ms.XMLName.Local, "MetadataStream") {
		return nil, fmt.Errorf("onvif: root element %s: want tt:MetadataStream", parseQuote(ms.XMLName.Local))
	}
	var events []alerts.Event
	n := 0
	for _, ev := range ms.Events {
		for _, nm := range ev.Notifications {
			n++
			e, err := nm.event(camera, now)
			if err != nil {
				return nil, fmt.Errorf("onvif: notification %d: %w", n, err)
			}
			events = append(events, e)
		}
	}
	return events, nil
}

// onvifGunzip inflates a gzip document, refusing to inflate past
// MaxPayloadBytes so that a small bomb cannot take the memory.
func onvifGunzip(doc []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("onvif: gzip: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(zr, MaxPayloadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("onvif: gzip: %w", err)
	}
	if len(plain) > MaxPayloadBytes {
		return nil, fmt.Errorf("onvif: gzip document inflates past 1 MiB: %w", ErrPayloadTooLarge)
	}
	return plain, nil
}

// The XML shapes below name local names only, so any namespace prefix (tt:,
// wsnt:, tns1:, or none) matches.
type onvifMetadataStream struct {
	XMLName xml.Name
	Events  []struct {
		Notifications []onvifNotification `xml:"NotificationMessage"`
	} `xml:"Event"`
}

type onvifNotification struct {
	Topic   string `xml:"Topic"`
	Message struct {
		Message *onvifMessage `xml:"Message"`
	} `xml:"Message"`
}

type onvifMessage struct {
	UtcTime           string      `xml:"UtcTime,attr"`
	PropertyOperation string      `xml:"PropertyOperation,attr"`
	Source            []onvifItem `xml:"Source>SimpleItem"`
	Key               []onvifItem `xml:"Key>SimpleItem"`
	Data              []onvifItem `xml:"Data>SimpleItem"`
}

type onvifItem struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:"Value,attr"`
}

// onvifStateItems are the SimpleItem names that carry a signal's state, in
// order of preference (ONVIF core spec and vendor topics).
var onvifStateItems = [...]string{"State", "IsMotion", "IsInside", "IsTamper", "LogicalState", "Active", "Motion"}

func (nm *onvifNotification) event(camera string, now time.Time) (alerts.Event, error) {
	topic := strings.TrimSpace(nm.Topic)
	if topic == "" {
		return alerts.Event{}, errors.New("wsnt:Topic missing or empty")
	}
	msg := nm.Message.Message
	if msg == nil {
		return alerts.Event{}, fmt.Errorf("topic %s: wsnt:Message/tt:Message missing", parseQuote(topic))
	}
	local := onvifLocalTopic(topic)
	typ, pulse := onvifTopicType(local)
	e := alerts.Event{
		Camera: camera,
		Type:   typ,
		Source: alerts.SourceONVIF,
		At:     now,
		Detail: make(map[string]string, 3+len(msg.Source)+len(msg.Key)+len(msg.Data)),
	}
	if t, ok := parseCameraTime(msg.UtcTime); ok {
		e.At = t
	}
	// The signal is keyed by its source (rule, video source, input), not by
	// the tt:Key items: those name the object (ObjectId), and one intruder
	// after another inside one field is one incident for the desk, counted,
	// not an alert per object.
	keyItems := make(map[string]string, len(msg.Source))
	for _, it := range msg.Source {
		keyItems[it.Name] = it.Value
	}
	for _, it := range append(msg.Source[:len(msg.Source):len(msg.Source)], msg.Key...) {
		e.Detail[it.Name] = it.Value
		if strings.EqualFold(it.Name, "Rule") || strings.EqualFold(it.Name, "RuleName") {
			e.Detail["rule"] = it.Value
		}
	}
	for _, it := range msg.Data {
		e.Detail[it.Name] = it.Value
	}
	e.Key = parseJoinKey(keyItems)
	if e.Key == "" {
		// No Source items (Axis ACAP profiles): the topic is what tells two
		// signals apart, …/VMD/Camera1ProfileANY from …/Camera1Profile1.
		e.Key = "topic=" + onvifLocalTopic(topic)
	}
	e.Detail["topic"] = topic

	op := strings.TrimSpace(msg.PropertyOperation)
	switch op {
	case "":
	case "Initialized":
		e.Sync = true
	case "Changed":
	case "Deleted":
		e.State = alerts.Inactive
	default:
		return alerts.Event{}, fmt.Errorf("topic %s: PropertyOperation %s: want Initialized, Changed or Deleted", parseQuote(topic), parseQuote(op))
	}
	if op != "" {
		e.Detail["operation"] = op
	}
	if StateTopic(local) {
		e.Detail["state_topic"] = "true"
	}
	if e.State != "" {
		return e, nil
	}
	if pulse {
		e.State = alerts.Pulse
		return e, nil
	}
	st, err := onvifState(msg.Data)
	if err != nil {
		return alerts.Event{}, fmt.Errorf("topic %s: %w", parseQuote(topic), err)
	}
	if st == "" {
		if typ != alerts.Other {
			return alerts.Event{}, fmt.Errorf("topic %s: no state in tt:Data: want a SimpleItem %s with true or false", parseQuote(topic), strings.Join(onvifStateItems[:], ", "))
		}
		// An unknown event-only topic reports an occurrence, not a state.
		st = alerts.Pulse
	}
	e.State = st
	return e, nil
}

// onvifState finds the state among the Data items: a known state item
// first (its value must then be boolean), else the first item with a
// boolean value. It returns "" when no item carries a state.
func onvifState(data []onvifItem) (alerts.State, error) {
	for _, name := range onvifStateItems {
		for _, it := range data {
			if !strings.EqualFold(it.Name, name) {
				continue
			}
			st, ok := parseSignalValue(it.Value)
			if !ok {
				return "", fmt.Errorf("SimpleItem %s value %s: want true, false, 1, 0, active or inactive", parseQuote(it.Name), parseQuote(it.Value))
			}
			return st, nil
		}
	}
	for _, it := range data {
		if st, ok := parseSignalValue(it.Value); ok {
			return st, nil
		}
	}
	return "", nil
}

// onvifLocalTopic strips the namespace prefix from every segment of a
// ConcreteSet topic: "tns1:RuleEngine/tnsaxis:CellMotionDetector/Motion"
// becomes "RuleEngine/CellMotionDetector/Motion".
func onvifLocalTopic(topic string) string {
	segs := strings.Split(topic, "/")
	for i, s := range segs {
		if j := strings.LastIndexByte(s, ':'); j >= 0 {
			s = s[j+1:]
		}
		segs[i] = strings.TrimSpace(s)
	}
	return strings.Join(segs, "/")
}

// onvifTopicType maps a topic (prefixes stripped, any case) to a normalized
// type; pulse is true for edge-only topics.
//
//	VideoSource/MotionAlarm                         motion
//	VideoAnalytics/MotionAlarm                      motion
//	VideoAnalytics/MotionDetection (Axis VMD)       motion
//	RuleEngine/CellMotionDetector/Motion            motion
//	RuleEngine/MotionRegionDetector/Motion          motion
//	RuleEngine/FieldDetector/ObjectsInside          intrusion
//	RuleEngine/LineDetector/Crossed                 line_crossing, pulse
//	VideoSource/GlobalSceneChange/*                 tamper
//	RuleEngine/TamperDetector/Tamper                tamper
//	VideoSource/SignalLoss                          video_loss
//	…/VMD3/*, …/VMD4/*, CameraApplicationPlatform/VMD/* (Axis)   motion
//	Device/…/PIR, Device/Sensor/PIR                 motion
//	CameraApplicationPlatform/FenceGuard/*          line_crossing
//	CameraApplicationPlatform/LoiteringGuard/*      intrusion
//	Device/Trigger/DigitalInput, Device/IO/*        io_alarm
//	anything else                                   other
func onvifTopicType(local string) (typ alerts.Type, pulse bool) {
	l := strings.ToLower(local)
	switch l {
	case "videosource/motionalarm",
		"videoanalytics/motionalarm",
		"videoanalytics/motiondetection",
		"ruleengine/cellmotiondetector/motion",
		"ruleengine/motionregiondetector/motion":
		return alerts.Motion, false
	case "ruleengine/fielddetector/objectsinside":
		return alerts.Intrusion, false
	case "ruleengine/linedetector/crossed":
		return alerts.LineCrossing, true
	case "ruleengine/tamperdetector/tamper":
		return alerts.Tamper, false
	case "videosource/signalloss":
		return alerts.VideoLoss, false
	case "device/trigger/digitalinput":
		return alerts.IOAlarm, false
	}
	segs := strings.Split(l, "/")
	has := func(name string) bool {
		for _, s := range segs {
			if s == name {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(l, "videosource/globalscenechange/"):
		return alerts.Tamper, false
	case has("fenceguard"):
		return alerts.LineCrossing, false
	case has("loiteringguard"):
		return alerts.Intrusion, false
	case has("vmd3"), has("vmd4"), strings.HasPrefix(l, "cameraapplicationplatform/vmd/"),
		strings.HasPrefix(l, "device/") && segs[len(segs)-1] == "pir":
		return alerts.Motion, false
	case StateTopic(local):
		return alerts.Other, false
	case strings.HasPrefix(l, "device/io/"):
		return alerts.IOAlarm, false
	}
	return alerts.Other, false
}

// StateTopic reports whether an ONVIF topic (prefixes stripped, see
// LocalTopic) describes a device state rather than an incident: PTZ
// movement and presets, day/night and IR, relay state echoes, light
// control, system monitoring. Such topics raise no alert unless events.map
// names them.
func StateTopic(local string) bool {
	l := strings.ToLower(local)
	for _, p := range [...]string{
		"ptzcontroller/", "ptz/", "videosource/daynightvision", "videosource/ircut",
		"device/trigger/relay", "device/io/relay",
		"lightcontrol/", "monitoring/", "device/hardwarefailure/fan", "media/",
		"recordingconfig/", "videosource/imagingservice",
	} {
		if strings.HasPrefix(l, p) || strings.HasPrefix(l+"/", p) {
			return true
		}
	}
	return strings.Contains(l, "/daynight") || strings.Contains(l, "/ptz")
}

// LocalTopic strips the namespace prefix from every segment of a topic
// (see onvifLocalTopic); events.map and events.ignore match on it.
func LocalTopic(topic string) string { return onvifLocalTopic(topic) }
