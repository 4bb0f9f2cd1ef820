// Package app is the one place that wires Vigil together: configuration,
// ingest, recorder, alerts, journal, desk and the HTTP API. main, the
// end-to-end tests and bench all start the service through New/Run here.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/alerts/hooks"
	"vigil/alerts/stream"
	"vigil/cluster"
	"vigil/configs"
	"vigil/ingest"
	"vigil/internal/auth"
	"vigil/internal/httpx"
	"vigil/live"
	"vigil/notify"
	"vigil/recorder"
	"vigil/recorder/footageapi"
)

// Options configure an App.
type Options struct {
	// Config is the validated configuration (configs.Load).
	Config *configs.Config
	// Logger; default: built from Config.Log on stderr.
	Logger *slog.Logger
	// Getenv expands ${NAME} on reload; default os.LookupEnv.
	Getenv func(string) (string, bool)
	// Listen overrides Config.Listen (tests use 127.0.0.1:0).
	Listen string
	// ShutdownTimeout bounds graceful shutdown; default 5s.
	ShutdownTimeout time.Duration
	// LiveUDP overrides the live view's UDP address; default the host of
	// Listen with live.udp_port, or a free port when Listen's port is 0.
	LiveUDP string
	// BodyTimeout is how long a request body may take to arrive; default
	// 10s, three times that for camera webhooks (up to 1 MiB).
	BodyTimeout time.Duration
}

func (o *Options) validate() error {
	if o.Config == nil {
		return errors.New("app: no configuration")
	}
	if o.Logger == nil {
		o.Logger = NewLogger(os.Stderr, o.Config.Log)
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Listen == "" {
		o.Listen = o.Config.Listen
	}
	if o.LiveUDP == "" {
		o.LiveUDP = liveUDP(o.Listen, o.Config.Live.UDPPort)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	return nil
}

// App is a running Vigil node.
type App struct {
	opts     Options
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *namingRegisterer // registers in registry, remembering names
	auth     *auth.Authenticator
	watcher  *configs.Watcher
	listener net.Listener
	conns    *httpx.ConnLimit // wraps listener
	server   *http.Server

	nodeID     string
	recorder   *recorder.Recorder
	streams    *ingest.Streams
	footage    *footageapi.Server
	holdAPI    *footageapi.HoldServer // evidence holds by hand
	fileAudit  *recorder.FileAuditor
	auditSpool *auditSpool

	camMu    sync.Mutex        // guards recSubs and liveSubs
	recSubs  map[string]func() // camera → end of its recorder subscription
	liveSubs map[string]func() // camera → end of its live feed subscription

	feeds     *live.Feeds
	viewers   *live.Viewers
	snapshots *live.Snapshots
	// alertSnaps takes and serves the snapshots of raised alerts.
	alertSnaps *alertSnapshots
	// nodes registers this node in the cluster (Redis journal only; nil
	// on the embedded single node), over its own Redis client.
	nodes        *cluster.Registry
	clusterRedis *redis.Client
	// leases share the cameras out among the nodes (nil on the embedded
	// single node); held is what this node records of them.
	leases *cluster.Leases
	held   heldCameras

	// peers asks the other nodes for footage, snapshots and live view
	// (forward.go); nil on a single node or without cluster.token.
	peers *cluster.Peers
	// holders names each camera's holder, for live snapshots and WHEP:
	// the leases in a cluster with a token (forward.go), nil otherwise.
	holders HolderLookup

	metadataErrors *prometheus.CounterVec

	journal  alerts.Journal
	engine   *alerts.Engine
	alertAPI *alertsapi.Server
	hub      *stream.Hub
	hooks    *hooks.Intake
	events   *eventSources
	notifier *notify.Notifier
}

// New builds every component and binds the listener, but starts nothing.
func New(opts Options) (*App, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg := opts.Config
	a := &App{opts: opts, log: opts.Logger, registry: prometheus.NewRegistry()}
	a.metrics = newNamingRegisterer(a.registry)
	a.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	var err error
	if a.auth, err = auth.New(auth.Options{Tokens: tokenSpecs(cfg)}); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	reloadErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_config_reload_errors_total",
		Help: "Configuration reloads that failed validation; the running configuration was kept.",
	})
	a.metrics.MustRegister(reloadErrors)
	if cfg.Path != "" {
		a.watcher, err = configs.NewWatcher(configs.WatchOptions{
			Path:     cfg.Path,
			Getenv:   opts.Getenv,
			Initial:  cfg,
			OnChange: a.applyConfig,
			OnError: func(err error) {
				reloadErrors.Inc()
				a.log.Error("configuration reload failed; keeping the running configuration", "component", "config", "err", err)
			},
		})
		if err != nil {
			return nil, err
		}
	}

	a.nodeID = nodeName(cfg)
	if err := a.buildRecorder(cfg); err != nil {
		return nil, err
	}
	if err := a.buildAlerts(cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.buildNotify(cfg); err != nil {
		a.close()
		return nil, err
	}
	a.metadataErrors = promauto.With(a.metrics).NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_onvif_metadata_rejected_total",
		Help: "ONVIF metadata documents from cameras that could not be parsed.",
	}, []string{"camera"})
	// the cluster before the footage API, which asks the other nodes
	if err := a.buildCluster(cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.buildForward(cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.buildFootage(cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.buildLive(cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.buildIngest(cfg); err != nil {
		a.close()
		return nil, err
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("listen %s: %w", opts.Listen, err)
	}
	maxConns := int(min(cfg.HTTP.MaxConns, 1<<20))
	a.conns = httpx.NewConnLimit(ln, maxConns, maxConns/4)
	a.listener = a.conns
	a.registerConnMetrics()
	a.server = &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ConnContext:       a.conns.ConnContext,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	return a, nil
}

// close releases what New opened; Run calls it on its way out.
func (a *App) close() {
	if a.viewers != nil {
		if err := a.viewers.Close(); err != nil {
			a.log.Error("closing the live view's UDP port", "component", "app", "err", err)
		}
	}
	if a.fileAudit != nil {
		if err := a.fileAudit.Close(); err != nil {
			a.log.Error("closing the audit file", "component", "app", "err", err)
		}
	}
	if a.recorder != nil {
		if err := a.recorder.Close(); err != nil {
			a.log.Error("closing the recorder", "component", "app", "err", err)
		}
	}
	if a.journal != nil {
		if err := a.journal.Close(); err != nil {
			a.log.Error("closing the journal", "component", "app", "err", err)
		}
	}
}

// Addr is the address the API listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// URL is the base URL of the API and desk.
func (a *App) URL() string { return "http://" + a.Addr() }

// Registry is the node's Prometheus registry.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// config returns the running configuration.
func (a *App) config() *configs.Config {
	if a.watcher != nil {
		return a.watcher.Current()
	}
	return a.opts.Config
}

// Run serves until ctx ends, then shuts down within ShutdownTimeout.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	// Any component failing stops the node like a signal does.
	failed, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	// Stages stop in the order the data flows: the API first (no new hooks
	// or downloads), then ingest, then the recorder (closing every segment
	// at a clean boundary), then the alert engine and the desk hub (closing
	// websockets with 1001), and last the journal, in close.
	type stage struct {
		ctx  context.Context
		stop context.CancelFunc
		g    errgroup.Group
	}
	newStage := func() *stage {
		c, cancel := context.WithCancel(context.WithoutCancel(ctx))
		return &stage{ctx: c, stop: cancel}
	}
	run := func(st *stage, fn func(context.Context) error) {
		st.g.Go(func() error {
			err := fn(st.ctx)
			if err != nil && st.ctx.Err() == nil {
				fail(err)
			}
			return err
		})
	}
	alertStage, recStage, ingestStage := newStage(), newStage(), newStage()
	run(alertStage, a.runEngine)
	run(alertStage, a.hub.Run)
	run(alertStage, a.auditSpool.Run)
	run(alertStage, a.notifier.Run)
	run(alertStage, a.alertSnaps.Run)
	run(alertStage, a.snapshots.Run) // spare ffmpeg processes for the snapshots
	run(alertStage, a.runCluster)
	run(recStage, a.recorder.Run)
	run(ingestStage, a.streams.Run)
	run(ingestStage, a.events.Run)
	run(ingestStage, a.viewers.Run)
	run(ingestStage, a.runLeases)
	if a.watcher != nil {
		run(ingestStage, a.watcher.Run)
	}
	var served errgroup.Group
	served.Go(func() error {
		if err := a.server.Serve(a.listener); !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("http: %w", err))
			return err
		}
		return nil
	})
	a.log.Info("vigil serving", "component", "app", "addr", a.Addr(), "live_udp", a.viewers.UDPAddr().String(),
		"snapshots", a.snapshots.Available())
	for _, c := range a.config().Cameras {
		a.log.Info("camera registered", "component", "app", "camera", c.ID, "name", c.Name, "site", c.Site, "url", c.RedactedURL())
	}
	logWarnings(a.log, a.config())

	<-failed.Done()
	deadline := time.Now().Add(a.opts.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := a.server.Shutdown(sctx); err != nil {
		// Downloads still running at the deadline are cut; that is not a
		// failed shutdown.
		a.log.Warn("closing connections still open at the shutdown deadline", "component", "app", "err", err)
		a.server.Close()
	}
	_ = served.Wait()
	for _, st := range []*stage{ingestStage, recStage, alertStage} {
		st.stop()
		_ = st.g.Wait() // failures were reported through fail
	}
	if err := context.Cause(failed); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// keepRunning runs fn until ctx ends, starting it again after a pause when
// it returns early with an error (its backend unreachable at start, say),
// so that ingest and recording never wait on it.
func keepRunning(ctx context.Context, log *slog.Logger, name string, fn func(context.Context) error) error {
	for {
		err := fn(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Error(name+" stopped; restarting in 2s", "component", "app", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// Run builds the service from cfg and serves until ctx ends.
func Run(ctx context.Context, cfg *configs.Config) error {
	a, err := New(Options{Config: cfg})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// applyConfig takes a reloaded configuration into use: tokens change at
// once, cameras start, stop and restart; untouched cameras are not
// interrupted. Alert rules and units, storage and listen are read at start
// only.
func (a *App) applyConfig(ch configs.Change) {
	a.log.Info("configuration reloaded", "component", "config",
		"added", ch.Added, "removed", ch.Removed, "changed", ch.Changed)
	logWarnings(a.log, ch.New)
	tokens := tokenSpecs(ch.New)
	if err := a.auth.SetTokens(tokens); err != nil {
		a.log.Error("applying the tokens", "component", "config", "err", err)
	} else if ch.Old != nil && !slices.Equal(tokenSpecs(ch.Old), tokens) && a.hub != nil {
		// An open alert stream was authorized once, at its upgrade: every
		// desk reconnects (1001, resuming with since) and a revoked token
		// is refused then.
		a.hub.DisconnectAll()
		a.log.Info("tokens changed: desk streams asked to reconnect", "component", "config")
	}
	a.events.apply(ch.New)
	if err := a.applyCameras(ch.New); err != nil {
		a.log.Error("applying the camera registry", "component", "config", "err", err)
	}
}

// logWarnings logs what check-config would print as warnings.
func logWarnings(log *slog.Logger, cfg *configs.Config) {
	for _, w := range cfg.Warnings {
		log.Warn("configuration warning", "component", "config", "at", fmt.Sprintf("%s:%d:%d", w.File, w.Line, w.Column), "path", w.Path, "msg", w.Msg)
	}
}

func tokenSpecs(cfg *configs.Config) []auth.TokenSpec {
	specs := make([]auth.TokenSpec, 0, len(cfg.Auth.Tokens))
	for _, t := range cfg.Auth.Tokens {
		specs = append(specs, auth.TokenSpec{Name: t.Name, Role: auth.Role(t.Role), SHA256: fmt.Sprintf("%x", t.Hash[:])})
	}
	return specs
}

// NewLogger builds the service logger from the log settings.
func NewLogger(w *os.File, l configs.Log) *slog.Logger {
	ho := &slog.HandlerOptions{Level: l.Level}
	if l.Format == configs.LogJSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
