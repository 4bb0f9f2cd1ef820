package vendor

import (
	"strings"
	"sync"

	"vigil/alerts"
)

// VendorName is the vendor's own name of an event: the ONVIF topic, the
// Hikvision eventType or the Dahua Code, as the parsers keep it in Detail.
// It is what events.map and events.ignore match.
func VendorName(e alerts.Event) string {
	switch e.Source {
	case alerts.SourceONVIF:
		return e.Detail["topic"]
	case alerts.SourceHikvision:
		return e.Detail["event_type"]
	case alerts.SourceDahua:
		return e.Detail["code"]
	}
	return ""
}

// Mapping is a camera's or device's events.map and events.ignore.
type Mapping struct {
	// Map maps a vendor name (VendorName; an ONVIF topic with or without
	// its namespace prefixes; any case) to a type.
	Map map[string]alerts.Type
	// Ignore drops events by vendor name, matched like Map.
	Ignore []string
}

// Apply returns evs with the mapping applied, in order: ignored names
// dropped, mapped names given their type, and ONVIF state topics
// (StateTopic) dropped unless mapped. It reuses evs' backing array.
func (m Mapping) Apply(evs []alerts.Event) []alerts.Event {
	out := evs[:0]
	for _, e := range evs {
		name := VendorName(e)
		if name != "" && m.ignored(name) {
			continue
		}
		if t, ok := m.lookup(name); ok {
			if e.Detail != nil {
				e.Detail["mapped_from"] = string(e.Type)
			}
			e.Type = t
			out = append(out, e)
			continue
		}
		if e.Detail["state_topic"] == "true" {
			continue
		}
		out = append(out, e)
	}
	return out
}

func matchName(pattern, name string) bool {
	return strings.EqualFold(pattern, name) || strings.EqualFold(LocalTopic(pattern), LocalTopic(name))
}

func (m Mapping) ignored(name string) bool {
	for _, p := range m.Ignore {
		if matchName(p, name) {
			return true
		}
	}
	return false
}

func (m Mapping) lookup(name string) (alerts.Type, bool) {
	if name == "" || len(m.Map) == 0 {
		return "", false
	}
	if t, ok := m.Map[name]; ok {
		return t, true
	}
	for p, t := range m.Map {
		if matchName(p, name) {
			return t, true
		}
	}
	return "", false
}

// Channel is the channel an NVR's event is about: Hikvision channelID or
// dynChannelID, Dahua index (as sent: 0 is the first channel), ONVIF the
// video source token. "" when the event names none.
func Channel(e alerts.Event) string {
	switch e.Source {
	case alerts.SourceHikvision:
		return e.Detail["channel"]
	case alerts.SourceDahua:
		return e.Detail["index"]
	case alerts.SourceONVIF:
		for _, k := range [...]string{"VideoSourceToken", "VideoSourceConfigurationToken", "Source", "InputToken"} {
			if v := e.Detail[k]; v != "" {
				return v
			}
		}
	}
	return ""
}

// Channels routes the events of one device (an NVR) to its cameras by
// channel. An event for a channel the device's configuration does not name
// is dropped, never given to a default camera: OnUnknown hears of it, with
// first true the first time that channel is seen, so that it is counted
// each time and logged once.
type Channels struct {
	Device    string
	ByChannel map[string]string // channel → camera ID
	OnUnknown func(channel string, first bool)

	mu   sync.Mutex
	seen map[string]bool
}

// maxUnknownChannels bounds the set of unknown channels remembered for
// "log once": past it every unknown channel is reported as first no more.
const maxUnknownChannels = 1024

// Route sets each event's Camera from its channel and returns the events
// of known channels, in order. It reuses evs' backing array.
func (c *Channels) Route(evs []alerts.Event) []alerts.Event {
	out := evs[:0]
	for _, e := range evs {
		ch := Channel(e)
		cam, ok := c.ByChannel[ch]
		if !ok {
			c.unknown(ch)
			continue
		}
		e.Camera = cam
		if e.Detail != nil {
			e.Detail["device"] = c.Device
		}
		out = append(out, e)
	}
	return out
}

func (c *Channels) unknown(ch string) {
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	first := !c.seen[ch] && len(c.seen) < maxUnknownChannels
	if first {
		c.seen[ch] = true
	}
	c.mu.Unlock()
	if c.OnUnknown != nil {
		c.OnUnknown(ch, first)
	}
}

// DahuaStops remembers which rules of a Dahua code and index are active, so
// that a Stop without data (which cannot name its rule) ends each of them.
// It is safe for concurrent use.
type DahuaStops struct {
	mu     sync.Mutex
	active map[string]map[string]bool // camera|code|index → keys
}

// maxDahuaActive bounds the keys remembered per code and index.
const maxDahuaActive = 256

// Expand returns evs with each rule-less Dahua Stop replaced by a Stop for
// every remembered active rule of its camera, code and index (and itself).
func (d *DahuaStops) Expand(evs []alerts.Event) []alerts.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active == nil {
		d.active = map[string]map[string]bool{}
	}
	var out []alerts.Event
	for _, e := range evs {
		if e.Source != alerts.SourceDahua {
			out = append(out, e)
			continue
		}
		slot := e.Camera + "|" + e.Detail["code"] + "|" + e.Detail["index"]
		switch {
		case e.State == alerts.Active && e.Detail["rule"] != "":
			if d.active[slot] == nil {
				d.active[slot] = map[string]bool{}
			}
			if len(d.active[slot]) < maxDahuaActive {
				d.active[slot][e.Key] = true
			}
		case e.State == alerts.Inactive && e.Detail["rule"] != "":
			delete(d.active[slot], e.Key)
		case e.State == alerts.Inactive:
			for k := range d.active[slot] {
				s := e
				s.Key = k
				s.Detail = make(map[string]string, len(e.Detail)+1)
				for dk, dv := range e.Detail {
					s.Detail[dk] = dv
				}
				if _, rule, ok := strings.Cut(k, "rule="); ok {
					s.Detail["rule"] = rule
				}
				out = append(out, s)
			}
			delete(d.active, slot)
		}
		out = append(out, e)
	}
	return out
}
