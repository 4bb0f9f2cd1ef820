package camsim

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pion/rtp"
)

// Event types a simulated camera raises, spelled as Vigil's normalized types
// (plus cell_motion, the rule-engine flavour of motion).
const (
	Motion       = "motion"        // tns1:VideoSource/MotionAlarm, State
	CellMotion   = "cell_motion"   // tns1:RuleEngine/CellMotionDetector/Motion, IsMotion
	Intrusion    = "intrusion"     // tns1:RuleEngine/FieldDetector/ObjectsInside, IsInside keyed by ObjectId
	LineCrossing = "line_crossing" // tns1:RuleEngine/LineDetector/Crossed, a pulse carrying ObjectId
	Tamper       = "tamper"        // tns1:VideoSource/GlobalSceneChange/ImagingService, State
)

// States of a triggered event.
const (
	Active   = "active"
	Inactive = "inactive"
	Pulse    = "pulse"
)

// Metadata track parameters, as Axis and Hikvision cameras announce them.
const (
	MetadataPayloadType = 107
	MetadataRTPMap      = "vnd.onvif.metadata/90000"
	// DefaultMetadataChunk is the payload size of one metadata RTP packet;
	// documents are longer, so every one spans several packets.
	DefaultMetadataChunk = 400
)

// SentAtItem names the Data item that carries the wall-clock send time of a
// triggered event (RFC 3339 with nanoseconds), for latency measurements.
const SentAtItem = "VigilSentAt"

type item struct{ name, value string }

// topic describes how one event type is written.
type topic struct {
	topic    string
	source   []item
	key      string // name of the Key item; "" when the property has none
	data     string // name of the Data item holding the state
	property bool   // carries PropertyOperation; false for pulse events
	defKey   string // key of the property that exists from the start
}

var (
	videoSource    = item{"VideoSourceToken", "VideoSource_1"}
	sourceConfig   = item{"VideoSourceConfigurationToken", "VideoSourceConfig_1"}
	analyticConfig = item{"VideoAnalyticsConfigurationToken", "VideoAnalyticsConfig_1"}
)

// topics is read-only after package initialization.
var topics = map[string]topic{
	Motion: {topic: "tns1:VideoSource/MotionAlarm", source: []item{videoSource},
		data: "State", property: true},
	CellMotion: {topic: "tns1:RuleEngine/CellMotionDetector/Motion",
		source: []item{sourceConfig, analyticConfig, {"Rule", "MyMotionDetectorRule"}},
		data:   "IsMotion", property: true},
	Intrusion: {topic: "tns1:RuleEngine/FieldDetector/ObjectsInside",
		source: []item{sourceConfig, analyticConfig, {"Rule", "MyFieldDetector1"}},
		key:    "ObjectId", data: "IsInside", property: true, defKey: "1"},
	LineCrossing: {topic: "tns1:RuleEngine/LineDetector/Crossed",
		source: []item{sourceConfig, analyticConfig, {"Rule", "MyLineDetector1"}},
		data:   "ObjectId"},
	Tamper: {topic: "tns1:VideoSource/GlobalSceneChange/ImagingService", source: []item{videoSource},
		data: "State", property: true},
}

// Topic returns the ONVIF topic written for an event type, or "" for an
// unknown type.
func Topic(typ string) string { return topics[typ].topic }

// EventTypes lists the event types a simulated camera accepts.
func EventTypes() []string {
	out := make([]string, 0, len(topics))
	for t := range topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// parseState maps the spellings a trigger may use to on/off; pulse is
// accepted only for pulse events.
func parseState(typ, state string) (on bool, err error) {
	tp, ok := topics[typ]
	if !ok {
		return false, fmt.Errorf("unknown event type %q (want one of %s)", typ, strings.Join(EventTypes(), ", "))
	}
	switch strings.ToLower(state) {
	case Active, "true", "1", "on":
		return true, nil
	case Inactive, "false", "0", "off":
		if !tp.property {
			return false, fmt.Errorf("event type %s is a pulse; state must be pulse or active", typ)
		}
		return false, nil
	case Pulse:
		if tp.property {
			return false, fmt.Errorf("event type %s is a property; state must be active or inactive", typ)
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown state %q (want active, inactive or pulse)", state)
}

// notification is one wsnt:NotificationMessage of a document.
type notification struct {
	typ     string
	key     string
	on      bool
	op      string // Initialized, Changed or "" (pulse)
	utc     time.Time
	trigger bool // carries SentAtItem
}

const utcLayout = "2006-01-02T15:04:05.000000Z"

// metadataDocument writes a tt:MetadataStream document holding the given
// notifications, in the shape Axis cameras send.
func metadataDocument(b *strings.Builder, producer string, ns []notification) {
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"` +
		` xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"` +
		` xmlns:tns1="http://www.onvif.org/ver10/topics"` +
		` xmlns:wsa5="http://www.w3.org/2005/08/addressing">` + "\n")
	for _, n := range ns {
		tp := topics[n.typ]
		b.WriteString("<tt:Event><wsnt:NotificationMessage>\n")
		b.WriteString(`<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">`)
		b.WriteString(tp.topic)
		b.WriteString("</wsnt:Topic>\n<wsnt:ProducerReference><wsa5:Address>")
		escape(b, producer)
		b.WriteString("</wsa5:Address></wsnt:ProducerReference>\n<wsnt:Message>")
		b.WriteString(`<tt:Message UtcTime="`)
		b.WriteString(n.utc.UTC().Format(utcLayout))
		b.WriteString(`"`)
		if n.op != "" {
			b.WriteString(` PropertyOperation="` + n.op + `"`)
		}
		b.WriteString(">\n<tt:Source>")
		for _, it := range tp.source {
			simpleItem(b, it.name, it.value)
		}
		b.WriteString("</tt:Source>\n")
		if tp.key != "" {
			b.WriteString("<tt:Key>")
			simpleItem(b, tp.key, n.key)
			b.WriteString("</tt:Key>\n")
		}
		b.WriteString("<tt:Data>")
		if tp.property {
			simpleItem(b, tp.data, strconv.FormatBool(n.on))
		} else {
			simpleItem(b, tp.data, n.key)
		}
		if n.trigger {
			simpleItem(b, SentAtItem, n.utc.UTC().Format(time.RFC3339Nano))
		}
		b.WriteString("</tt:Data>\n</tt:Message></wsnt:Message>\n</wsnt:NotificationMessage></tt:Event>\n")
	}
	b.WriteString("</tt:MetadataStream>\n")
}

func simpleItem(b *strings.Builder, name, value string) {
	b.WriteString(`<tt:SimpleItem Name="`)
	escape(b, name)
	b.WriteString(`" Value="`)
	escape(b, value)
	b.WriteString(`"/>`)
}

func escape(b *strings.Builder, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a strings.Builder never fails
}

// packetizeMetadata splits a document into RTP payloads of at most chunk
// bytes; the last packet carries the marker bit. seq is advanced.
func packetizeMetadata(doc []byte, chunk int, seq *uint16, ts uint32) []*rtp.Packet {
	var pkts []*rtp.Packet
	for len(doc) > 0 {
		n := min(chunk, len(doc))
		pkts = append(pkts, &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				PayloadType:    MetadataPayloadType,
				SequenceNumber: *seq,
				Timestamp:      ts,
				Marker:         n == len(doc),
			},
			Payload: doc[:n],
		})
		*seq++
		doc = doc[n:]
	}
	return pkts
}
