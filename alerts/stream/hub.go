// Package stream is the desk's live alert stream: the websocket endpoint
// GET /api/v1/alerts/stream and the hub that fans the journal's changes out
// to its clients, with replay from since, site and severity filters, pings
// and the slow-client policy (close 4008 after SlowAfter messages behind).
// It reads the journal through one subscription and never writes to it; it
// does not authenticate (the app's middleware does).
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigil/alerts"
	"vigil/internal/backoff"
)

// Websocket close codes the hub uses.
const (
	// CloseSlowClient closes a client whose queue filled up: it fell
	// SlowAfter messages behind and must resume with since.
	CloseSlowClient = 4008
	// CloseGoingAway (RFC 6455 1001) ends clients on shutdown and
	// DisconnectAll; they reconnect with since.
	CloseGoingAway = 1001
	// CloseTryAgain (RFC 6455 1013) ends clients when the hub lost its own
	// journal feed; they reconnect with since.
	CloseTryAgain = 1013
)

// Journal is what the hub needs of an alerts.Journal.
type Journal interface {
	Since(ctx context.Context, seq uint64, limit int) ([]alerts.Change, error)
	LastSeq(ctx context.Context) (uint64, error)
	Subscribe(ctx context.Context, buffer int) (*alerts.Subscription, error)
}

// Options configure a Hub. Journal is required; the rest have defaults.
type Options struct {
	Journal Journal
	// AllowedOrigins are browser origins ("https://desk.example.org")
	// accepted besides the request's own host. "*" accepts any.
	AllowedOrigins []string
	// PingInterval between pings; a client that answers nothing for two
	// intervals is dropped. Default 15s.
	PingInterval time.Duration
	// SlowAfter is the per-client queue length; a client that falls this
	// many messages behind is closed with 4008. Default 1000.
	SlowAfter int
	// ReplayPage is the page size of Journal.Since during replay. Default 500.
	ReplayPage int
	// SubscribeBuffer is the buffer of the hub's one journal subscription.
	// Default 4096.
	SubscribeBuffer int
	// Registerer receives the hub's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Clock is the time source for delivery latency and deadlines; default
	// time.Now.
	Clock func() time.Time
	// WriteTimeout bounds one websocket write. Default 10s.
	WriteTimeout time.Duration
}

func (o *Options) validate() error {
	var errs []error
	if o.Journal == nil {
		errs = append(errs, errors.New("hub: Journal is required"))
	}
	if o.PingInterval < 0 || o.SlowAfter < 0 || o.ReplayPage < 0 || o.SubscribeBuffer < 0 || o.WriteTimeout < 0 {
		errs = append(errs, errors.New("hub: negative interval or size"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if o.PingInterval == 0 {
		o.PingInterval = 15 * time.Second
	}
	if o.SlowAfter == 0 {
		o.SlowAfter = 1000
	}
	if o.ReplayPage == 0 {
		o.ReplayPage = 500
	}
	if o.SubscribeBuffer == 0 {
		o.SubscribeBuffer = 4096
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return nil
}

// Hub fans the journal's changes out to the desk's websocket clients
// (GET /api/v1/alerts/stream). It holds one journal subscription, started
// by Run, and a bounded queue per client. It does not authenticate: the
// app's middleware wraps ServeHTTP.
type Hub struct {
	opts Options
	log  *slog.Logger

	clientsGauge prometheus.Gauge
	slowClosed   prometheus.Counter
	delivery     prometheus.Histogram

	ready chan struct{} // closed once Run has subscribed
	wg    sync.WaitGroup

	mu      sync.Mutex
	clients map[*wsClient]struct{}
	lastSeq uint64 // newest seq handed to clients' queues
	stopped bool   // Run ended: refuse new clients
	running bool
}

// New builds a Hub; call Run to start it.
func New(opts Options) (*Hub, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	f := promauto.With(opts.Registerer)
	h := &Hub{
		opts:  opts,
		log:   opts.Logger.With("component", "desk-hub"),
		ready: make(chan struct{}),
		clientsGauge: f.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_ws_clients", Help: "Websocket clients connected to the alert stream.",
		}),
		slowClosed: f.NewCounter(prometheus.CounterOpts{
			Name: "vigil_ws_slow_closed_total", Help: "Websocket clients closed with 4008 because they fell behind.",
		}),
		delivery: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_alert_delivery_seconds",
			Help:    "Time from the journal append of a change to its websocket write.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		clients: make(map[*wsClient]struct{}),
	}
	return h, nil
}

// Run subscribes to the journal and delivers its changes until ctx ends;
// then it closes every client with 1001 and waits for their goroutines. It
// returns nil after ctx ends, or the error that made the subscription
// impossible.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("hub: Run called twice")
	}
	h.running = true
	h.mu.Unlock()

	defer func() {
		h.mu.Lock()
		h.stopped = true
		for c := range h.clients {
			c.closeWith(CloseGoingAway, "server shutting down")
		}
		h.mu.Unlock()
		h.wg.Wait()
	}()

	readyOnce := sync.OnceFunc(func() { close(h.ready) })
	defer readyOnce()
	bo := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2})
	for {
		sub, err := h.subscribe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The journal may be unreachable (Redis down at start): keep
			// trying; clients get 503 (after readyWait) until the first
			// subscription holds.
			h.log.Error("journal subscription failed; retrying", "err", err)
		} else {
			readyOnce()
			bo.Reset()
			err = h.deliver(ctx, sub)
			if ctx.Err() != nil {
				return nil
			}
			// The hub missed changes; its clients must resume with since.
			h.log.Warn("journal subscription ended; reconnecting clients", "err", err)
			h.mu.Lock()
			for c := range h.clients {
				c.closeWith(CloseTryAgain, "feed interrupted, resume with since")
			}
			h.mu.Unlock()
		}
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

// subscribe opens the hub's journal subscription and sets lastSeq so that
// every change after lastSeq arrives on it.
func (h *Hub) subscribe(ctx context.Context) (*alerts.Subscription, error) {
	sub, err := h.opts.Journal.Subscribe(ctx, h.opts.SubscribeBuffer)
	if err != nil {
		return nil, err
	}
	last, err := h.opts.Journal.LastSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("last seq: %w", err)
	}
	h.mu.Lock()
	// Only forward: clients already compare by seq, and a journal whose
	// LastSeq went back would be a bug elsewhere.
	h.lastSeq = max(h.lastSeq, last)
	h.mu.Unlock()
	return sub, nil
}

// deliver hands each change to every client queue until the subscription
// closes.
func (h *Hub) deliver(ctx context.Context, sub *alerts.Subscription) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-sub.C:
			if !ok {
				if err := sub.Err(); err != nil {
					return err
				}
				return errors.New("subscription closed")
			}
			h.broadcast(c)
		}
	}
}

func (h *Hub) broadcast(c alerts.Change) {
	m, err := newHubMsg(c)
	if err != nil {
		h.log.Error("encode change", "seq", c.Seq, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Between Subscribe and LastSeq a change may arrive twice.
	if c.Seq <= h.lastSeq {
		return
	}
	h.lastSeq = c.Seq
	for cl := range h.clients {
		h.enqueue(cl, m)
	}
}

// enqueue must be called with h.mu held.
func (h *Hub) enqueue(cl *wsClient, m *hubMsg) {
	if !cl.filter.match(m) {
		return
	}
	select {
	case cl.queue <- m:
	default:
		if cl.closeWith(CloseSlowClient, "too slow, resume with since") {
			h.slowClosed.Inc()
			h.log.Warn("closing slow websocket wsClient", "remote", cl.remote, "queued", len(cl.queue))
		}
	}
}

// PublishCamera sends a camera status message ({"kind":"camera","at":…,
// "camera":status}) to every connected client. It has no seq: camera status
// is not in the journal, and a reconnecting client reloads GET /cameras.
func (h *Hub) PublishCamera(status any) error {
	data, err := json.Marshal(struct {
		Kind   alerts.ChangeKind `json:"kind"`
		At     time.Time         `json:"at"`
		Camera any               `json:"camera"`
	}{alerts.KindCamera, h.opts.Clock().UTC(), status})
	if err != nil {
		return fmt.Errorf("hub: encode camera status: %w", err)
	}
	m := &hubMsg{data: data, camera: true}
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		h.enqueue(cl, m)
	}
	return nil
}

// DisconnectAll closes every connected client with 1001 (going away); they
// are expected to reconnect with since. For tests and planned restarts.
func (h *Hub) DisconnectAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.closeWith(CloseGoingAway, "reconnect with since")
	}
}

// Clients is the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// register adds cl and returns the seq after which its queue receives
// every change.
func (h *Hub) register(cl *wsClient) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return 0, errors.New("hub stopped")
	}
	h.clients[cl] = struct{}{}
	h.wg.Add(1)
	h.clientsGauge.Inc()
	return h.lastSeq, nil
}

func (h *Hub) unregister(cl *wsClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[cl]; !ok {
		return
	}
	delete(h.clients, cl)
	h.clientsGauge.Dec()
	h.wg.Done()
}

// hubMsg is one encoded message with what filters need.
type hubMsg struct {
	seq      uint64
	at       time.Time
	site     string
	severity alerts.Severity
	camera   bool // camera status: not filtered, no seq
	data     []byte
}

func newHubMsg(c alerts.Change) (*hubMsg, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &hubMsg{seq: c.Seq, at: c.At, site: c.Alert.Site, severity: c.Alert.Severity, data: data}, nil
}

// streamFilter holds a client's site and min_severity.
type streamFilter struct {
	site    string
	minRank int // alerts.Severity.Rank at or below this passes; 3 passes all known
}

func (f streamFilter) match(m *hubMsg) bool {
	if m.camera {
		return true
	}
	if f.site != "" && m.site != f.site {
		return false
	}
	return m.severity.Rank() <= f.minRank
}

// LastSeq is the newest seq the hub has handed to its clients.
func (h *Hub) LastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}
