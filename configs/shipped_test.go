package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// defaultKeys are the keys of vigil.yaml that have a default, with the
// field each sets.
func defaultKeys() map[string]func(*Config) any {
	return map[string]func(*Config) any{
		"listen":                       func(c *Config) any { return c.Listen },
		"node_id":                      func(c *Config) any { return c.NodeID },
		"timezone":                     func(c *Config) any { return c.Timezone },
		"log.format":                   func(c *Config) any { return c.Log.Format },
		"log.level":                    func(c *Config) any { return c.Log.Level },
		"storage.dir":                  func(c *Config) any { return c.Storage.Dir },
		"storage.segment":              func(c *Config) any { return c.Storage.Segment },
		"storage.part":                 func(c *Config) any { return c.Storage.Part },
		"storage.retain":               func(c *Config) any { return c.Storage.Retain },
		"storage.max_bytes":            func(c *Config) any { return c.Storage.MaxBytes },
		"storage.min_free_bytes":       func(c *Config) any { return c.Storage.MinFreeBytes },
		"storage.fsync":                func(c *Config) any { return c.Storage.Fsync },
		"storage.verify_every":         func(c *Config) any { return c.Storage.VerifyEvery },
		"storage.verify_rate":          func(c *Config) any { return c.Storage.VerifyRate },
		"journal.backend":              func(c *Config) any { return c.Journal.Backend },
		"journal.path":                 func(c *Config) any { return c.Journal.Path },
		"journal.redis.addr":           func(c *Config) any { return c.Journal.Redis.Addr },
		"journal.redis.username":       func(c *Config) any { return c.Journal.Redis.Username },
		"journal.redis.password":       func(c *Config) any { return c.Journal.Redis.Password.Reveal() },
		"journal.redis.db":             func(c *Config) any { return c.Journal.Redis.DB },
		"journal.redis.tls":            func(c *Config) any { return c.Journal.Redis.TLS },
		"journal.redis.stream_max_len": func(c *Config) any { return c.Journal.Redis.StreamMaxLen },
		"metrics_public":               func(c *Config) any { return c.MetricsPublic },
		"ingest.offline_after":         func(c *Config) any { return c.Ingest.OfflineAfter },
		"export.max_range":             func(c *Config) any { return c.Export.MaxRange },
		"live.udp_port":                func(c *Config) any { return c.Live.UDPPort },
		"live.max_viewers":             func(c *Config) any { return c.Live.MaxViewers },
		"snapshots.ffmpeg":             func(c *Config) any { return c.Snapshots.FFmpeg },
		"snapshots.width":              func(c *Config) any { return c.Snapshots.Width },
		"http.max_conns":               func(c *Config) any { return c.HTTP.MaxConns },
		"alerts.pre_roll":              func(c *Config) any { return c.Alerts.PreRoll },
		"alerts.post_roll":             func(c *Config) any { return c.Alerts.PostRoll },
		"alerts.hold_after_resolve":    func(c *Config) any { return c.Alerts.HoldAfterResolve },
		"alerts.stale_after":           func(c *Config) any { return c.Alerts.StaleAfter },
		"alerts.max_event_age":         func(c *Config) any { return c.Alerts.MaxEventAge },
		"node.zone":                    func(c *Config) any { return c.Node.Zone },
		"node.advertise_url":           func(c *Config) any { return c.Node.AdvertiseURL },
		"cluster.token":                func(c *Config) any { return c.Cluster.Token.Reveal() },
		"cameras_file":                 func(c *Config) any { return c.CamerasFile },
		"notify.base_url":              func(c *Config) any { return c.Notify.BaseURL },
		"notify.max_age":               func(c *Config) any { return c.Notify.MaxAge },
		"notify.rate_per_minute":       func(c *Config) any { return c.Notify.RatePerMinute },
	}
}

// leaves maps each key path of a mapping tree to its value node and the
// comment on its line.
func leaves(n *yaml.Node, prefix string, out map[string]string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := join(prefix, k.Value)
		if v.Kind == yaml.MappingNode {
			leaves(v, path, out)
			continue
		}
		out[path] = k.LineComment + v.LineComment
	}
}

func TestShippedFilesLoad(t *testing.T) {
	cfg, err := LoadEnv("vigil.yaml", noEnv)
	if err != nil {
		t.Fatalf("shipped files with an empty environment:\n%v", err)
	}
	if len(cfg.Cameras) < 4 || len(cfg.Alerts.Units) != 3 || len(cfg.Alerts.Rules) < 3 {
		t.Errorf("shipped config: %v", cfg)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("shipped config warns: %v", w)
	}
	for _, id := range []string{"hall-entrance", "hall-counter", "mediation-room", "key-site-gate"} {
		if _, ok := cfg.Camera(id); !ok {
			t.Errorf("shipped cameras lack %s", id)
		}
	}
	for _, id := range []string{"police", "zongzhi", "sifa"} {
		if _, ok := cfg.Unit(id); !ok {
			t.Errorf("shipped units lack %s", id)
		}
	}
	sites := map[string]bool{}
	for _, s := range cfg.Sites {
		sites[s.ID] = true
	}
	for _, c := range cfg.Cameras {
		if !sites[c.Site] {
			t.Errorf("camera %s: site %q has no display name in sites", c.ID, c.Site)
		}
	}
	for _, tok := range cfg.Auth.Tokens {
		if tok.Hash == (Digest{}) {
			t.Errorf("token %s has no hash", tok.Name)
		}
	}
}

// TestShippedDefaultsMatchCode checks that every key written in the shipped
// vigil.yaml with a "default" comment holds the value Default() has, and that
// every key with a default is written out.
func TestShippedDefaultsMatchCode(t *testing.T) {
	data, err := os.ReadFile("vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var errs []*Error
	d := &decoder{file: "vigil.yaml", getenv: noEnv, errs: &errs}
	root := d.parseFile(data)
	written := Default()
	d.service(root, written)
	if len(errs) > 0 {
		t.Fatalf("decode: %v", errs)
	}
	comments := map[string]string{}
	leaves(root, "", comments)
	keys := defaultKeys()
	def := Default()
	for path, get := range keys {
		comment, ok := comments[path]
		if !ok {
			t.Errorf("%s: default not written out in vigil.yaml", path)
			continue
		}
		if !strings.Contains(comment, "default") {
			t.Errorf("%s: no comment saying it is the default", path)
		}
		if got, want := get(written), get(def); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: vigil.yaml says %v, Default() has %v", path, got, want)
		}
	}
	for path, comment := range comments {
		if _, ok := keys[path]; !ok && strings.Contains(comment, "default") {
			t.Errorf("%s: marked default in vigil.yaml but not checked here", path)
		}
	}
}

// TestShippedCamerasDocumentDefaults checks the camera defaults stated in the
// comments of cameras.yaml against defaultCamera.
func TestShippedCamerasDocumentDefaults(t *testing.T) {
	data, err := os.ReadFile("cameras.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	c := defaultCamera()
	for _, want := range []struct {
		doc string
		ok  bool
	}{
		{"(default " + string(c.Transport) + ")", true},
		{"does not connect   (default true)", c.Enabled},
		{"without recording        (default true)", c.Record},
		{"when present (default true)", c.Events.ONVIFMetadata},
		{"lock the account         (default 5m)", c.AuthRetry == 5*time.Minute},
	} {
		if !strings.Contains(text, want.doc) || !want.ok {
			t.Errorf("cameras.yaml documents %q, code default disagrees or text missing", want.doc)
		}
	}
	if c.Retain != 0 {
		t.Errorf("camera retain default is %v, documented as storage.retain", c.Retain)
	}
}

func TestShippedPathsResolveAgainstFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vigil.yaml", "cameras.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadEnv(filepath.Join(dir, "vigil.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data/recordings"); cfg.Storage.Dir != want {
		t.Errorf("storage.dir = %s, want %s", cfg.Storage.Dir, want)
	}
	if want := filepath.Join(dir, "data/journal.db"); cfg.Journal.Path != want {
		t.Errorf("journal.path = %s, want %s", cfg.Journal.Path, want)
	}
	if want := filepath.Join(dir, "cameras.yaml"); cfg.CamerasPath != want {
		t.Errorf("cameras path = %s, want %s", cfg.CamerasPath, want)
	}
}
