package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const hexA = "c66fccb9b76e624ca86c9aa47b004c9ad775e47d7a763aa941ea126ed8b6afe5"

const baseVigil = "alerts:\n  units: [{id: police, name: 派出所}]\n"

const baseCameras = "cameras:\n  - id: cam-1\n    url: rtsp://192.0.2.1/s\n    name: Cam 1\n"

func noEnv(string) (string, bool) { return "", false }

// loadIn writes the two files into a fresh directory, changes into it and
// loads "vigil.yaml", so errors name the files as the test writes them.
func loadIn(t *testing.T, vigil, cameras string, getenv func(string) (string, bool)) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte(vigil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cameras), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return LoadEnv("vigil.yaml", getenv)
}

func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		vigil   string // baseVigil when empty
		cameras string // baseCameras when empty
		want    []string
	}{
		{
			name:  "unknown key",
			vigil: "listen: 127.0.0.1:8080\nstorge: {}\n",
			want:  []string{`vigil.yaml:2:1: storge: unknown key (did you mean storage?)`},
		},
		{
			name:  "node id twice",
			vigil: "node_id: a\nnode: {id: b, advertise_url: \"ftp://x\"}\n",
			want: []string{`vigil.yaml:2:12: node.id: differs from node_id "a": give one of them`,
				`vigil.yaml:2:30: node.advertise_url: want an http or https URL such as http://10.0.0.5:8080`},
		},
		{
			name:  "node id not lower-case letters, digits and hyphens",
			vigil: "node: {id: Town_1.lan}\n",
			want:  []string{`vigil.yaml:1:12: node.id: invalid node id "Town_1.lan" (want ^[a-z0-9][a-z0-9-]{0,62}$: lower-case letters, digits and hyphens, as a camera id)`},
		},
		{
			name:  "node_id too long",
			vigil: "node_id: " + strings.Repeat("a", 64) + "\n",
			want:  []string{`vigil.yaml:1:10: node_id: invalid node id "` + strings.Repeat("a", 64) + `" (want ^[a-z0-9][a-z0-9-]{0,62}$: lower-case letters, digits and hyphens, as a camera id)`},
		},
		{
			name:  "token named system",
			vigil: "auth:\n  tokens:\n    - {name: System, role: desk, sha256: " + strings.Repeat("a", 64) + "}\n",
			want:  []string{`vigil.yaml:3:14: auth.tokens[0].name: "System" is reserved for the changes the service makes itself; choose another name`},
		},
		{
			name:  "wrong type",
			vigil: "storage:\n  segment: [1, 2]\n",
			want:  []string{`vigil.yaml:2:12: storage.segment: expected a duration, got a list`},
		},
		{
			name:  "section not a mapping",
			vigil: "storage: ./data\n",
			want:  []string{`vigil.yaml:1:10: storage: expected a mapping, got a scalar`},
		},
		{
			name:  "live and snapshot keys",
			vigil: "live:\n  udp_port: 70000\n  max_viewers: 0\n  ice_servers: [{url: \"http://stun.example\"}, {username: u}]\n  nat_ips: [203.0.113.7, example.org]\nsnapshots: {width: 8}\n",
			want: []string{
				`vigil.yaml:2:13: live.udp_port: must be at most 65535`,
				`vigil.yaml:3:16: live.max_viewers: must be at least 1`,
				`vigil.yaml:4:23: live.ice_servers[0].url: scheme must be stun, turn or turns`,
				`vigil.yaml:4:47: live.ice_servers[1].url: required`,
				`vigil.yaml:5:26: live.nat_ips[1]: not an IP address: "example.org"`,
				`vigil.yaml:6:20: snapshots.width: must be at least 16`,
			},
		},
		{
			name:  "bad duration",
			vigil: "storage:\n  retain: 30days\n",
			want:  []string{`vigil.yaml:2:11: storage.retain: invalid duration "30days" (want like 90s, 15m, 4h or 30d)`},
		},
		{
			name:  "duration without unit",
			vigil: "alerts:\n  pre_roll: 10\n",
			want:  []string{`vigil.yaml:2:13: alerts.pre_roll: invalid duration "10": missing unit (want like 90s, 15m, 4h or 30d)`},
		},
		{
			name:  "bad size",
			vigil: "storage:\n  min_free_bytes: 2GB5\n",
			want:  []string{`vigil.yaml:2:19: storage.min_free_bytes: invalid size "2GB5" (want like 0, 500MB or 2GiB)`},
		},
		{
			name:  "size unit",
			vigil: "storage:\n  max_bytes: 10XB\n",
			want:  []string{`vigil.yaml:2:14: storage.max_bytes: invalid size "10XB" (want like 0, 500MB or 2GiB)`},
		},
		{
			name:  "part longer than segment",
			vigil: "storage:\n  segment: 2s\n  part: 5s\n",
			want:  []string{`vigil.yaml:3:9: storage.part: must not exceed storage.segment (2s)`},
		},
		{
			name:  "fsync enum",
			vigil: "storage: {fsync: always}\n",
			want:  []string{`vigil.yaml:1:18: storage.fsync: must be one of part, segment, never, got "always"`},
		},
		{
			name:  "journal backend enum",
			vigil: "journal:\n  backend: postgres\n",
			want:  []string{`vigil.yaml:2:12: journal.backend: must be one of embedded, redis, got "postgres"`},
		},
		{
			name:  "bad role",
			vigil: "auth:\n  tokens:\n    - {name: a, role: root, sha256: " + hexA + "}\n",
			want:  []string{`vigil.yaml:3:23: auth.tokens[0].role: must be one of desk, investigator, admin, got "root"`},
		},
		{
			name:  "token with neither",
			vigil: "auth:\n  tokens:\n    - {name: a, role: desk}\n",
			want:  []string{`vigil.yaml:3:7: auth.tokens[0]: one of sha256 or token is required`},
		},
		{
			name:  "token with both",
			vigil: "auth:\n  tokens:\n    - name: a\n      role: desk\n      sha256: " + hexA + "\n      token: abcdefghijklmnopqrstuvwxyz\n",
			want:  []string{`vigil.yaml:6:14: auth.tokens[0]: give either sha256 or token, not both`},
		},
		{
			name:  "sha256 not hex",
			vigil: "auth:\n  tokens:\n    - {name: a, role: admin, sha256: abc123}\n",
			want:  []string{`vigil.yaml:3:38: auth.tokens[0].sha256: must be 64 hex digits`},
		},
		{
			name:  "unset variable",
			vigil: "listen: ${VIGIL_LISTEN}\n",
			want:  []string{`vigil.yaml:1:9: listen: environment variable VIGIL_LISTEN is not set`},
		},
		{
			name:  "unset variable inside a value",
			vigil: "journal:\n  path: /srv/${NODE}/journal.db\n",
			want:  []string{`vigil.yaml:2:9: journal.path: environment variable NODE is not set`},
		},
		{
			name:  "rule names unknown unit",
			vigil: baseVigil + "  rules:\n    - {match: {type: intrusion}, severity: critical, dispatch_to: polcie}\n",
			want:  []string{`vigil.yaml:4:67: alerts.rules[0].dispatch_to: unknown unit "polcie" (did you mean police? valid unit ids: police)`},
		},
		{
			name:  "rule bad severity",
			vigil: baseVigil + "  rules:\n    - {match: {}, severity: urgent}\n",
			want:  []string{`vigil.yaml:4:29: alerts.rules[0].severity: must be one of critical, major, minor, got "urgent"`},
		},
		{
			name:  "rule unknown type",
			vigil: baseVigil + "  rules:\n    - match: {type: intruder}\n      severity: major\n",
			want:  []string{`vigil.yaml:4:21: alerts.rules[0].match.type: unknown event type "intruder" (want one of motion, tamper, video_loss, line_crossing, intrusion, io_alarm, camera_offline, recording_failure, storage_full, recording_tampered, other)`},
		},
		{
			name:  "rule without severity",
			vigil: baseVigil + "  rules:\n    - match: {type: motion}\n",
			want:  []string{`vigil.yaml:4:7: alerts.rules[0].severity: required`},
		},
		{
			name:  "duplicate unit",
			vigil: "alerts:\n  units:\n    - {id: police, name: 派出所}\n    - {id: police, name: 公安}\n",
			want:  []string{`vigil.yaml:4:12: alerts.units[1].id: duplicate unit id "police" (first at line 3)`},
		},
		{
			name:  "duplicate site",
			vigil: "sites:\n  - {id: hall, name: 公共服务大厅}\n  - {id: hall, name: 大厅}\n  - {name: 无编号}\n  - {id: Key_Site}\n",
			want: []string{
				`vigil.yaml:3:10: sites[1].id: duplicate site id "hall" (first at line 2)`,
				`vigil.yaml:4:5: sites[2].id: required`,
				`vigil.yaml:5:10: sites[3].id: invalid id "Key_Site" (want lower-case letters, digits and '-', like key-site)`,
			},
		},
		{
			name:  "bad timezone",
			vigil: "timezone: Mars/Olympus\n",
			want:  []string{`vigil.yaml:1:11: timezone: unknown time zone "Mars/Olympus"`},
		},
		{
			name:  "listen without port",
			vigil: "listen: localhost\n",
			want:  []string{`vigil.yaml:1:9: listen: want host:port, got "localhost"`},
		},
		{
			name:  "duplicate key",
			vigil: "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
			want:  []string{`vigil.yaml:2:1: listen: duplicate key (first at line 1)`},
		},
		{
			name:  "yaml syntax",
			vigil: "listen: [\n",
			want:  []string{`vigil.yaml:1:1: yaml: did not find expected node content`},
		},
		{
			name:  "cameras file missing",
			vigil: "cameras_file: nope.yaml\n",
			want:  []string{`vigil.yaml:1:15: cameras_file: open nope.yaml: no such file or directory`},
		},
		{
			name:    "url scheme",
			cameras: "cameras:\n  - id: cam-1\n    url: http://192.0.2.1/s\n    name: c\n",
			want:    []string{`cameras.yaml:3:10: cameras[0].url: scheme must be rtsp or rtsps`},
		},
		{
			name:    "url without host",
			cameras: "cameras:\n  - id: cam-1\n    url: rtsp:///s\n    name: c\n",
			want:    []string{`cameras.yaml:3:10: cameras[0].url: host is missing`},
		},
		{
			name:    "url that does not parse hides its password",
			cameras: "cameras:\n  - id: cam-1\n    url: \"rtsp://admin:s3cret@[::1/s\"\n    name: c\n",
			want:    []string{`cameras.yaml:3:10: cameras[0].url: not a valid URL`},
		},
		{
			name:    "camera without url",
			cameras: "cameras:\n  - id: cam-1\n    name: x\n",
			want:    []string{`cameras.yaml:2:5: cameras[0].url: required`},
		},
		{
			name:    "duplicate camera id",
			cameras: baseCameras + "  - id: cam-1\n    url: rtsp://192.0.2.2/s\n    name: c\n",
			want:    []string{`cameras.yaml:5:9: cameras[1].id: duplicate camera id "cam-1" (first at line 2)`},
		},
		{
			name:    "bad camera id",
			cameras: "cameras:\n  - id: Hall_1\n    url: rtsp://192.0.2.1/s\n    name: c\n",
			want:    []string{`cameras.yaml:2:9: cameras[0].id: invalid id "Hall_1" (want ^[a-z0-9][a-z0-9-]{0,62}$)`},
		},
		{
			name:    "transport enum",
			cameras: baseCameras + "    transport: quic\n",
			want:    []string{`cameras.yaml:5:16: cameras[0].transport: must be one of auto, tcp, udp, got "quic"`},
		},
		{
			name:    "bool",
			cameras: baseCameras + "    enabled: yes\n",
			want:    []string{`cameras.yaml:5:14: cameras[0].enabled: expected true or false, got "yes"`},
		},
		{
			name:    "unknown camera key",
			cameras: baseCameras + "    pasword: x\n",
			want:    []string{`cameras.yaml:5:5: cameras[0].pasword: unknown key (did you mean password?)`},
		},
		{
			name:    "unknown events key",
			cameras: baseCameras + "    events: {onvif: true}\n",
			want:    []string{`cameras.yaml:5:14: cameras[0].events.onvif: unknown key`},
		},
		{
			name:    "camera password from unset variable",
			cameras: baseCameras + "    username: admin\n    password: ${CAM_PW}\n",
			want:    []string{`cameras.yaml:6:15: cameras[0].password: environment variable CAM_PW is not set`},
		},
		{
			name:    "password without user",
			cameras: baseCameras + "    password: pw\n",
			want:    []string{`cameras.yaml:5:15: cameras[0].password: password given without a username`},
		},
		{
			name:    "url from unset variable is one problem",
			cameras: "cameras:\n  - id: cam-1\n    url: rtsp://admin:${CAM_PW}@192.0.2.1/s\n    name: c\n",
			want:    []string{`cameras.yaml:3:10: cameras[0].url: environment variable CAM_PW is not set`},
		},
		{
			name:    "auth_retry too short",
			cameras: baseCameras + "    auth_retry: 10ms\n",
			want:    []string{`cameras.yaml:5:17: cameras[0].auth_retry: must be at least 1s (a camera locks the account after a few refused logins)`},
		},
		{
			name:    "cameras not a list",
			cameras: "cameras: {id: cam-1}\n",
			want:    []string{`cameras.yaml:1:10: cameras: expected a list, got a mapping`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vigil, cameras := tt.vigil, tt.cameras
			if vigil == "" {
				vigil = baseVigil
			}
			if cameras == "" {
				cameras = baseCameras
			}
			cfg, err := loadIn(t, vigil, cameras, noEnv)
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.want)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with errors")
			}
			got := errorLines(err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows a password: %v", err)
			}
			for _, e := range Errors(err) {
				if e.Line < 1 || e.Column < 1 {
					t.Errorf("error without position: %#v", e)
				}
			}
		})
	}
}

func TestLoadReportsAllErrors(t *testing.T) {
	vigil := "listen: nope\n" +
		"storage:\n  segment: 1s\n  part: 2s\n  fsync: sometimes\n" +
		"auth:\n  tokens:\n    - {name: x, role: boss}\n" +
		"alerts:\n  units: [{id: police}, {id: police}]\n  rules:\n    - {match: {type: fire}, severity: high, dispatch_to: army}\n"
	cameras := "cameras:\n" +
		"  - id: A\n    url: ftp://x/\n" + // no name: one more problem
		"  - id: b\n    name: b\n    url: rtsp://192.0.2.1/\n    transport: sctp\n    retain: forever\n" +
		"  - id: b\n    name: b\n    url: rtsp://192.0.2.2/\n    password: ${NOPE}\n"
	_, err := loadIn(t, vigil, cameras, noEnv)
	want := []string{
		`vigil.yaml:1:9: listen: want host:port, got "nope"`,
		`vigil.yaml:4:9: storage.part: must not exceed storage.segment (1s)`,
		`vigil.yaml:5:10: storage.fsync: must be one of part, segment, never, got "sometimes"`,
		`vigil.yaml:8:7: auth.tokens[0]: one of sha256 or token is required`,
		`vigil.yaml:8:23: auth.tokens[0].role: must be one of desk, investigator, admin, got "boss"`,
		`vigil.yaml:10:30: alerts.units[1].id: duplicate unit id "police" (first at line 10)`,
		`vigil.yaml:12:22: alerts.rules[0].match.type: unknown event type "fire" (want one of motion, tamper, video_loss, line_crossing, intrusion, io_alarm, camera_offline, recording_failure, storage_full, recording_tampered, other)`,
		`vigil.yaml:12:39: alerts.rules[0].severity: must be one of critical, major, minor, got "high"`,
		`vigil.yaml:12:58: alerts.rules[0].dispatch_to: unknown unit "army" (valid unit ids: police)`,
		`cameras.yaml:2:5: cameras[0].name: required (the name the desk shows, like 服务大厅入口)`,
		`cameras.yaml:2:9: cameras[0].id: invalid id "A" (want ^[a-z0-9][a-z0-9-]{0,62}$)`,
		`cameras.yaml:3:10: cameras[0].url: scheme must be rtsp or rtsps`,
		`cameras.yaml:7:16: cameras[1].transport: must be one of auto, tcp, udp, got "sctp"`,
		`cameras.yaml:8:13: cameras[1].retain: invalid duration "forever" (want like 90s, 15m, 4h or 30d)`,
		`cameras.yaml:9:9: cameras[2].id: duplicate camera id "b" (first at line 4)`,
		`cameras.yaml:12:15: cameras[2].password: environment variable NOPE is not set`,
	}
	got := errorLines(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := len(Errors(err)); n != len(want) {
		t.Errorf("Errors: %d, want %d", n, len(want))
	}
}

func TestLoadValid(t *testing.T) {
	vigil := `listen: 0.0.0.0:9000
node_id: node-a
storage: {dir: /srv/rec, retain: 1d12h, max_bytes: 500MB, min_free_bytes: 1 GiB}
journal: {backend: redis, redis: {addr: "${REDIS_ADDR}", password: "${REDIS_PW}", db: 2, tls: true}}
auth:
  tokens:
    - {name: ops, role: admin, token: "${ADMIN_TOKEN}"}
alerts:
  units: [{id: police, name: 派出所}, {id: sifa}]
  rules:
    - {match: {type: intrusion, site: key-site}, severity: critical, ack_within: 2m, resolve_within: 30m, dispatch_to: police, cooldown: 30s}
log: {format: json, level: debug}
`
	cameras := `defaults: &defaults
  site: hall
  transport: tcp
cameras:
  - <<: *defaults
    id: hall-entrance
    name: 服务大厅入口
    url: rtsp://admin:urlpass@192.0.2.21:554/Streaming/Channels/101
    retain: 90d
    auth_retry: 15m
  - id: gate
    name: 大门
    site: key-site
    url: rtsps://192.0.2.31/live
    username: viewer
    password: ${GATE_PW}
    enabled: false
    record: false
    events: {onvif_metadata: false, webhook_secret: hook}
`
	env := map[string]string{"REDIS_ADDR": "10.0.0.1:6379", "REDIS_PW": "redispw", "ADMIN_TOKEN": "0123456789abcdefXYZ", "GATE_PW": "gatepw"}
	cfg, err := loadIn(t, vigil, cameras, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatalf("a camera file with an unknown top-level key loaded")
	}
	if got := err.Error(); got != "cameras.yaml:1:1: defaults: unknown key" {
		t.Fatalf("got %v", got)
	}
	cameras = strings.Replace(cameras, "defaults: &defaults\n  site: hall\n  transport: tcp\n", "", 1)
	cameras = strings.Replace(cameras, "  - <<: *defaults\n    id: hall-entrance\n", "  - id: hall-entrance\n    site: hall\n    transport: tcp\n", 1)
	cfg, err = loadIn(t, vigil, cameras, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "0.0.0.0:9000"},
		{"node_id", cfg.NodeID, "node-a"},
		{"storage.dir", cfg.Storage.Dir, "/srv/rec"},
		{"storage.retain", cfg.Storage.Retain, 36 * time.Hour},
		{"storage.max_bytes", cfg.Storage.MaxBytes, int64(500_000_000)},
		{"storage.min_free_bytes", cfg.Storage.MinFreeBytes, int64(1 << 30)},
		{"journal.path resolved", cfg.Journal.Path, "data/journal.db"},
		{"journal.backend", cfg.Journal.Backend, BackendRedis},
		{"redis addr", cfg.Journal.Redis.Addr, "10.0.0.1:6379"},
		{"redis password", cfg.Journal.Redis.Password.Reveal(), "redispw"},
		{"redis db", cfg.Journal.Redis.DB, 2},
		{"redis tls", cfg.Journal.Redis.TLS, true},
		{"token matches", cfg.Auth.Tokens[0].Matches("0123456789abcdefXYZ"), true},
		{"token rejects", cfg.Auth.Tokens[0].Matches("0123456789abcdefXY"), false},
		{"unit name defaults to id", cfg.Alerts.Units[1].Name, "sifa"},
		{"rules replace default", len(cfg.Alerts.Rules), 1},
		{"rule dispatch", cfg.Alerts.Rules[0].DispatchTo, "police"},
		{"log level", cfg.Log.Level.String(), "DEBUG"},
		{"location", cfg.Location.String(), "Asia/Shanghai"},
		{"cameras", len(cfg.Cameras), 2},
		{"url without userinfo", cfg.Cameras[0].StreamURL(), "rtsp://192.0.2.21:554/Streaming/Channels/101"},
		{"user from url", cfg.Cameras[0].Username, "admin"},
		{"password from url", cfg.Cameras[0].Password.Reveal(), "urlpass"},
		{"redacted url", cfg.Cameras[0].RedactedURL(), "rtsp://admin:***@192.0.2.21:554/Streaming/Channels/101"},
		{"camera retain", cfg.Retention(cfg.Cameras[0]), 90 * 24 * time.Hour},
		{"storage retain for camera", cfg.Retention(cfg.Cameras[1]), 36 * time.Hour},
		{"defaults enabled", cfg.Cameras[0].Enabled && cfg.Cameras[0].Record && cfg.Cameras[0].Events.ONVIFMetadata, true},
		{"name", cfg.Cameras[0].Name, "服务大厅入口"},
		{"auth_retry", cfg.Cameras[0].AuthRetry, 15 * time.Minute},
		{"auth_retry default", cfg.Cameras[1].AuthRetry, 5 * time.Minute},
		{"disabled", cfg.Cameras[1].Enabled || cfg.Cameras[1].Record || cfg.Cameras[1].Events.ONVIFMetadata, false},
		{"webhook", cfg.Cameras[1].Events.WebhookSecret.Reveal(), "hook"},
		{"redacted url with keys", cfg.Cameras[1].RedactedURL(), "rtsps://viewer:***@192.0.2.31/live"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	u, p := cfg.Cameras[1].Credentials()
	if u != "viewer" || p != "gatepw" {
		t.Errorf("Credentials = %q, %q", u, p)
	}
}

func TestCredentialKeysWinOverURL(t *testing.T) {
	cameras := "cameras:\n  - id: c\n    url: rtsp://old:oldpw@192.0.2.1/s\n    password: newpw\n    name: c\n"
	cfg, err := loadIn(t, baseVigil, cameras, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	u, p := cfg.Cameras[0].Credentials()
	if u != "old" || p != "newpw" {
		t.Errorf("Credentials = %q, %q; want old, newpw", u, p)
	}
}

func TestMergeKeys(t *testing.T) {
	vigil := baseVigil + "  rules:\n    - &r {match: {type: motion}, severity: minor, cooldown: 5s}\n    - {<<: *r, match: {type: tamper}}\n"
	cfg, err := loadIn(t, vigil, baseCameras, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Alerts.Rules[1]; r.Match.Type != "tamper" || r.Cooldown != 5*time.Second || r.Severity != Minor {
		t.Errorf("merged rule = %+v", r)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := LoadEnv(filepath.Join(t.TempDir(), "nope.yaml"), noEnv)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

func TestMinimalFilesGiveDefaults(t *testing.T) {
	cfg, err := loadIn(t, "# defaults throughout\nlisten: 127.0.0.1:8080\n", "cameras: []\n", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if cfg.Storage.Segment != d.Storage.Segment || len(cfg.Cameras) != 0 || len(cfg.Alerts.Rules) != 1 {
		t.Errorf("minimal files: %+v", cfg)
	}
	if h, _ := os.Hostname(); cfg.NodeID != NodeIDFromHost(h) && (NodeIDFromHost(h) != "" || cfg.NodeID != "vigil") {
		t.Errorf("node id %q, not made from the host name %q", cfg.NodeID, h)
	}
	if !ValidID(cfg.NodeID) {
		t.Errorf("node id %q made from the host name is not a valid node id", cfg.NodeID)
	}
}

// A node without node.id takes its ID from the host name, made valid; a
// host name that gives none leaves the admin to set node.id.
func TestNodeIDFromHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"town-1", "town-1"},
		{"Town-1", "town-1"},
		{"Town_1.lan", "town-1-lan"},
		{"vigil.village-3.example", "vigil-village-3-example"},
		{"--a..b--", "a-b"},
		{"节点", ""},
		{"", ""},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{strings.Repeat("a", 64), ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			if got := NodeIDFromHost(tc.host); got != tc.want {
				t.Fatalf("%q, want %q", got, tc.want)
			}
		})
	}
}

// An empty file (": > cameras.yaml" on a running node) must never read as
// "no cameras" or "no tokens"; a registry without cameras says cameras: [].
func TestEmptyFilesAreErrors(t *testing.T) {
	const empty = "the file is empty; write the settings it should hold (an empty file is never a valid configuration)"
	tests := []struct {
		name, vigil, cameras string
		want                 []string
	}{
		{"empty vigil.yaml", "", "cameras: []\n", []string{"vigil.yaml:1:1: " + empty}},
		{"whitespace vigil.yaml", " \n\t\n\n", "cameras: []\n", []string{"vigil.yaml:1:1: " + empty}},
		{"comments only", "# nothing\n", "cameras: []\n", []string{"vigil.yaml:1:1: " + empty}},
		{"empty cameras.yaml", baseVigil, "", []string{"cameras.yaml:1:1: " + empty}},
		{"whitespace cameras.yaml", baseVigil, "\n   \n", []string{"cameras.yaml:1:1: " + empty}},
		{"null document", baseVigil, "~\n", []string{"cameras.yaml:1:1: " + empty}},
		{"registry without cameras key", baseVigil, "# cameras: none yet\nother: 1\n",
			[]string{"cameras.yaml:2:1: cameras: required (write cameras: [] to run without cameras)",
				"cameras.yaml:2:1: other: unknown key"}},
		{"cameras without value", baseVigil, "cameras:\n",
			[]string{"cameras.yaml:1:1: cameras: has no value (write cameras: [] to run without cameras)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadIn(t, tt.vigil, tt.cameras, noEnv)
			if cfg != nil || err == nil {
				t.Fatalf("Load = %v, %v; want an error", cfg, err)
			}
			if got := errorLines(err); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	_, err := loadIn(t, "", "cameras: []\n", noEnv)
	if !errors.Is(err, ErrEmptyFile) {
		t.Errorf("err = %v, want ErrEmptyFile", err)
	}
}

// The rules and the registry are checked against each other: a rule that
// names a site or camera the registry lacks never fires.
func TestLoadMeaningErrors(t *testing.T) {
	const cams = "cameras:\n" +
		"  - {id: mediation-room, name: 调解室, site: hall, url: rtsp://192.0.2.1/s}\n" +
		"  - {id: key-site-gate, name: 大门, site: key-site, url: rtsp://192.0.2.2/s}\n"
	const units = "alerts:\n  units: [{id: police, name: 派出所}, {id: zongzhi, name: 综治办}, {id: sifa, name: 司法所}]\n  rules:\n"
	tests := []struct {
		name, rules, cameras string
		want                 []string
	}{
		{"site typo", "    - {match: {type: intrusion, site: keysite}, severity: critical}\n", cams,
			[]string{`vigil.yaml:4:39: alerts.rules[0].match.site: no camera has site "keysite" (did you mean key-site?)`}},
		{"site far from any", "    - {match: {site: village}, severity: critical}\n", cams,
			[]string{`vigil.yaml:4:22: alerts.rules[0].match.site: no camera has site "village" (sites: hall, key-site)`}},
		{"camera typo", "    - {match: {type: io_alarm, camera: mediation-rom}, severity: major}\n", cams,
			[]string{`vigil.yaml:4:40: alerts.rules[0].match.camera: unknown camera "mediation-rom" (did you mean mediation-room?)`}},
		{"camera unknown", "    - {match: {camera: gate-2x}, severity: major}\n", cams,
			[]string{`vigil.yaml:4:24: alerts.rules[0].match.camera: unknown camera "gate-2x" (cameras: mediation-room, key-site-gate)`}},
		{"dispatch to a unit's name", "    - {match: {}, severity: major, dispatch_to: 司法所}\n", cams,
			[]string{`vigil.yaml:4:49: alerts.rules[0].dispatch_to: unknown unit "司法所" (did you mean sifa? valid unit ids: police, zongzhi, sifa)`}},
		{"dispatch to nothing near", "    - {match: {}, severity: major, dispatch_to: army}\n", cams,
			[]string{`vigil.yaml:4:49: alerts.rules[0].dispatch_to: unknown unit "army" (valid unit ids: police, zongzhi, sifa)`}},
		{"camera without name", "    - {match: {}, severity: minor}\n", "cameras:\n  - id: cam-1\n    url: rtsp://192.0.2.1/s\n",
			[]string{`cameras.yaml:2:5: cameras[0].name: required (the name the desk shows, like 服务大厅入口)`}},
		{"camera with empty name", "    - {match: {}, severity: minor}\n", "cameras:\n  - id: cam-1\n    name: \"\"\n    url: rtsp://192.0.2.1/s\n",
			[]string{`cameras.yaml:2:5: cameras[0].name: required (the name the desk shows, like 服务大厅入口)`}},
		{"no cameras: nothing to hold rules against", "    - {match: {site: key-site}, severity: minor}\n", "cameras: []\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIn(t, units+tt.rules, tt.cameras, noEnv)
			if got := errorLines(err); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadWarnsOfCamerasOnlyCatchAllRulesMatch(t *testing.T) {
	const rules = "alerts:\n  units: [{id: police}]\n  rules:\n" +
		"    - {match: {type: intrusion, site: key-site}, severity: critical, dispatch_to: police}\n" +
		"    - {match: {type: io_alarm, camera: mediation-room}, severity: major}\n" +
		"    - {match: {}, severity: minor}\n"
	tests := []struct {
		name, vigil, cameras string
		want                 []string
	}{
		{"site typo on the camera", rules, "cameras:\n" +
			"  - {id: key-site-gate, name: 大门, site: key-site, url: rtsp://192.0.2.2/s}\n" +
			"  - {id: mediation-room, name: 调解室, site: hall, url: rtsp://192.0.2.1/s}\n" +
			"  - {id: gate-2, name: 二门, site: keysite, url: rtsp://192.0.2.3/s}\n" +
			"  - {id: lobby, name: 大厅, url: rtsp://192.0.2.4/s}\n",
			[]string{
				`cameras.yaml:4:34: cameras[2].site: warning: no alert rule names site "keysite" or camera gate-2; only catch-all rules apply to it (did you mean key-site?)`,
				`cameras.yaml:5:5: cameras[3]: warning: camera lobby has no site and no alert rule names it; only catch-all rules apply to it`,
			}},
		{"only catch-all rules: no warning", "alerts:\n  rules:\n    - {match: {type: tamper}, severity: major}\n",
			"cameras:\n  - {id: lobby, name: 大厅, site: hall, url: rtsp://192.0.2.4/s}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadIn(t, tt.vigil, tt.cameras, noEnv)
			if err != nil {
				t.Fatalf("a warning stopped the load: %v", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// Syntax errors point at the line and column where the problem is, not at
// the start of the block around it (the parser's line).
func TestLoadSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		name, vigil string
		want        string
	}{
		{"bad indent", "alerts:\n  units:\n    - {id: police}\n  rules:\n    - {match: {}, severity: minor}\n   - {match: {}, severity: major}\n",
			"vigil.yaml:6:4: yaml: did not find expected key"},
		{"bad indent in a mapping", "storage:\n  dir: ./x\n  segment: 60s\n   part: 1s\n",
			"vigil.yaml:4:4: yaml: mapping values are not allowed in this context"},
		{"tab", "storage:\n  dir: ./x\n  segment: 60s\n\tpart: 1s\n",
			"vigil.yaml:4:1: yaml: found a tab character that violates indentation"},
		{"after a flow list over two lines", "alerts:\n  units: [{id: police},\n    {id: sifa}]\nstorage:\n  dir: ./x\n   part: 1s\n",
			"vigil.yaml:6:4: yaml: mapping values are not allowed in this context"},
		{"tab after spaces", "log:\n  format: text\n  \tlevel: info\n",
			"vigil.yaml:3:3: yaml: found a tab character that violates indentation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIn(t, tt.vigil, baseCameras, noEnv)
			if got := strings.Join(errorLines(err), "\n"); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseDurationAndSize(t *testing.T) {
	durs := map[string]time.Duration{"0": 0, "30d": 720 * time.Hour, "90s": 90 * time.Second, "1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range durs {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1s", "-3d", "10", "1.5d", "d", "3d-1h", "9999999999999d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
	sizes := map[string]int64{"0": 0, "1024": 1024, "2GiB": 2 << 30, "500MB": 500e6, "1 KiB": 1024, "7B": 7}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "GiB", "2gib", "1.5GiB", "99999999999TiB", "+5"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

func TestDiff(t *testing.T) {
	cam := func(id, name string) Camera {
		c := defaultCamera()
		c.ID, c.Name, c.URL = id, name, "rtsp://192.0.2.1/"+id
		return c
	}
	old := &Config{Cameras: []Camera{cam("a", "A"), cam("b", "B"), cam("c", "C")}}
	pw := cam("c", "C")
	pw.Password = "new"
	new := &Config{Cameras: []Camera{cam("b", "B2"), pw, cam("d", "D"), cam("a", "A")}}
	added, removed, changed := Diff(old, new)
	if strings.Join(added, ",") != "d" || len(removed) != 0 || strings.Join(changed, ",") != "b,c" {
		t.Errorf("Diff = %v %v %v", added, removed, changed)
	}
	added, removed, changed = Diff(new, &Config{})
	if len(added) != 0 || strings.Join(removed, ",") != "a,b,c,d" || len(changed) != 0 {
		t.Errorf("Diff to empty = %v %v %v", added, removed, changed)
	}
}

// A tab put in front of any key line of the shipped files is reported at
// that line, column 1, not at the start of the block around it.
func TestShippedFilesTabAtEveryLine(t *testing.T) {
	for _, name := range []string{"vigil.yaml", "cameras.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			trimmed := strings.TrimLeft(l, " ")
			if trimmed == "" || strings.HasPrefix(trimmed, "#") || !strings.Contains(trimmed, ":") {
				continue
			}
			bad := append([]string(nil), lines...)
			bad[i] = "\t" + trimmed
			var errs []*Error
			d := &decoder{file: name, getenv: noEnv, errs: &errs}
			d.parseFile([]byte(strings.Join(bad, "\n")))
			if len(errs) != 1 || errs[0].Line != i+1 || errs[0].Column != 1 {
				t.Errorf("%s: tab on line %d reported as %v", name, i+1, errs)
			}
		}
	}
}

// The cluster keys: a camera's zone and the nodes' shared token.
func TestClusterKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("vigil.yaml", "node: {zone: town}\ncluster: {token: s3cret-token}\ncameras_file: cameras.yaml\n")
	write("cameras.yaml", "cameras:\n  - {id: gate, name: Gate, url: \"rtsp://127.0.0.1:8554/gate\", zone: village-3}\n  - {id: hall, name: Hall, url: \"rtsp://127.0.0.1:8554/hall\"}\n")
	cfg, err := Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Token.Reveal() != "s3cret-token" || cfg.Node.Zone != "town" {
		t.Errorf("cluster token %q, node zone %q", cfg.Cluster.Token.Reveal(), cfg.Node.Zone)
	}
	if g, _ := cfg.Camera("gate"); g.Zone != "village-3" {
		t.Errorf("gate zone %q", g.Zone)
	}
	if h, _ := cfg.Camera("hall"); h.Zone != "" {
		t.Errorf("hall zone %q, want any", h.Zone)
	}
}
