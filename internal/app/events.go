package app

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigil/alerts"
	"vigil/alerts/pull"
	"vigil/alerts/vendor"
	"vigil/configs"
	"vigil/ingest"
	"vigil/internal/httpx"
)

// eventSources connects the vendor event sources to the engine: it routes
// pushed and pulled events (NVR channels, events.map and events.ignore,
// Dahua Stops without a rule) and runs one pull subscription per camera or
// device that asks for one, following reloads.
type eventSources struct {
	a       *App
	up      *prometheus.GaugeVec
	unknown *prometheus.CounterVec
	stops   vendor.DahuaStops
	changes chan *configs.Config // latest configuration for Run; buffer 1

	mu       sync.Mutex
	channels map[string]*vendor.Channels // device → its router, kept for "log once"
	health   map[string]pull.Health      // camera → its event stream's health
	labels   map[string]string           // camera → source label of its gauge
}

func newEventSources(a *App) *eventSources {
	return &eventSources{
		a: a,
		up: promauto.With(a.metrics).NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_event_stream_up",
			Help: "1 while a camera's event pull subscription (ONVIF PullPoint, Hikvision alertStream, Dahua attach) is connected, else 0.",
		}, []string{"camera", "source"}),
		unknown: promauto.With(a.metrics).NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_event_unknown_channel_total",
			Help: "Events from a device for a channel its channels: mapping does not name; dropped.",
		}, []string{"device"}),
		changes:  make(chan *configs.Config, 1),
		channels: map[string]*vendor.Channels{},
		health:   map[string]pull.Health{},
		labels:   map[string]string{},
	}
}

// streamSpec is one pull subscription the configuration asks for.
type streamSpec struct {
	name    string // camera or device ID the events come in under
	kind    pull.Kind
	url     string
	user    string
	pass    string
	cameras []string // cameras whose health it is
	// authRetry is the pause after 3 refused logins: the camera's
	// auth_retry, or the default for a device.
	authRetry time.Duration
}

// streamSpecs lists the subscriptions of cfg by name that this node runs:
// a camera's when holds says it has the camera, a device's (an NVR's
// channels) when it has the first of the device's cameras.
func streamSpecs(cfg *configs.Config, holds func(string) bool) map[string]streamSpec {
	specs := map[string]streamSpec{}
	claimed := map[string]bool{}
	for _, d := range cfg.Devices {
		var cams []string
		for _, c := range d.Channels {
			claimed[c] = true
			cams = append(cams, c)
		}
		if !d.Stream {
			continue
		}
		sort.Strings(cams)
		if len(cams) > 0 && !holds(cams[0]) {
			continue
		}
		specs[d.ID] = streamSpec{name: d.ID, kind: pull.Kind(d.Kind), url: d.URL, user: d.Username, pass: d.Password.Reveal(), cameras: cams,
			authRetry: configs.DefaultAuthRetry}
	}
	for _, c := range cfg.Cameras {
		kind := c.Events.Pull()
		if kind == "" || !c.Enabled || claimed[c.ID] || !holds(c.ID) {
			continue
		}
		specs[c.ID] = streamSpec{name: c.ID, kind: pull.Kind(kind), url: eventURL(c), user: c.Username, pass: c.Password.Reveal(), cameras: []string{c.ID},
			authRetry: c.AuthRetry}
	}
	return specs
}

// eventURL is where a camera's pull subscription connects: onvif_url or
// url, else the RTSP host on port 80 (ONVIF: its device service path).
func eventURL(c configs.Camera) string {
	if c.Events.Pull() == configs.PullONVIF && c.Events.ONVIFURL != "" {
		return c.Events.ONVIFURL
	}
	if c.Events.Pull() != configs.PullONVIF && c.Events.URL != "" {
		return c.Events.URL
	}
	host := ""
	if u, err := url.Parse(c.URL); err == nil {
		host = u.Hostname()
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	base := "http://" + host
	if c.Events.Pull() == configs.PullONVIF {
		return base + "/onvif/device_service"
	}
	return base
}

// apply hands a reloaded configuration to Run.
func (s *eventSources) apply(cfg *configs.Config) {
	select {
	case <-s.changes: // drop an older one Run has not taken yet
	default:
	}
	s.changes <- cfg
}

// running is a started subscription.
type running struct {
	spec   streamSpec
	cancel context.CancelFunc
	done   chan struct{}
}

// Run holds the subscriptions of the running configuration until ctx ends:
// added ones start, removed ones stop, changed ones restart.
func (s *eventSources) Run(ctx context.Context) error {
	live := map[string]*running{}
	defer func() {
		// All at once: each ONVIF subscription may take a moment to
		// unsubscribe.
		for _, r := range live {
			r.cancel()
		}
		for _, r := range live {
			s.stop(r)
		}
	}()
	cfg := s.a.config()
	for {
		want := streamSpecs(cfg, s.a.holds)
		for name, r := range live {
			if w, ok := want[name]; !ok || !reflect.DeepEqual(w, r.spec) {
				s.stop(r)
				delete(live, name)
			}
		}
		for name, spec := range want {
			if _, ok := live[name]; ok {
				continue
			}
			r, err := s.start(ctx, spec)
			if err != nil {
				s.a.log.Error("event stream not started", "component", "event-stream", "camera", name, "err", err)
				continue
			}
			live[name] = r
		}
		select {
		case <-ctx.Done():
			return nil
		case cfg = <-s.changes:
		}
	}
}

func (s *eventSources) start(ctx context.Context, spec streamSpec) (*running, error) {
	s.mu.Lock()
	for _, cam := range spec.cameras {
		s.labels[cam] = string(spec.kind)
		s.up.WithLabelValues(cam, string(spec.kind)).Set(0)
	}
	s.mu.Unlock()
	c, err := pull.New(pull.Options{
		Kind: spec.kind, Name: spec.name, URL: spec.url, Username: spec.user, Password: spec.pass,
		Events: func(evs []alerts.Event) { s.submit(spec.name, evs) },
		Rejected: func(r []alerts.RejectedRecord) {
			s.a.log.Warn("event stream records rejected", "component", "event-stream", "camera", spec.name, "rejected", len(r), "first", r[0].Error)
		},
		OnHealth:  func(h pull.Health) { s.setHealth(spec, h) },
		AuthRetry: spec.authRetry,
		Logger:    s.a.log,
	})
	if err != nil {
		return nil, err
	}
	s.setHealth(spec, c.Health())
	rctx, cancel := context.WithCancel(ctx)
	r := &running{spec: spec, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = c.Run(rctx) // returns nil when rctx ends; failures are in its health
	}()
	return r, nil
}

func (s *eventSources) stop(r *running) {
	r.cancel()
	<-r.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cam := range r.spec.cameras {
		s.up.DeleteLabelValues(cam, string(r.spec.kind))
		delete(s.health, cam)
		delete(s.labels, cam)
	}
}

func (s *eventSources) setHealth(spec streamSpec, h pull.Health) {
	v := 0.0
	if h.Status == pull.Up {
		v = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cam := range spec.cameras {
		s.health[cam] = h
		s.up.WithLabelValues(cam, string(spec.kind)).Set(v)
	}
}

// cameraHealth is the health of a camera's event stream; nil without one.
func (s *eventSources) cameraHealth(camera string) *pull.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.health[camera]
	if !ok {
		return nil
	}
	return &h
}

// submit routes a pulled payload's events and hands them to the engine,
// which never waits (as for ONVIF metadata).
func (s *eventSources) submit(name string, evs []alerts.Event) {
	for _, ev := range s.route(name, evs) {
		if err := s.a.engine.Submit(ev); err != nil {
			s.a.log.Warn("camera event dropped", "component", "event-stream", "camera", ev.Camera, "err", err)
		}
	}
}

// route applies to the events of one camera or device what the
// configuration says of it: a device's channels pick the camera (unknown
// channels are counted and logged once per channel), events.map and
// events.ignore map and drop vendor topics, and a Dahua Stop without a
// rule ends each active rule of its code and index.
func (s *eventSources) route(name string, evs []alerts.Event) []alerts.Event {
	if len(evs) == 0 {
		return evs
	}
	cfg := s.a.config()
	if dev, ok := cfg.Device(name); ok {
		evs = s.deviceChannels(dev).Route(evs)
		evs = mapping(dev.Map, dev.Ignore).Apply(evs)
	} else if cam, ok := cfg.Camera(name); ok {
		evs = mapping(cam.Events.Map, cam.Events.Ignore).Apply(evs)
	} else {
		evs = vendor.Mapping{}.Apply(evs)
	}
	return s.stops.Expand(evs)
}

func (s *eventSources) deviceChannels(dev configs.Device) *vendor.Channels {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.channels[dev.ID]; ok && reflect.DeepEqual(ch.ByChannel, dev.Channels) {
		return ch
	}
	ch := &vendor.Channels{Device: dev.ID, ByChannel: dev.Channels, OnUnknown: func(channel string, first bool) {
		s.unknown.WithLabelValues(dev.ID).Inc()
		if first {
			s.a.log.Warn("device event for a channel not in its channels: mapping; dropped (logged once per channel, counted in vigil_event_unknown_channel_total)",
				"component", "event-stream", "device", dev.ID, "channel", channel)
		}
	}}
	s.channels[dev.ID] = ch
	return ch
}

func mapping(m map[string]string, ignore []string) vendor.Mapping {
	out := vendor.Mapping{Ignore: ignore}
	if len(m) > 0 {
		out.Map = make(map[string]alerts.Type, len(m))
		for k, v := range m {
			out.Map[k] = alerts.Type(v)
		}
	}
	return out
}

// cameraView is a camera's status in the API: ingest's, with its event
// stream's health (null without a pull subscription).
type cameraView struct {
	ingest.CameraStatus
	Events *pull.Health `json:"events"`
	// Node is the cluster node that holds the camera and gives its status
	// (camerastatus.go); Unreachable marks a holder that did not answer,
	// whose camera shows as this node knows it. Absent on a single node.
	Node        string `json:"node,omitempty"`
	Unreachable bool   `json:"unreachable,omitempty"`
}

// serveCameras answers GET /api/v1/cameras: in a cluster, each camera as
// its holder sees it (another node's request gets this node's own view).
func (a *App) serveCameras(w http.ResponseWriter, r *http.Request) {
	sts := a.streams.Statuses()
	out := make([]cameraView, 0, len(sts))
	for _, st := range sts {
		out = append(out, cameraView{CameraStatus: st, Events: a.events.cameraHealth(st.ID)})
	}
	if a.peers != nil && a.nodes != nil && !a.fromPeer(r) {
		a.withHoldersStatus(r.Context(), out)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]cameraView{"cameras": out})
}

// serveCamera answers GET /api/v1/cameras/{id}; ingest judges the ID. In
// a cluster the camera shows as its holder sees it, as in the list
// (another node's request gets this node's own view).
func (a *App) serveCamera(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ingest.ValidID(id) {
		a.streams.ServeCamera(w, r) // its 400
		return
	}
	st, err := a.streams.Status(id)
	if err != nil {
		a.streams.ServeCamera(w, r) // its 404
		return
	}
	v := cameraView{CameraStatus: st, Events: a.events.cameraHealth(id)}
	if a.peers != nil && a.nodes != nil && !a.fromPeer(r) {
		a.withHolderStatus(r.Context(), &v)
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}
