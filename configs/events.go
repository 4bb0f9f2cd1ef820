package configs

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// deviceRef remembers where a device's channels were written, to check
// them against the cameras once the whole file is read.
type deviceRef struct {
	path     string
	id       *yaml.Node
	channels map[string]*yaml.Node // channel → value node (the camera ID)
}

// typeMap decodes events.map: vendor topic or code → normalized type.
func (d *decoder) typeMap(dst *map[string]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.stringMap(n, path, dst, func(k string, v *yaml.Node, path string) {
			if types := EventTypes(); !slices.Contains(types, v.Value) {
				d.at(v, path, "unknown event type %q (want one of %s)", v.Value, strings.Join(types, ", "))
			}
		})
	}
}

// stringMap decodes a mapping of strings to strings; check, when not nil,
// looks at each value.
func (d *decoder) stringMap(n *yaml.Node, path string, dst *map[string]string, check func(k string, v *yaml.Node, path string)) map[string]*yaml.Node {
	nodes := map[string]*yaml.Node{}
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.at(n, path, "expected a mapping, got %s", kindName(n))
		return nodes
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		kp := fmt.Sprintf("%s[%q]", path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.at(k, path, "keys must be non-empty strings")
			continue
		}
		if _, dup := m[k.Value]; dup {
			d.at(k, kp, "duplicate key %q", k.Value)
			continue
		}
		s, ok := d.scalar(v, kp, "a string")
		if !ok {
			continue
		}
		m[k.Value] = s
		nodes[k.Value] = v
		if check != nil {
			check(k.Value, v, kp)
		}
	}
	*dst = m
	return nodes
}

// stringList decodes a list of non-empty strings.
func (d *decoder) stringList(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		var out []string
		d.list(n, path, func(_ int, item *yaml.Node, path string) {
			if s, ok := d.scalar(item, path, "a string"); ok {
				if s == "" {
					d.at(item, path, "must not be empty")
					return
				}
				out = append(out, s)
			}
		})
		*dst = out
	}
}

// checkPull reports a camera that asks for more than one pull subscription.
func (d *decoder) checkPull(n *yaml.Node, path string, ev CameraEvents) {
	var on []string
	for _, p := range []struct {
		key string
		on  bool
	}{{"onvif_pullpoint", ev.ONVIFPullPoint}, {"hikvision_stream", ev.HikvisionStream}, {"dahua_stream", ev.DahuaStream}} {
		if p.on {
			on = append(on, p.key)
		}
	}
	if len(on) > 1 {
		d.at(fieldNode(n, on[1]), join(path, on[1]), "only one pull subscription per camera: %s is already on", on[0])
	}
	for key, v := range map[string]string{"onvif_url": ev.ONVIFURL, "url": ev.URL} {
		if v == "" {
			continue
		}
		if msg := checkHTTPURL(v); msg != "" {
			d.at(fieldNode(n, key), join(path, key), "%s", msg)
		}
	}
}

// checkHTTPURL checks a device URL; the message never quotes it (it may
// hold a password) and is empty when the URL is good.
func checkHTTPURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Hostname() == "":
		return "host is missing"
	case u.User != nil:
		return "write the credentials as username and password, not in the URL"
	}
	return ""
}

// devices decodes cameras.yaml's devices: list into cfg.Devices.
func (d *decoder) devices(n *yaml.Node, path string, cfg *Config) {
	ids := map[string]*yaml.Node{}
	d.list(n, path, func(_ int, item *yaml.Node, path string) {
		dev := Device{Stream: true}
		ref := deviceRef{path: path}
		set := d.object(item, path, []field{
			{"id", d.str(&dev.ID)},
			{"kind", enum(d, &dev.Kind, PullHikvision, PullDahua, PullONVIF)},
			{"url", d.str(&dev.URL)},
			{"username", d.str(&dev.Username)},
			{"password", d.secret(&dev.Password)},
			{"stream", d.boolean(&dev.Stream)},
			{"webhook_secret", d.secret(&dev.WebhookSecret)},
			{"channels", func(n *yaml.Node, path string) {
				ref.channels = d.stringMap(n, path, &dev.Channels, nil)
			}},
			{"map", d.typeMap(&dev.Map)},
			{"ignore", d.stringList(&dev.Ignore)},
		})
		if item == nil || item.Kind != yaml.MappingNode {
			d.at(item, path, "expected a mapping, got %s", kindName(item))
			return
		}
		ok := d.uniqueID(item, set, path, "device", dev.ID, ids)
		if ok {
			ref.id = set["id"]
		}
		if _, has := set["kind"]; !has {
			d.at(item, join(path, "kind"), "required (hikvision, dahua or onvif)")
			ok = false
		}
		if un, has := set["url"]; !has {
			d.at(item, join(path, "url"), "required (the device's http:// address)")
			ok = false
		} else if msg := checkHTTPURL(dev.URL); msg != "" {
			d.at(un, join(path, "url"), "%s", msg)
			ok = false
		}
		if len(dev.Channels) == 0 {
			d.at(item, join(path, "channels"), `required: which camera each channel is, like {"1": hall-entrance}`)
			ok = false
		}
		if !dev.Stream && dev.WebhookSecret == "" {
			d.at(set["stream"], join(path, "stream"), "stream: false without a webhook_secret takes no events at all")
			ok = false
		}
		if dev.Password != "" && dev.Username == "" {
			d.at(set["password"], join(path, "password"), "password given without a username")
			ok = false
		}
		if ok {
			cfg.Devices = append(cfg.Devices, dev)
			d.devs = append(d.devs, ref)
		}
	})
}

// checkDevices checks the devices against the cameras: each channel names
// a camera, a camera is one channel of one device at most, and no device
// shares an ID with a camera (both name webhook URLs).
func (d *decoder) checkDevices(cfg *Config) {
	cams := map[string]bool{}
	ids := make([]string, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		cams[c.ID] = true
		ids = append(ids, c.ID)
	}
	claimed := map[string]string{} // camera → "device channel"
	for i, ref := range d.devs {
		dev := cfg.Devices[i]
		if cams[dev.ID] && ref.id != nil {
			d.at(ref.id, join(ref.path, "id"), "device id %q is also a camera id: they share the webhook URLs", dev.ID)
		}
		chans := make([]string, 0, len(dev.Channels))
		for ch := range dev.Channels {
			chans = append(chans, ch)
		}
		sort.Strings(chans)
		for _, ch := range chans {
			cam, node := dev.Channels[ch], ref.channels[ch]
			path := fmt.Sprintf("%s[%q]", join(ref.path, "channels"), ch)
			if !cams[cam] {
				d.at(node, path, "unknown camera %q%s", cam, DidYouMean(cam, ids, "cameras"))
				continue
			}
			if prev, dup := claimed[cam]; dup {
				d.at(node, path, "camera %q is already %s", cam, prev)
				continue
			}
			claimed[cam] = fmt.Sprintf("channel %q of device %s", ch, dev.ID)
		}
	}
	for _, ref := range d.cams {
		id := fieldNode(ref.item, "id")
		if id == nil {
			continue
		}
		if prev, ok := claimed[id.Value]; ok {
			ev := fieldNode(ref.item, "events")
			for _, k := range []string{"onvif_pullpoint", "hikvision_stream", "dahua_stream"} {
				if v := fieldNode(ev, k); v != nil && v.Value == "true" {
					d.at(v, join(join(ref.path, "events"), k), "camera %s takes its events as %s: one pull subscription, the device's", id.Value, prev)
				}
			}
		}
	}
}
