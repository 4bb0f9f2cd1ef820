package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"vigil/alerts"
	"vigil/alerts/vendor"
	"vigil/internal/backoff"
)

// Kind names a pull protocol; it is also the source label of the stream.
type Kind string

// Pull protocols.
const (
	ONVIF     Kind = "onvif"
	Hikvision Kind = "hikvision"
	Dahua     Kind = "dahua"
)

// Status is the state of an event stream.
type Status string

// Stream states.
const (
	// Connecting: no session yet, or between a failure and the next try.
	Connecting Status = "connecting"
	// Up: subscribed, data or heartbeats arriving.
	Up Status = "up"
	// Down: the last attempt failed; LastError says why.
	Down Status = "down"
	// Unauthorized: the device refused the credentials; Vigil tries again
	// only every AuthRetry so that the account is not locked.
	Unauthorized Status = "unauthorized"
)

// Health is what a Client reports of its stream, for the camera API and
// vigil_event_stream_up.
type Health struct {
	Source      Kind       `json:"source"`
	Status      Status     `json:"status"`
	Since       time.Time  `json:"since"`
	LastEventAt *time.Time `json:"last_event_at"`
	LastError   string     `json:"last_error,omitempty"`
}

// ErrUnauthorized is returned (wrapped) by a session the device refused.
var ErrUnauthorized = errors.New("device refused the credentials (401)")

// errIdle ends a session that saw no data and no heartbeat for IdleTimeout.
var errIdle = errors.New("no data or heartbeat")

// Options configure one subscription.
type Options struct {
	Kind Kind
	// Name is the camera or device ID the events are reported under.
	Name string
	// URL: Hikvision and Dahua, the device's base URL (http://host[:port]);
	// ONVIF, its device service URL.
	URL                string
	Username, Password string
	// Events receives the events of each payload, in order.
	Events func([]alerts.Event)
	// Rejected, when set, hears of Dahua records that could not be read.
	Rejected func([]alerts.RejectedRecord)
	// OnHealth hears every change of Health.
	OnHealth func(Health)
	// Backoff between sessions; default 1s…60s with 20% jitter.
	Backoff backoff.Policy
	// AuthFailures refused logins in a row before the long pause (default
	// 3); AuthRetry is that pause (default 5m).
	AuthFailures int
	AuthRetry    time.Duration
	// IdleTimeout ends a stream without data or heartbeat; default 60s.
	IdleTimeout time.Duration
	// HTTP is the client; default one with no overall timeout (streams
	// never end) and a 10s dial and header timeout.
	HTTP *http.Client
	// Now and After are the clock; tests replace them.
	Now    func() time.Time
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

func (o *Options) validate() error {
	var errs []error
	switch o.Kind {
	case ONVIF, Hikvision, Dahua:
	default:
		errs = append(errs, fmt.Errorf("pull: kind %q: want onvif, hikvision or dahua", o.Kind))
	}
	if o.Name == "" {
		errs = append(errs, errors.New("pull: Name is required"))
	}
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("pull: URL must be an http or https URL"))
	}
	if o.Events == nil {
		errs = append(errs, errors.New("pull: Events is required"))
	}
	if o.Backoff.Min <= 0 {
		o.Backoff = backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: 0.2}
	}
	if o.AuthFailures <= 0 {
		o.AuthFailures = 3
	}
	if o.AuthRetry <= 0 {
		o.AuthRetry = 5 * time.Minute
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 15 * time.Second, TLSHandshakeTimeout: 10 * time.Second}}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnHealth == nil {
		o.OnHealth = func(Health) {}
	}
	return errors.Join(errs...)
}

// Client holds one event subscription to one camera or device.
type Client struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	health Health
}

// New returns a Client; Run starts it.
func New(opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Client{opts: opts, log: opts.Logger.With("component", "event-stream", "camera", opts.Name, "source", string(opts.Kind))}
	c.health = Health{Source: opts.Kind, Status: Connecting, Since: opts.Now()}
	return c, nil
}

// Health returns the stream's current health.
func (c *Client) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.health
}

func (c *Client) setStatus(st Status, err error) {
	c.mu.Lock()
	changed := c.health.Status != st
	if changed {
		c.health.Status, c.health.Since = st, c.opts.Now()
	}
	if err != nil {
		c.health.LastError = err.Error()
	}
	h := c.health
	c.mu.Unlock()
	if changed || err != nil {
		c.opts.OnHealth(h)
	}
}

func (c *Client) deliver(evs []alerts.Event) {
	if len(evs) == 0 {
		return
	}
	c.mu.Lock()
	t := c.opts.Now()
	c.health.LastEventAt = &t
	h := c.health
	c.mu.Unlock()
	c.opts.OnHealth(h)
	c.opts.Events(evs)
}

// Run holds the subscription until ctx ends: it connects, reads, and after
// a failure logs once, reports the stream down and tries again after a
// pause (internal/backoff; AuthRetry after AuthFailures refused logins in
// a row, because cameras lock the account). It returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	b := backoff.New(c.opts.Backoff)
	b.After = c.opts.After
	refused := 0
	lastErr := "" // a fault repeated while the stream stays down is logged once
	for ctx.Err() == nil {
		// The status stays down (or unauthorized) through the retries,
		// with its error, until a session is up again.
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if up {
			b.Reset()
			lastErr = ""
		}
		if errors.Is(err, ErrUnauthorized) {
			refused++
		} else {
			refused = 0
		}
		st := Down
		if refused > 0 {
			st = Unauthorized
		}
		c.setStatus(st, err)
		if refused >= c.opts.AuthFailures {
			c.log.Error("event stream refused the credentials; trying again later so that the account is not locked", "refused", refused, "retry_in", c.opts.AuthRetry, "err", err)
			select {
			case <-c.opts.After(c.opts.AuthRetry):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		if msg := fmt.Sprint(err); msg != lastErr {
			c.log.Warn("event stream down; reconnecting with backoff (logged again when the reason changes)", "err", err)
			lastErr = msg
		} else {
			c.log.Debug("event stream still down", "err", err)
		}
		if b.Wait(ctx) != nil {
			return nil
		}
	}
	return nil
}

// session runs one connection; up is true once it was subscribed.
func (c *Client) session(ctx context.Context) (up bool, err error) {
	switch c.opts.Kind {
	case Hikvision:
		return c.stream(ctx, "/ISAPI/Event/notification/alertStream", c.hikvisionPart)
	case Dahua:
		return c.stream(ctx, "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5", c.dahuaPart)
	}
	return c.onvifSession(ctx)
}

// watchdog cancels the session when alive is not called for IdleTimeout.
// It returns the function the reader calls on data, and waits for its
// goroutine in stop.
func (c *Client) watchdog(ctx context.Context, cancel context.CancelCauseFunc) (alive func(), stop func()) {
	ping := make(chan struct{}, 1)
	done := make(chan struct{})
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		for {
			select {
			case <-ping:
			case <-c.opts.After(c.opts.IdleTimeout):
				cancel(fmt.Errorf("%w for %s", errIdle, c.opts.IdleTimeout))
				return
			case <-wctx.Done():
				return
			}
		}
	}()
	alive = func() {
		select {
		case ping <- struct{}{}:
		default:
		}
	}
	return alive, func() { wcancel(); <-done }
}

// get sends a GET with digest (or basic) authentication.
func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	base := strings.TrimRight(c.opts.URL, "/")
	target := base + path
	newReq := func() (*http.Request, error) { return http.NewRequestWithContext(ctx, http.MethodGet, target, nil) }
	req, err := newReq()
	if err != nil {
		return nil, err
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	drain(resp)
	if ch, ok := parseDigestChallenge(resp.Header); ok {
		authz, err := ch.authorization(http.MethodGet, req.URL.RequestURI(), c.opts.Username, c.opts.Password, 1)
		if err != nil {
			return nil, err
		}
		req, _ = newReq()
		req.Header.Set("Authorization", authz)
	} else {
		req, _ = newReq()
		req.SetBasicAuth(c.opts.Username, c.opts.Password)
	}
	resp, err = c.opts.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		drain(resp)
		return nil, ErrUnauthorized
	}
	return resp, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// stream reads a multipart event stream, handing each part to handle.
func (c *Client) stream(ctx context.Context, path string, handle func(part) error) (up bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := c.get(sctx, path)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	boundary := params["boundary"]
	if !strings.HasPrefix(mt, "multipart/") || boundary == "" {
		return false, fmt.Errorf("GET %s: content type %q: want a multipart stream with a boundary", path, resp.Header.Get("Content-Type"))
	}
	alive, stop := c.watchdog(sctx, cancel)
	defer stop()
	c.setStatus(Up, nil)
	c.log.Info("event stream up")
	pr := newPartReader(resp.Body, boundary, alive)
	for {
		p, err := pr.next()
		if err != nil {
			if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil {
				return true, cause
			}
			if err == io.EOF {
				return true, errors.New("the device closed the event stream")
			}
			return true, fmt.Errorf("reading the event stream: %w", err)
		}
		if err := handle(p); err != nil {
			c.log.Debug("event stream part not read", "err", err)
		}
	}
}

func (c *Client) hikvisionPart(p part) error {
	ct := p.header.Get("Content-Type")
	if strings.HasPrefix(ct, "image/") || len(strings.TrimSpace(string(p.body))) == 0 {
		return nil
	}
	res, err := vendor.ParseHikvision(c.opts.Name, "application/xml", strings.NewReader(string(p.body)), c.opts.Now())
	if err != nil {
		return err
	}
	c.deliver(res.Events)
	return nil
}

func (c *Client) dahuaPart(p part) error {
	ct := p.header.Get("Content-Type")
	if strings.HasPrefix(ct, "image/") || len(strings.TrimSpace(string(p.body))) == 0 {
		return nil
	}
	evs, rejected, err := vendor.ParseDahua(c.opts.Name, "text/plain", strings.NewReader(string(p.body)), c.opts.Now())
	if err != nil {
		return err
	}
	if len(rejected) > 0 && c.opts.Rejected != nil {
		c.opts.Rejected(rejected)
	}
	c.deliver(evs)
	return nil
}
