package pull_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/pull"
	"vigil/alerts/pull/pulltest"
	"vigil/internal/backoff"
)

// waitTimeout only bounds a test that would otherwise hang; nothing is
// timed by it.
const waitTimeout = 10 * time.Second

// clock is the fake timer of a test: every pause a Client asks for is
// recorded; pauses other than idle fire at once, the idle timer fires only
// when the test says.
type clock struct {
	idle  time.Duration
	mu    sync.Mutex
	asks  []time.Duration
	fire  chan time.Time
	armed chan struct{} // a signal each time the idle timer is (re)armed
}

func newClock(idle time.Duration) *clock {
	return &clock{idle: idle, fire: make(chan time.Time), armed: make(chan struct{}, 1)}
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	if d == c.idle {
		select {
		case c.armed <- struct{}{}:
		default:
		}
		return c.fire
	}
	c.mu.Lock()
	c.asks = append(c.asks, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func (c *clock) pauses() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.asks...)
}

type harness struct {
	t      *testing.T
	events chan alerts.Event
	health chan pull.Health
	clock  *clock
	cancel context.CancelFunc
	done   chan error
}

// start runs a Client against url until the test ends.
func start(t *testing.T, kind pull.Kind, url, user, pass string, tweak func(*pull.Options)) *harness {
	t.Helper()
	h := &harness{t: t, events: make(chan alerts.Event, 64), health: make(chan pull.Health, 256), clock: newClock(time.Hour), done: make(chan error, 1)}
	opts := pull.Options{
		Kind: kind, Name: "gate", URL: url, Username: user, Password: pass,
		Events: func(evs []alerts.Event) {
			for _, e := range evs {
				h.events <- e
			}
		},
		OnHealth: func(hl pull.Health) {
			select {
			case h.health <- hl:
			default:
			}
		},
		Backoff:     backoff.Policy{Min: time.Second, Max: 8 * time.Second},
		AuthRetry:   5 * time.Minute,
		IdleTimeout: time.Hour,
		After:       h.clock.After,
	}
	if tweak != nil {
		tweak(&opts)
	}
	h.clock.idle = opts.IdleTimeout
	c, err := pull.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- c.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends the client and waits for it: no goroutine outlives the test.
func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.done <- nil
	case <-time.After(waitTimeout):
		h.t.Fatal("client did not stop")
	}
}

func (h *harness) event() alerts.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-time.After(waitTimeout):
		h.t.Fatal("no event")
	}
	return alerts.Event{}
}

// waitStatus waits for a health report with status st.
func (h *harness) waitStatus(st pull.Status) pull.Health {
	h.t.Helper()
	for {
		select {
		case hl := <-h.health:
			if hl.Status == st {
				return hl
			}
		case <-time.After(waitTimeout):
			h.t.Fatalf("no health report %q", st)
		}
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

const hikVMD = `<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.0.2.31</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<channelID>1</channelID><dateTime>2026-11-26T21:05:00+08:00</dateTime><activePostCount>1</activePostCount>
<eventType>VMD</eventType><eventState>active</eventState><eventDescription>Motion alarm</eventDescription>
</EventNotificationAlert>`

// hikHeartbeat is the keep-alive as NVRs write it: empty channel elements,
// the isapi.org namespace.
const hikHeartbeat = `<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.0.2.31</ipAddress><portNo>80</portNo><protocolType>HTTP</protocolType><dynChannelID/><channelID/><dateTime>2026-11-26T21:05:05+08:00</dateTime>
<activePostCount>0</activePostCount><eventType>videoloss</eventType><eventState>inactive</eventState><eventDescription>videoloss alarm</eventDescription>
</EventNotificationAlert>`

func TestHikvisionAlertStream(t *testing.T) {
	srv := pulltest.NewStream("admin", "pw")
	srv.Boundary, srv.MediaType = "hikboundary", "multipart/mixed" // as some firmware writes it
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	connected := srv.Connected()
	h := start(t, pull.Hikvision, ts.URL, "admin", "pw", nil)
	wait(t, connected, "the client to connect")
	h.waitStatus(pull.Up)

	srv.Send("application/xml; charset=UTF-8", hikHeartbeat) // raises nothing
	srv.Send("image/jpeg", "\xff\xd8not-a-real-jpeg\xff\xd9")
	srv.Send("application/xml; charset=UTF-8", hikVMD)
	e := h.event()
	if e.Camera != "gate" || e.Type != alerts.Motion || e.State != alerts.Active || e.Key != "channel=1" || e.Source != alerts.SourceHikvision {
		t.Fatalf("event %+v", e)
	}
	if hl := h.waitStatus(pull.Up); hl.LastEventAt == nil {
		// the event's health report
		t.Fatalf("health after an event: %+v", hl)
	}

	// Server-side close: the client reports the stream down and comes back.
	connected = srv.Connected()
	srv.CloseStreams()
	if hl := h.waitStatus(pull.Down); hl.LastError == "" {
		t.Fatalf("down without an error: %+v", hl)
	}
	wait(t, connected, "the client to reconnect")
	h.waitStatus(pull.Up)
	srv.Send("application/xml", hikVMD)
	if e := h.event(); e.Type != alerts.Motion {
		t.Fatalf("after reconnect: %+v", e)
	}
}

func TestDahuaAttachStream(t *testing.T) {
	srv := pulltest.NewStream("admin", "pw")
	srv.Boundary = "myboundary"
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	connected := srv.Connected()
	var rejected []alerts.RejectedRecord
	var mu sync.Mutex
	h := start(t, pull.Dahua, ts.URL, "admin", "pw", func(o *pull.Options) {
		o.Rejected = func(r []alerts.RejectedRecord) { mu.Lock(); rejected = append(rejected, r...); mu.Unlock() }
	})
	wait(t, connected, "the client to connect")
	h.waitStatus(pull.Up)
	srv.Send("text/plain", "Heartbeat")
	srv.Send("text/plain", "Code=VideoMotion;action=Start;index=0;data={\"RegionName\":[\"Yard\"]}\r\nCode=VideoMotion;action=Go;index=0")
	e := h.event()
	if e.Type != alerts.Motion || e.State != alerts.Active || e.Key != "index=0;rule=Yard" || e.Source != alerts.SourceDahua {
		t.Fatalf("event %+v", e)
	}
	srv.Send("text/plain", "Code=VideoMotion;action=Stop;index=0")
	if e := h.event(); e.State != alerts.Inactive {
		t.Fatalf("event %+v", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 1 || rejected[0].Record != 2 {
		t.Fatalf("rejected %+v", rejected)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	srv := pulltest.NewStream("admin", "pw")
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	connected := srv.Connected()
	h := start(t, pull.Hikvision, ts.URL, "admin", "pw", func(o *pull.Options) { o.IdleTimeout = 60 * time.Second })
	wait(t, connected, "the client to connect")
	h.waitStatus(pull.Up)
	connected = srv.Connected()
	// 60 s without data or heartbeat pass (the fake idle timer fires).
	select {
	case h.clock.fire <- time.Time{}:
	case <-time.After(waitTimeout):
		t.Fatal("the client armed no idle timer")
	}
	if hl := h.waitStatus(pull.Down); hl.LastError != "no data or heartbeat for 1m0s" {
		t.Fatalf("down with %q", hl.LastError)
	}
	wait(t, connected, "the client to reconnect")
}

// A heartbeat is data: it re-arms the idle timer and raises nothing.
func TestStreamHeartbeatKeepsAlive(t *testing.T) {
	srv := pulltest.NewStream("admin", "pw")
	srv.Boundary = "myboundary"
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	connected := srv.Connected()
	h := start(t, pull.Dahua, ts.URL, "admin", "pw", func(o *pull.Options) { o.IdleTimeout = 60 * time.Second })
	wait(t, connected, "the client to connect")
	h.waitStatus(pull.Up)
	// Drain the arming of the first timer, then a heartbeat re-arms it.
	select {
	case <-h.clock.armed:
	case <-time.After(waitTimeout):
		t.Fatal("no idle timer")
	}
	for range 3 {
		srv.Send("text/plain", "Heartbeat")
		select {
		case <-h.clock.armed:
		case <-time.After(waitTimeout):
			t.Fatal("a heartbeat did not re-arm the idle timer")
		}
	}
	select {
	case e := <-h.events:
		t.Fatalf("a heartbeat raised %+v", e)
	default:
	}
	if st := h.clock.pauses(); len(st) != 0 {
		t.Fatalf("the stream was lost: pauses %v", st)
	}
}

func TestStreamWrongPasswordBacksOffLong(t *testing.T) {
	srv := pulltest.NewStream("admin", "pw")
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	h := start(t, pull.Dahua, ts.URL, "admin", "wrong", nil)
	// Three refused logins, then the long pause; then three more.
	for len(h.clock.pauses()) < 4 {
		h.waitStatus(pull.Unauthorized)
		select {
		case <-h.health:
		case <-time.After(waitTimeout):
			t.Fatalf("pauses so far %v", h.clock.pauses())
		}
	}
	h.stop()
	got := h.clock.pauses()[:4]
	want := []time.Duration{time.Second, 2 * time.Second, 5 * time.Minute, time.Second}
	// After the long pause the sequence starts over from one refusal.
	if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("pauses %v, want %v…", got, want)
	}
	attempts, refused := srv.Counts()
	if refused < 3 || attempts < 2*refused-1 {
		t.Fatalf("attempts %d refused %d", attempts, refused)
	}
}
