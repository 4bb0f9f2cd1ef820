package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads; a configuration is a few kilobytes.
const maxFileSize = 4 << 20

// Load reads vigil.yaml at path and the camera registry it names, expands
// ${NAME} from the process environment and validates everything. On any
// problem it returns a nil Config and an error joining one *Error per
// problem, each reading "file:line:col: path: message".
func Load(path string) (*Config, error) {
	return LoadEnv(path, os.LookupEnv)
}

// LoadEnv is Load with the environment given by getenv, which reports
// whether a variable is set.
func LoadEnv(path string, getenv func(string) (string, bool)) (*Config, error) {
	return load(path, getenv, readFile)
}

// load is LoadEnv with the file system given by read, for the fuzz test.
func load(path string, getenv func(string) (string, bool), read func(string) ([]byte, error)) (*Config, error) {
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	var errs, warns []*Error
	cfg := Default()
	cfg.Path = path
	d := &decoder{file: path, getenv: getenv, errs: &errs, warns: &warns}
	root := d.parseFile(data)
	nodes := d.service(root, cfg)
	files := []string{path}

	base := filepath.Dir(path)
	cfg.CamerasPath = cfg.CamerasFile
	if !filepath.IsAbs(cfg.CamerasPath) {
		cfg.CamerasPath = filepath.Join(base, cfg.CamerasPath)
	}
	if cfg.CamerasFile == "" {
		d.at(nodes.at("cameras_file", root), "cameras_file", "must not be empty")
	} else if camData, err := read(cfg.CamerasPath); err != nil {
		d.wrap(nodes.at("cameras_file", root), "cameras_file", err.Error(), err)
	} else {
		cd := &decoder{file: cfg.CamerasPath, getenv: getenv, errs: &errs, warns: &warns}
		files = append(files, cfg.CamerasPath)
		cd.cameras(cd.parseFile(camData), cfg)
		checkMeaning(d, cd, cfg)
	}
	d.validate(cfg, nodes, root)

	d.nodeID(cfg, nodes, root)
	cfg.Storage.Dir = resolvePath(base, cfg.Storage.Dir)
	cfg.Journal.Path = resolvePath(base, cfg.Journal.Path)

	if len(errs) > 0 {
		sortErrors(errs, files)
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return nil, errors.Join(joined...)
	}
	sortErrors(warns, files)
	cfg.Warnings = warns
	return cfg, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxFileSize+1)
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	if n > maxFileSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxFileSize)
	}
	return buf[:n], nil
}

func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// keyNodes remembers where keys were set, for checks across fields.
type keyNodes map[string]*yaml.Node

// at returns the node of key path, or fallback when the file did not set
// it.
func (k keyNodes) at(path string, fallback *yaml.Node) *yaml.Node {
	if n, ok := k[path]; ok {
		return n
	}
	return fallback
}

func (k keyNodes) add(prefix string, set map[string]*yaml.Node) {
	for key, n := range set {
		k[join(prefix, key)] = n
	}
}

// service decodes vigil.yaml into cfg.
func (d *decoder) service(root *yaml.Node, cfg *Config) keyNodes {
	nodes := keyNodes{}
	var logLevel string
	set := d.object(root, "", []field{
		{"listen", d.str(&cfg.Listen)},
		{"node_id", d.str(&cfg.NodeID)},
		{"node", func(n *yaml.Node, path string) {
			var id string
			set := d.object(n, path, []field{
				{"id", d.str(&id)},
				{"zone", d.str(&cfg.Node.Zone)},
				{"advertise_url", d.str(&cfg.Node.AdvertiseURL)},
			})
			nodes.add(path, set)
			if id != "" {
				if cfg.NodeID != "" && cfg.NodeID != id {
					d.at(set["id"], join(path, "id"), "differs from node_id %q: give one of them", cfg.NodeID)
				}
				cfg.NodeID = id
			}
			if u, ok := set["advertise_url"]; ok && cfg.Node.AdvertiseURL != "" {
				if p, err := url.Parse(cfg.Node.AdvertiseURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
					d.at(u, join(path, "advertise_url"), "want an http or https URL such as http://10.0.0.5:8080")
				}
			}
		}},
		{"timezone", d.str(&cfg.Timezone)},
		{"log", func(n *yaml.Node, path string) {
			nodes.add(path, d.object(n, path, []field{
				{"format", enum(d, &cfg.Log.Format, LogText, LogJSON)},
				{"level", enum(d, &logLevel, "debug", "info", "warn", "error")},
			}))
		}},
		{"storage", func(n *yaml.Node, path string) {
			s := &cfg.Storage
			nodes.add(path, d.object(n, path, []field{
				{"dir", d.str(&s.Dir)},
				{"segment", d.duration(&s.Segment)},
				{"part", d.duration(&s.Part)},
				{"retain", d.duration(&s.Retain)},
				{"max_bytes", d.size(&s.MaxBytes)},
				{"min_free_bytes", d.size(&s.MinFreeBytes)},
				{"fsync", enum(d, &s.Fsync, FsyncPart, FsyncSegment, FsyncNever)},
				{"verify_every", d.duration(&s.VerifyEvery)},
				{"verify_rate", d.size(&s.VerifyRate)},
			}))
		}},
		{"journal", func(n *yaml.Node, path string) {
			j := &cfg.Journal
			nodes.add(path, d.object(n, path, []field{
				{"backend", enum(d, &j.Backend, BackendEmbedded, BackendRedis)},
				{"path", d.str(&j.Path)},
				{"redis", func(n *yaml.Node, path string) {
					r := &j.Redis
					var db int64
					rset := d.object(n, path, []field{
						{"addr", d.str(&r.Addr)},
						{"username", d.str(&r.Username)},
						{"password", d.secret(&r.Password)},
						{"db", d.integer(&db, 0)},
						{"tls", d.boolean(&r.TLS)},
						{"stream_max_len", d.integer(&r.StreamMaxLen, 0)},
					})
					if _, ok := rset["db"]; ok {
						if db > 1<<20 {
							d.at(rset["db"], join(path, "db"), "must be at most %d", 1<<20)
						}
						r.DB = int(min(db, 1<<20))
					}
					nodes.add(path, rset)
				}},
			}))
		}},
		{"auth", func(n *yaml.Node, path string) {
			d.object(n, path, []field{
				{"tokens", func(n *yaml.Node, path string) { d.tokens(n, path, cfg) }},
			})
		}},
		{"metrics_public", d.boolean(&cfg.MetricsPublic)},
		{"ingest", func(n *yaml.Node, path string) {
			nodes.add(path, d.object(n, path, []field{
				{"offline_after", d.duration(&cfg.Ingest.OfflineAfter)},
			}))
		}},
		{"http", func(n *yaml.Node, path string) {
			nodes.add(path, d.object(n, path, []field{
				{"max_conns", d.integer(&cfg.HTTP.MaxConns, 1)},
			}))
		}},
		{"cluster", func(n *yaml.Node, path string) {
			nodes.add(path, d.object(n, path, []field{
				{"token", d.secret(&cfg.Cluster.Token)},
			}))
		}},
		{"export", func(n *yaml.Node, path string) {
			nodes.add(path, d.object(n, path, []field{
				{"max_range", d.duration(&cfg.Export.MaxRange)},
			}))
		}},
		{"alerts", func(n *yaml.Node, path string) { nodes.add(path, d.alerts(n, path, cfg)) }},
		{"notify", func(n *yaml.Node, path string) { nodes.add(path, d.notify(n, path, cfg)) }},
		{"live", func(n *yaml.Node, path string) { nodes.add(path, d.live(n, path, &cfg.Live)) }},
		{"snapshots", func(n *yaml.Node, path string) {
			var width int64 = int64(cfg.Snapshots.Width)
			set := d.object(n, path, []field{
				{"ffmpeg", d.str(&cfg.Snapshots.FFmpeg)},
				{"width", d.integer(&width, 16)},
			})
			if _, ok := set["width"]; ok {
				if width > 7680 {
					d.at(set["width"], join(path, "width"), "must be at most 7680")
				}
				cfg.Snapshots.Width = int(min(width, 7680))
			}
			nodes.add(path, set)
		}},
		{"cameras_file", d.str(&cfg.CamerasFile)},
		{"sites", func(n *yaml.Node, path string) { d.sites(n, path, cfg) }},
	})
	nodes.add("", set)
	if logLevel != "" {
		// The enum has already limited the names to ones slog knows.
		_ = cfg.Log.Level.UnmarshalText([]byte(logLevel))
	}
	return nodes
}

func (d *decoder) live(n *yaml.Node, path string, l *Live) map[string]*yaml.Node {
	port, viewers := int64(l.UDPPort), int64(l.MaxViewers)
	set := d.object(n, path, []field{
		{"udp_port", d.integer(&port, 0)},
		{"max_viewers", d.integer(&viewers, 1)},
		{"ice_servers", func(n *yaml.Node, path string) {
			l.ICEServers = nil
			d.list(n, path, func(i int, item *yaml.Node, path string) {
				var s ICEServer
				set := d.object(item, path, []field{
					{"url", d.str(&s.URL)},
					{"username", d.str(&s.Username)},
					{"credential", d.secret(&s.Credential)},
				})
				if item == nil || item.Kind != yaml.MappingNode {
					return
				}
				if u, ok := set["url"]; !ok {
					d.at(item, join(path, "url"), "required")
				} else if !strings.HasPrefix(s.URL, "stun:") && !strings.HasPrefix(s.URL, "turn:") && !strings.HasPrefix(s.URL, "turns:") {
					d.at(u, join(path, "url"), "scheme must be stun, turn or turns")
				}
				l.ICEServers = append(l.ICEServers, s)
			})
		}},
		{"nat_ips", func(n *yaml.Node, path string) {
			l.NATIPs = nil
			d.list(n, path, func(i int, item *yaml.Node, path string) {
				v, ok := d.scalar(item, path, "an IP address")
				if !ok {
					return
				}
				if net.ParseIP(v) == nil {
					d.at(item, path, "not an IP address: %q", v)
					return
				}
				l.NATIPs = append(l.NATIPs, v)
			})
		}},
	})
	if _, ok := set["udp_port"]; ok {
		if port > 65535 {
			d.at(set["udp_port"], join(path, "udp_port"), "must be at most 65535")
		}
		l.UDPPort = int(min(port, 65535))
	}
	if _, ok := set["max_viewers"]; ok {
		if viewers > 10000 {
			d.at(set["max_viewers"], join(path, "max_viewers"), "must be at most 10000")
		}
		l.MaxViewers = int(min(viewers, 10000))
	}
	return set
}

// sites decodes the display names of sites, validated like units.
func (d *decoder) sites(n *yaml.Node, path string, cfg *Config) {
	d.namedIDs(n, path, "site", "key-site", map[string]*yaml.Node{}, func(id, name string) {
		cfg.Sites = append(cfg.Sites, Site{ID: id, Name: name})
	})
}

// namedIDs decodes a list of {id, name} (units, sites): an ID is required,
// well-formed and unique (seen keeps the node of each); the name defaults
// to the ID. add receives each valid entry.
func (d *decoder) namedIDs(n *yaml.Node, path, what, example string, seen map[string]*yaml.Node, add func(id, name string)) {
	d.list(n, path, func(i int, item *yaml.Node, path string) {
		var id, name string
		set := d.object(item, path, []field{
			{"id", d.str(&id)},
			{"name", d.str(&name)},
		})
		idNode, ok := set["id"]
		switch {
		case item == nil || item.Kind != yaml.MappingNode:
			return
		case !ok:
			d.at(item, join(path, "id"), "required")
			return
		case !ValidID(id):
			d.at(idNode, join(path, "id"), "invalid id %q (want lower-case letters, digits and '-', like %s)", id, example)
		case seen[id] != nil:
			d.at(idNode, join(path, "id"), "duplicate %s id %q (first at line %d)", what, id, seen[id].Line)
			return
		}
		seen[id] = idNode
		if name == "" {
			name = id
		}
		add(id, name)
	})
}

func (d *decoder) tokens(n *yaml.Node, path string, cfg *Config) {
	names := map[string]int{}
	d.list(n, path, func(i int, item *yaml.Node, path string) {
		var t Token
		var sum, plain string
		set := d.object(item, path, []field{
			{"name", d.str(&t.Name)},
			{"role", enum(d, &t.Role, RoleDesk, RoleInvestigator, RoleAdmin)},
			{"sha256", d.str(&sum)},
			{"token", d.str(&plain)},
		})
		if item == nil || item.Kind != yaml.MappingNode {
			return
		}
		if _, ok := set["name"]; !ok {
			d.at(item, join(path, "name"), "required")
		} else if strings.EqualFold(strings.TrimSpace(t.Name), ReservedActor) || strings.TrimSpace(t.Name) == "" {
			d.at(set["name"], join(path, "name"), "%q is reserved for the changes the service makes itself; choose another name", t.Name)
		} else if first, dup := names[t.Name]; dup {
			d.at(set["name"], join(path, "name"), "duplicate token name %q (first at auth.tokens[%d])", t.Name, first)
		} else {
			names[t.Name] = i
		}
		if _, ok := set["role"]; !ok {
			d.at(item, join(path, "role"), "required")
		}
		sumNode, hasSum := set["sha256"]
		tokNode, hasTok := set["token"]
		switch {
		case hasSum && hasTok:
			d.at(tokNode, path, "give either sha256 or token, not both")
		case !hasSum && !hasTok:
			d.at(item, path, "one of sha256 or token is required")
		case hasSum:
			b, err := hex.DecodeString(sum)
			if err != nil || len(b) != len(t.Hash) {
				d.at(sumNode, join(path, "sha256"), "must be 64 hex digits")
			} else {
				copy(t.Hash[:], b)
			}
		case hasTok:
			if len(plain) < 16 {
				d.at(tokNode, join(path, "token"), "must be at least 16 characters")
			}
			t.Hash = sha256Sum(plain)
		}
		cfg.Auth.Tokens = append(cfg.Auth.Tokens, t)
	})
}

func (d *decoder) alerts(n *yaml.Node, path string, cfg *Config) map[string]*yaml.Node {
	a := &cfg.Alerts
	var rulesNode *yaml.Node
	units := &unitIndex{nodes: map[string]*yaml.Node{}}
	unitNodes := units.nodes
	set := d.object(n, path, []field{
		{"pre_roll", d.duration(&a.PreRoll)},
		{"post_roll", d.duration(&a.PostRoll)},
		{"hold_after_resolve", d.duration(&a.HoldAfterResolve)},
		{"stale_after", d.duration(&a.StaleAfter)},
		{"max_event_age", d.duration(&a.MaxEventAge)},
		{"units", func(n *yaml.Node, path string) {
			d.namedIDs(n, path, "unit", "police", unitNodes, func(id, name string) {
				u := Unit{ID: id, Name: name}
				a.Units = append(a.Units, u)
				units.list = append(units.list, u)
			})
		}},
		{"rules", func(n *yaml.Node, path string) {
			rulesNode = n
			a.Rules = nil
		}},
	})
	// Rules name units, so they are decoded once all units are known.
	if rulesNode != nil {
		d.list(rulesNode, join(path, "rules"), func(i int, item *yaml.Node, path string) {
			r, ok := d.rule(item, path, units)
			if ok {
				a.Rules = append(a.Rules, r)
			}
		})
	}
	return set
}

func (d *decoder) rule(item *yaml.Node, path string, units *unitIndex) (Rule, bool) {
	var r Rule
	set := d.object(item, path, []field{
		{"match", func(n *yaml.Node, path string) {
			m := &r.Match
			mset := d.object(n, path, []field{
				{"type", d.str(&m.Type)},
				{"site", d.str(&m.Site)},
				{"camera", d.str(&m.Camera)},
				{"grid", d.str(&m.Grid)},
			})
			d.matches = append(d.matches, matchRef{path: path, site: mset["site"], camera: mset["camera"]})
			if tn, ok := mset["type"]; ok {
				types := EventTypes()
				if !containsString(types, m.Type) {
					d.at(tn, join(path, "type"), "unknown event type %q (want one of %s)", m.Type, strings.Join(types, ", "))
				}
			}
		}},
		{"severity", enum(d, &r.Severity, Critical, Major, Minor)},
		{"ack_within", d.duration(&r.AckWithin)},
		{"resolve_within", d.duration(&r.ResolveWithin)},
		{"dispatch_to", d.str(&r.DispatchTo)},
		{"cooldown", d.duration(&r.Cooldown)},
		{"escalate_to", d.strings(&r.EscalateTo, &d.receivers)},
		{"escalate_after", d.duration(&r.EscalateAfter)},
	})
	if item == nil || item.Kind != yaml.MappingNode {
		return r, false
	}
	if _, ok := set["severity"]; !ok {
		d.at(item, join(path, "severity"), "required")
	}
	if n, ok := set["dispatch_to"]; ok && units.node(r.DispatchTo) == nil {
		d.at(n, join(path, "dispatch_to"), "unknown unit %q%s", r.DispatchTo, units.hint(r.DispatchTo))
	}
	if r.AckWithin > 0 && r.ResolveWithin > 0 && r.AckWithin > r.ResolveWithin {
		d.at(set["ack_within"], join(path, "ack_within"), "must not exceed resolve_within (%s)", r.ResolveWithin)
	}
	return r, true
}

// cameras decodes the camera registry into cfg.Cameras.
func (d *decoder) cameras(root *yaml.Node, cfg *Config) {
	ids := map[string]*yaml.Node{}
	if root != nil && root.Kind == yaml.MappingNode && !hasKey(root, "cameras") {
		// Without the key, a file cut short by mistake would stop every
		// camera; an empty registry must say so.
		d.at(root, "cameras", "required (write cameras: [] to run without cameras)")
	}
	set := d.object(root, "", []field{
		{"devices", func(n *yaml.Node, path string) { d.devices(n, path, cfg) }},
		{"cameras", func(n *yaml.Node, path string) {
			d.list(n, path, func(i int, item *yaml.Node, path string) {
				cam, ok := d.camera(item, path, ids)
				if ok {
					cfg.Cameras = append(cfg.Cameras, cam)
					d.cams = append(d.cams, cameraRef{path: path, item: item, site: fieldNode(item, "site")})
				}
			})
		}},
	})
	if root != nil && root.Kind == yaml.MappingNode && hasKey(root, "cameras") && set["cameras"] == nil {
		d.at(keyNode(root, "cameras"), "cameras", "has no value (write cameras: [] to run without cameras)")
	}
	d.checkDevices(cfg)
}

// hasKey reports whether mapping n sets key itself (not through a merge).
func hasKey(n *yaml.Node, key string) bool { return keyNode(n, key) != nil }

// keyNode returns the key node of key in mapping n, or nil.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	k, _ := entry(n, key)
	return k
}

// fieldNode returns the value node of key in mapping n, or nil.
func fieldNode(n *yaml.Node, key string) *yaml.Node {
	_, v := entry(resolve(n), key)
	return v
}

// entry finds key in mapping n, set by n itself.
func entry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k, n.Content[i+1]
		}
	}
	return nil, nil
}

func (d *decoder) camera(item *yaml.Node, path string, ids map[string]*yaml.Node) (Camera, bool) {
	c := defaultCamera()
	var rawURL string
	var urlOK bool // url was given and decoded; problems with it are reported
	var user string
	var keyPass Secret
	set := d.object(item, path, []field{
		{"id", d.str(&c.ID)},
		{"name", d.str(&c.Name)},
		{"site", d.str(&c.Site)},
		{"grid", d.str(&c.Grid)},
		{"location", d.str(&c.Location)},
		{"url", func(n *yaml.Node, path string) {
			rawURL, urlOK = d.scalar(n, path, "a string")
		}},
		{"username", d.str(&user)},
		{"password", d.secret(&keyPass)},
		{"transport", enum(d, &c.Transport, TransportAuto, TransportTCP, TransportUDP)},
		{"enabled", d.boolean(&c.Enabled)},
		{"record", d.boolean(&c.Record)},
		{"retain", d.duration(&c.Retain)},
		{"auth_retry", d.duration(&c.AuthRetry)},
		{"zone", d.str(&c.Zone)},
		{"events", func(n *yaml.Node, path string) {
			d.object(n, path, []field{
				{"onvif_metadata", d.boolean(&c.Events.ONVIFMetadata)},
				{"webhook_secret", d.secret(&c.Events.WebhookSecret)},
				{"onvif_pullpoint", d.boolean(&c.Events.ONVIFPullPoint)},
				{"hikvision_stream", d.boolean(&c.Events.HikvisionStream)},
				{"dahua_stream", d.boolean(&c.Events.DahuaStream)},
				{"onvif_url", d.str(&c.Events.ONVIFURL)},
				{"url", d.str(&c.Events.URL)},
				{"map", d.typeMap(&c.Events.Map)},
				{"ignore", d.stringList(&c.Events.Ignore)},
			})
			d.checkPull(n, path, c.Events)
		}},
	})
	if item == nil || item.Kind != yaml.MappingNode {
		d.at(item, path, "expected a mapping, got %s", kindName(item))
		return c, false
	}
	ok := d.uniqueID(item, set, path, "camera", c.ID, ids)
	if _, has := set["name"]; !has || c.Name == "" {
		// The desk shows the name; an ID alone reads as a code to the
		// people answering the alert.
		d.at(item, join(path, "name"), "required (the name the desk shows, like 服务大厅入口)")
		ok = false
	}
	if n, has := set["auth_retry"]; has && c.AuthRetry < time.Second {
		d.at(n, join(path, "auth_retry"), "must be at least 1s (a camera locks the account after a few refused logins)")
		ok = false
	}
	urlNode, has := set["url"]
	if !has {
		d.at(item, join(path, "url"), "required")
		return c, false
	}
	if !urlOK {
		return c, false
	}
	u, msg := parseStreamURL(rawURL)
	if msg != "" {
		// The message never quotes the URL: it may hold a password.
		d.at(urlNode, join(path, "url"), "%s", msg)
		return c, false
	}
	if u.User != nil {
		c.Username = u.User.Username()
		if p, set := u.User.Password(); set {
			c.Password = Secret(p)
		}
		u.User = nil
	}
	// The keys win over the URL's userinfo.
	if _, has := set["username"]; has {
		c.Username = user
	}
	if _, has := set["password"]; has {
		c.Password = keyPass
	}
	if c.Password != "" && c.Username == "" {
		if pn, has := set["password"]; has {
			d.at(pn, join(path, "password"), "password given without a username")
		} else {
			d.at(urlNode, join(path, "url"), "password given without a username")
		}
		ok = false
	}
	c.URL = u.String()
	return c, ok
}

// uniqueID checks the id key of a registry entry (a camera, a device):
// present, valid, not taken by an earlier entry of ids, which it joins.
func (d *decoder) uniqueID(item *yaml.Node, set map[string]*yaml.Node, path, what, id string, ids map[string]*yaml.Node) bool {
	idNode, has := set["id"]
	switch {
	case !has:
		d.at(item, join(path, "id"), "required")
	case !ValidID(id):
		d.at(idNode, join(path, "id"), "invalid id %q (want ^[a-z0-9][a-z0-9-]{0,62}$)", id)
	case ids[id] != nil:
		d.at(idNode, join(path, "id"), "duplicate %s id %q (first at line %d)", what, id, ids[id].Line)
	default:
		ids[id] = idNode
		return true
	}
	return false
}

// parseStreamURL checks an RTSP URL; the message is empty when it is good.
func parseStreamURL(raw string) (*url.URL, string) {
	if raw == "" {
		return nil, "must not be empty"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "not a valid URL"
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, "scheme must be rtsp or rtsps"
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, "host is missing"
	}
	if p := u.Port(); p != "" {
		var port int
		if _, err := fmt.Sscanf(p, "%d", &port); err != nil || port < 1 || port > 65535 {
			return nil, "invalid port"
		}
	}
	return u, ""
}

// validate checks what involves more than one key.
func (d *decoder) validate(cfg *Config, nodes keyNodes, root *yaml.Node) {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		d.at(nodes.at("listen", root), "listen", "want host:port, got %q", cfg.Listen)
	}
	if loc, err := time.LoadLocation(cfg.Timezone); err != nil || cfg.Timezone == "" {
		d.at(nodes.at("timezone", root), "timezone", "unknown time zone %q", cfg.Timezone)
	} else {
		cfg.Location = loc
	}
	s := cfg.Storage
	if s.Dir == "" {
		d.at(nodes.at("storage.dir", nodes.at("storage", root)), "storage.dir", "must not be empty")
	}
	if s.Segment <= 0 {
		d.at(nodes.at("storage.segment", root), "storage.segment", "must be positive")
	}
	if s.Part <= 0 {
		d.at(nodes.at("storage.part", root), "storage.part", "must be positive")
	} else if s.Segment > 0 && s.Part > s.Segment {
		d.at(nodes.at("storage.part", nodes.at("storage.segment", root)), "storage.part",
			"must not exceed storage.segment (%s)", s.Segment)
	}
	if cfg.Journal.Backend == BackendEmbedded && cfg.Journal.Path == "" {
		d.at(nodes.at("journal.path", root), "journal.path", "must not be empty for the embedded journal")
	}
	if cfg.Journal.Backend == BackendRedis && cfg.Journal.Redis.Addr == "" {
		d.at(nodes.at("journal.redis.addr", root), "journal.redis.addr", "must not be empty for the redis journal")
	}
	if cfg.Ingest.OfflineAfter <= 0 {
		d.at(nodes.at("ingest.offline_after", root), "ingest.offline_after", "must be positive")
	}
	d.validateReceivers(cfg)
	if cfg.Notify.MaxAge <= 0 {
		d.at(nodes.at("notify.max_age", root), "notify.max_age", "must be positive")
	}
	if cfg.Export.MaxRange <= 0 {
		d.at(nodes.at("export.max_range", root), "export.max_range", "must be positive")
	}
}

// nodeID checks node.id (or node_id) against ValidID, or, when neither is
// set, derives it from the host name (NodeIDFromHost). The ID goes to the
// other nodes in a header, names the node's Redis keys and footage URLs
// (?node=) and is written into every index line: one the others refuse
// would make every node-to-node request fail, so it is refused here.
func (d *decoder) nodeID(cfg *Config, nodes keyNodes, root *yaml.Node) {
	const rule = "want ^[a-z0-9][a-z0-9-]{0,62}$: lower-case letters, digits and hyphens, as a camera id"
	if cfg.NodeID != "" {
		path := "node.id"
		if _, ok := nodes["node.id"]; !ok {
			path = "node_id"
		}
		if !ValidID(cfg.NodeID) {
			d.at(nodes.at(path, root), path, "invalid node id %q (%s)", cfg.NodeID, rule)
		}
		return
	}
	host, err := os.Hostname()
	if err != nil {
		host = ""
	}
	cfg.NodeID = NodeIDFromHost(host)
	switch {
	case cfg.NodeID == "" && cfg.Journal.Backend == BackendRedis:
		d.at(nodes.at("node", root), "node.id", "not set, and the host name %q gives no valid node id (%s): set node.id", host, rule)
	case cfg.NodeID == "":
		cfg.NodeID = "vigil"
		d.warn(nodes.at("node", root), "node.id", "not set, and the host name %q gives no valid node id (%s): %q is used", host, rule, cfg.NodeID)
	case cfg.NodeID != host && cfg.Journal.Backend == BackendRedis:
		d.warn(nodes.at("node", root), "node.id", "not set: %q is used, made from the host name %q (%s); set node.id to name this node yourself", cfg.NodeID, host, rule)
	}
}

// NodeIDFromHost is the node ID of a node without node.id: its host name
// lower-cased, each run of characters other than a-z and 0-9 made one
// hyphen, hyphens trimmed from both ends ("Town_1.lan" is "town-1-lan").
// It is "" when that is no valid ID (an empty host name, or longer than 63
// characters): the node must then be named in node.id.
func NodeIDFromHost(host string) string {
	var b strings.Builder
	hyphen := false
	for _, c := range strings.ToLower(host) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			hyphen = false
			continue
		}
		hyphen = true
	}
	if id := b.String(); ValidID(id) {
		return id
	}
	return ""
}

// ValidID reports whether s is a valid camera, unit or node ID:
// ^[a-z0-9][a-z0-9-]{0,62}$.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sha256Sum(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
