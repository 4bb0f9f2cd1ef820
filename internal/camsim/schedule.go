package camsim

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// ScheduledEvent is one line of an event schedule: the camera raises the
// event After the simulator starts and then Every period (when non-zero).
// When Hold is set, an active property event is followed by its inactive
// state Hold later. Times are stream time: they shrink with Options.Speed.
type ScheduledEvent struct {
	Camera string        `yaml:"camera"`
	Type   string        `yaml:"type"`
	State  string        `yaml:"state"`
	Key    string        `yaml:"key"`
	After  time.Duration `yaml:"-"`
	Every  time.Duration `yaml:"-"`
	Hold   time.Duration `yaml:"-"`
}

// LoadSchedule reads a YAML event schedule:
//
//	events:
//	  - {camera: cam/0, after: 5s, every: 30s, type: intrusion, state: active, hold: 4s}
//	  - {camera: cam/1, after: 2s, type: tamper, state: active}
//
// Errors read file:line:col: events[i].field: message, all of them joined.
func LoadSchedule(path string) ([]ScheduledEvent, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load schedule: %w", err)
	}
	return ParseSchedule(buf, path)
}

// ParseSchedule parses a schedule; name prefixes error positions.
func ParseSchedule(buf []byte, name string) ([]ScheduledEvent, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(buf, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	errf := func(n *yaml.Node, path, format string, a ...any) error {
		return fmt.Errorf("%s:%d:%d: %s: %s", name, n.Line, n.Column, path, fmt.Sprintf(format, a...))
	}
	if root.Kind != yaml.MappingNode {
		return nil, errf(root, "(root)", "want a mapping with key events")
	}
	var errs []error
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "events" {
			errs = append(errs, errf(k, k.Value, "unknown key"))
			continue
		}
		list = v
	}
	if list == nil {
		return nil, errors.Join(append(errs, errf(root, "events", "missing"))...)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errors.Join(append(errs, errf(list, "events", "want a list"))...)
	}
	var out []ScheduledEvent
	for i, n := range list.Content {
		path := fmt.Sprintf("events[%d]", i)
		if n.Kind != yaml.MappingNode {
			errs = append(errs, errf(n, path, "want a mapping"))
			continue
		}
		var ev ScheduledEvent
		ok := true
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			fp := path + "." + k.Value
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, errf(v, fp, "want a scalar"))
				ok = false
				continue
			}
			var d *time.Duration
			switch k.Value {
			case "camera":
				ev.Camera = v.Value
			case "type":
				ev.Type = v.Value
			case "state":
				ev.State = v.Value
			case "key":
				ev.Key = v.Value
			case "after":
				d = &ev.After
			case "every":
				d = &ev.Every
			case "hold":
				d = &ev.Hold
			default:
				errs = append(errs, errf(k, fp, "unknown key"))
				ok = false
				continue
			}
			if d != nil {
				x, err := time.ParseDuration(v.Value)
				if err != nil || x < 0 {
					errs = append(errs, errf(v, fp, "want a duration such as 5s, got %q", v.Value))
					ok = false
					continue
				}
				*d = x
			}
		}
		if ev.Camera == "" {
			errs = append(errs, errf(n, path+".camera", "missing"))
			ok = false
		}
		if ev.State == "" {
			ev.State = Active
			if ev.Type == LineCrossing {
				ev.State = Pulse
			}
		}
		if _, err := parseState(ev.Type, ev.State); err != nil {
			errs = append(errs, errf(n, path, "%v", err))
			ok = false
		}
		if ev.Every > 0 && ev.Every < 10*time.Millisecond {
			errs = append(errs, errf(n, path+".every", "at least 10ms"))
			ok = false
		}
		if ok {
			out = append(out, ev)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
