// Package configs owns Vigil's configuration: the service file (vigil.yaml)
// and the camera registry it names (cameras.yaml). It loads both with the
// yaml.v3 node API so that every problem is reported as
// "file:line:col: path: message", validates them completely (all errors at
// once, joined with errors.Join), expands ${NAME} from the environment, keeps
// secrets out of every printed, logged or marshalled form, and watches the
// files for changes, handing on only configurations that validate.
//
// It does not start, stop or wire anything: the app decides what a change
// means, using Diff to tell which cameras were added, removed or changed.
package configs

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"time"

	// The time zone database is embedded so that "timezone: Asia/Shanghai"
	// validates on a machine without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Config is a loaded and validated configuration. Durations are parsed,
// sizes are bytes, relative paths are resolved against the directory of
// vigil.yaml. A Config handed out by Load or a Watcher must not be modified.
type Config struct {
	// Path is the vigil.yaml path as given to Load.
	Path string `json:"path"`

	Listen string `json:"listen"`
	HTTP   HTTP   `json:"http"`
	// NodeID names this node in a multi-node deployment; the host name when
	// not set. node.id sets it too (node_id is its older spelling).
	NodeID string `json:"node_id"`
	// Node says where this node stands in a cluster (Redis journal only).
	Node Node `json:"node"`
	// Cluster holds what the nodes of a cluster share.
	Cluster Cluster `json:"cluster"`
	// Timezone is the zone name as written; Location is that zone, used for
	// day boundaries in stats and times shown by the CLI.
	Timezone string         `json:"timezone"`
	Location *time.Location `json:"-"`

	Log           Log       `json:"log"`
	Storage       Storage   `json:"storage"`
	Journal       Journal   `json:"journal"`
	Auth          Auth      `json:"auth"`
	MetricsPublic bool      `json:"metrics_public"`
	Ingest        Ingest    `json:"ingest"`
	Export        Export    `json:"export"`
	Alerts        Alerts    `json:"alerts"`
	Live          Live      `json:"live"`
	Snapshots     Snapshots `json:"snapshots"`
	Notify        Notify    `json:"notify"`

	// CamerasFile is the camera registry path as written in vigil.yaml;
	// CamerasPath is where it was read from (joined with vigil.yaml's
	// directory when relative).
	CamerasFile string   `json:"cameras_file"`
	CamerasPath string   `json:"-"`
	Cameras     []Camera `json:"cameras"`
	Devices     []Device `json:"devices"`

	// Warnings are problems that do not stop the configuration from
	// loading, such as a camera only catch-all rules match; check-config
	// prints them, the service logs them.
	Warnings []*Error `json:"-"`

	// Sites give the sites that cameras name their display names
	// (公共服务大厅 for hall). A site without an entry shows its ID.
	Sites []Site `json:"sites"`
}

// HTTP bounds the API server's connections. It is read at start; a
// reload does not change it.
type HTTP struct {
	// MaxConns caps the connections open at once; a quarter of it (at
	// least 1) may be unauthenticated.
	MaxConns int64 `json:"max_conns"`
}

// Site is the display name of a site label used by cameras and rules.
type Site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Log configures the service's log output.
type Log struct {
	// Format is "text" or "json".
	Format string     `json:"format"`
	Level  slog.Level `json:"level"`
}

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// Storage configures recording.
type Storage struct {
	Dir     string        `json:"dir"`
	Segment time.Duration `json:"segment"`
	Part    time.Duration `json:"part"`
	// Retain is the age after which segments are deleted; 0 keeps them
	// until space runs out. A camera's own Retain overrides it.
	Retain time.Duration `json:"retain"`
	// MaxBytes caps the recordings' total size; 0 means no cap.
	MaxBytes     int64 `json:"max_bytes"`
	MinFreeBytes int64 `json:"min_free_bytes"`
	Fsync        Fsync `json:"fsync"`
	// VerifyEvery is how often the background verifier starts a pass
	// re-hashing every closed segment against its index.
	VerifyEvery time.Duration `json:"verify_every"`
	// VerifyRate caps the verifier's reading in bytes per second; 0 means
	// no cap.
	VerifyRate int64 `json:"verify_rate"`
}

// Fsync says when the recorder syncs segment files to disk.
type Fsync string

// Fsync policies.
const (
	FsyncPart    Fsync = "part"
	FsyncSegment Fsync = "segment"
	FsyncNever   Fsync = "never"
)

// Journal selects and configures the alert journal.
type Journal struct {
	Backend string `json:"backend"`
	// Path is the embedded journal's file.
	Path  string `json:"path"`
	Redis Redis  `json:"redis"`
}

// Journal backends.
const (
	BackendEmbedded = "embedded"
	BackendRedis    = "redis"
)

// Redis configures the Redis journal.
type Redis struct {
	Addr         string `json:"addr"`
	Username     string `json:"username"`
	Password     Secret `json:"password"`
	DB           int    `json:"db"`
	TLS          bool   `json:"tls"`
	StreamMaxLen int64  `json:"stream_max_len"`
}

// Auth holds the API tokens.
type Auth struct {
	Tokens []Token `json:"tokens"`
}

// Role is what a token may do.
type Role string

// Roles (the design contract's "HTTP API").
const (
	RoleDesk         Role = "desk"
	RoleInvestigator Role = "investigator"
	RoleAdmin        Role = "admin"
)

// Token is one API token. Only its SHA-256 is kept, whether the file gave
// the hash or the token itself.
type Token struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	Hash Digest `json:"-"`
}

// Digest is a SHA-256 sum.
type Digest [sha256.Size]byte

// Matches reports, in constant time, whether secret is this token.
func (t Token) Matches(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], t.Hash[:]) == 1
}

// Ingest configures the RTSP side.
type Ingest struct {
	// OfflineAfter is how long a camera may go without a frame before it is
	// reported offline.
	OfflineAfter time.Duration `json:"offline_after"`
}

// Export configures exports.
type Export struct {
	// MaxRange is the longest time range one export may cover.
	MaxRange time.Duration `json:"max_range"`
}

// Live configures the WebRTC (WHEP) live view.
type Live struct {
	// UDPPort is the one UDP port every viewer's media uses (ICE host
	// candidates through one mux), bound on the host of Listen; 0 picks a
	// free port (tests).
	UDPPort int `json:"udp_port"`
	// MaxViewers caps the live viewers of this node; more get 503.
	MaxViewers int `json:"max_viewers"`
	// ICEServers are STUN/TURN servers given to pion, for nodes behind NAT.
	ICEServers []ICEServer `json:"ice_servers"`
	// NATIPs are the public addresses of this node announced as host
	// candidates instead of its own (1:1 NAT).
	NATIPs []string `json:"nat_ips"`
}

// ICEServer is one STUN or TURN server.
type ICEServer struct {
	URL        string `json:"url"`
	Username   string `json:"username"`
	Credential Secret `json:"credential"`
}

// Snapshots configures JPEG snapshots.
type Snapshots struct {
	// FFmpeg is the ffmpeg binary: a path, or a name looked up on PATH.
	FFmpeg string `json:"ffmpeg"`
	// Width is the width of snapshots in pixels; the height keeps the
	// aspect ratio.
	Width int `json:"width"`
}

// Alerts configures alert handling.
type Alerts struct {
	PreRoll          time.Duration `json:"pre_roll"`
	PostRoll         time.Duration `json:"post_roll"`
	HoldAfterResolve time.Duration `json:"hold_after_resolve"`
	StaleAfter       time.Duration `json:"stale_after"`
	// MaxEventAge: an event's own time is used as raised_at when it lies
	// no further than this before its receipt.
	MaxEventAge time.Duration `json:"max_event_age"`
	Units       []Unit        `json:"units"`
	// Rules are tried in order; the first match wins.
	Rules []Rule `json:"rules"`
}

// Unit is a responsible unit alerts are dispatched to.
type Unit struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Severity of an alert.
type Severity string

// Severities, most severe first.
const (
	Critical Severity = "critical"
	Major    Severity = "major"
	Minor    Severity = "minor"
)

// Rule maps matching events to a severity, deadlines and a unit.
type Rule struct {
	Match    Match    `json:"match"`
	Severity Severity `json:"severity"`
	// AckWithin and ResolveWithin set the alert's deadlines; 0 means none.
	AckWithin     time.Duration `json:"ack_within"`
	ResolveWithin time.Duration `json:"resolve_within"`
	// DispatchTo is a unit ID suggested for dispatch, or "".
	DispatchTo string        `json:"dispatch_to"`
	Cooldown   time.Duration `json:"cooldown"`
	// EscalateTo names notify receivers an overdue alert is escalated to
	// (督办); EscalateAfter is the pause before each further escalation
	// while it stays overdue, 0: the rule's resolve_within.
	EscalateTo    []string      `json:"escalate_to"`
	EscalateAfter time.Duration `json:"escalate_after"`
}

// Match selects events; an empty field matches anything.
type Match struct {
	Type   string `json:"type"`
	Site   string `json:"site"`
	Camera string `json:"camera"`
	Grid   string `json:"grid"`
}

// EventTypes returns the normalized event types a rule may match
// (the design contract's "Camera events → alerts"; the alerts package defines the same
// names, and configs does not import it).
func EventTypes() []string {
	return []string{
		"motion", "tamper", "video_loss", "line_crossing", "intrusion", "io_alarm",
		"camera_offline", "recording_failure", "storage_full", "recording_tampered", "other",
	}
}

// Transport is the RTSP transport to use.
type Transport string

// Transports.
const (
	TransportAuto Transport = "auto"
	TransportTCP  Transport = "tcp"
	TransportUDP  Transport = "udp"
)

// Camera is one entry of the camera registry.
type Camera struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Site     string `json:"site"`
	Grid     string `json:"grid"`
	Location string `json:"location"`
	// URL is the stream URL without credentials (see StreamURL); credentials
	// written into the URL in the file are moved to Username and Password.
	URL string `json:"url"`
	// Username and Password merge the url's userinfo with the username and
	// password keys; the keys win where both are given.
	Username  string    `json:"username"`
	Password  Secret    `json:"password"`
	Transport Transport `json:"transport"`
	Enabled   bool      `json:"enabled"`
	Record    bool      `json:"record"`
	// Retain overrides Storage.Retain when not 0; see Config.Retention.
	Retain time.Duration `json:"retain"`
	// AuthRetry is the pause between tries once the camera refused the
	// credentials 3 times in a row: real cameras lock the account after a
	// few failures.
	AuthRetry time.Duration `json:"auth_retry"`
	Events    CameraEvents  `json:"events"`
	// Zone says which cluster nodes may record the camera: those whose
	// node.zone is the same. "" lets any node record it.
	Zone string `json:"zone"`
}

// DefaultAuthRetry is a camera's auth_retry when the file leaves it out.
const DefaultAuthRetry = 5 * time.Minute

// CameraEvents configures a camera's event sources.
type CameraEvents struct {
	ONVIFMetadata bool `json:"onvif_metadata"`
	// WebhookSecret enables the push endpoints when not empty.
	WebhookSecret Secret `json:"webhook_secret"`
	// At most one pull subscription: Vigil connects to the camera and
	// holds the subscription (see EventPull).
	ONVIFPullPoint  bool `json:"onvif_pullpoint"`
	HikvisionStream bool `json:"hikvision_stream"`
	DahuaStream     bool `json:"dahua_stream"`
	// ONVIFURL is the device service URL; empty: http://HOST/onvif/device_service
	// with HOST the RTSP URL's host name.
	ONVIFURL string `json:"onvif_url"`
	// URL is the camera's HTTP base URL for hikvision_stream and
	// dahua_stream; empty: http://HOST (port 80).
	URL string `json:"url"`
	// Map maps a vendor topic or code to a normalized type; Ignore drops
	// topics or codes.
	Map    map[string]string `json:"map"`
	Ignore []string          `json:"ignore"`
}

// EventPull names a camera's or device's pull subscription kind.
type EventPull string

// Pull subscription kinds; also the source label of the event stream.
const (
	PullONVIF     EventPull = "onvif"
	PullHikvision EventPull = "hikvision"
	PullDahua     EventPull = "dahua"
)

// Pull returns the camera's pull subscription kind, "" for none.
func (e CameraEvents) Pull() EventPull {
	switch {
	case e.ONVIFPullPoint:
		return PullONVIF
	case e.HikvisionStream:
		return PullHikvision
	case e.DahuaStream:
		return PullDahua
	}
	return ""
}

// Device is an NVR (or any device reporting for many channels): one pull
// connection or webhook for the events of the cameras its channels map to.
type Device struct {
	ID   string    `json:"id"`
	Kind EventPull `json:"kind"`
	// URL is the device's HTTP base URL (http or https), for ONVIF its
	// device service URL or base URL.
	URL      string `json:"url"`
	Username string `json:"username"`
	Password Secret `json:"password"`
	// Stream: Vigil pulls the device's events (default true); false with
	// a webhook_secret takes pushes only.
	Stream        bool   `json:"stream"`
	WebhookSecret Secret `json:"webhook_secret"`
	// Channels maps a channel as the device names it in its events
	// (Hikvision channelID/dynChannelID, Dahua index, ONVIF video source
	// token) to a camera ID.
	Channels map[string]string `json:"channels"`
	Map      map[string]string `json:"map"`
	Ignore   []string          `json:"ignore"`
}

// Device returns the device with the given ID.
func (c *Config) Device(id string) (Device, bool) {
	for _, d := range c.Devices {
		if d.ID == id {
			return d, true
		}
	}
	return Device{}, false
}

// Default returns the configuration used for every key a file leaves out.
// It has no cameras, units or tokens; its one rule makes every event a minor
// alert.
func Default() *Config {
	return &Config{
		Listen:   "127.0.0.1:8080",
		HTTP:     HTTP{MaxConns: 512},
		Timezone: "Asia/Shanghai",
		Log:      Log{Format: LogText, Level: slog.LevelInfo},
		Storage: Storage{
			Dir:          "./data/recordings",
			Segment:      60 * time.Second,
			Part:         time.Second,
			Retain:       30 * 24 * time.Hour,
			MaxBytes:     0,
			MinFreeBytes: 2 << 30,
			Fsync:        FsyncPart,
			VerifyEvery:  24 * time.Hour,
			VerifyRate:   20_000_000,
		},
		Journal: Journal{
			Backend: BackendEmbedded,
			Path:    "./data/journal.db",
			Redis:   Redis{Addr: "127.0.0.1:6379", StreamMaxLen: 1_000_000},
		},
		Ingest:    Ingest{OfflineAfter: 30 * time.Second},
		Export:    Export{MaxRange: 2 * time.Hour},
		Live:      Live{UDPPort: 8189, MaxViewers: 32},
		Snapshots: Snapshots{FFmpeg: "ffmpeg", Width: 640},
		Alerts: Alerts{
			PreRoll:          10 * time.Second,
			PostRoll:         30 * time.Second,
			HoldAfterResolve: 90 * 24 * time.Hour,
			StaleAfter:       30 * time.Second,
			MaxEventAge:      5 * time.Minute,
			Rules: []Rule{
				{Severity: Minor, AckWithin: 15 * time.Minute, ResolveWithin: 24 * time.Hour, Cooldown: 60 * time.Second},
			},
		},
		Notify:      Notify{MaxAge: time.Hour, RatePerMinute: 20},
		CamerasFile: "cameras.yaml",
	}
}

// defaultCamera holds the defaults of a camera entry.
func defaultCamera() Camera {
	return Camera{Transport: TransportAuto, Enabled: true, Record: true, AuthRetry: DefaultAuthRetry, Events: CameraEvents{ONVIFMetadata: true}}
}

// Camera returns the camera with the given ID.
func (c *Config) Camera(id string) (Camera, bool) {
	for _, cam := range c.Cameras {
		if cam.ID == id {
			return cam, true
		}
	}
	return Camera{}, false
}

// Unit returns the unit with the given ID.
func (c *Config) Unit(id string) (Unit, bool) {
	for _, u := range c.Alerts.Units {
		if u.ID == id {
			return u, true
		}
	}
	return Unit{}, false
}

// Retention returns how long cam's recordings are kept: its own retain, or
// storage.retain.
func (c *Config) Retention(cam Camera) time.Duration {
	if cam.Retain != 0 {
		return cam.Retain
	}
	return c.Storage.Retain
}

// ReservedActor is the actor name of the changes the service makes itself
// (alerts.System). No token may carry it: a person's actions would be taken
// for the service's (spooled without a version check, left out of the
// acknowledgement statistics).
const ReservedActor = "system"

// Node places a node in a cluster: its zone (the site it records, such as
// town or village-3) and the URL the other nodes reach it at.
type Node struct {
	Zone         string `json:"zone"`
	AdvertiseURL string `json:"advertise_url"`
}

// Cluster is what the nodes of one cluster share: Token authenticates
// the requests one node makes to another (footage, snapshots and live
// view from any node).
type Cluster struct {
	Token Secret `json:"token"`
}
