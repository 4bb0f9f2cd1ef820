package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"vigil/alerts"
	"vigil/alerts/alertstest"
	"vigil/alerts/boltjournal"
	"vigil/alerts/stream"
)

const wait = 10 * time.Second // bound of every wait; tests finish far sooner

// sinceHook wraps the journal so a test can act in the middle of a replay.
type sinceHook struct {
	*boltjournal.Journal
	calls atomic.Int32
	hook  func(call int32)
}

func (s *sinceHook) Since(ctx context.Context, seq uint64, limit int) ([]alerts.Change, error) {
	n := s.calls.Add(1)
	if s.hook != nil {
		s.hook(n)
	}
	return s.Journal.Since(ctx, seq, limit)
}

type rig struct {
	t    *testing.T
	j    *boltjournal.Journal
	hook *sinceHook
	hub  *stream.Hub
	srv  *httptest.Server
	reg  *prometheus.Registry
	stop func() // cancels Run and waits for it
}

func newRig(t *testing.T, opts stream.Options) *rig {
	t.Helper()
	base := runtime.NumGoroutine()
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(journalDir(t), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, j: j, hook: &sinceHook{Journal: j}, reg: prometheus.NewRegistry()}
	opts.Journal = r.hook
	opts.Registerer = r.reg
	r.hub, err = stream.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.hub.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Error("Run did not return after cancel")
			}
		})
	}
	r.srv = httptest.NewServer(r.hub)
	t.Cleanup(func() {
		r.stop()
		r.srv.Close()
		j.Close()
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	})
	return r
}

// journalDir is on tmpfs when there is one: every Append fsyncs, and the
// tests are about the hub, not the disk.
func journalDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "vigil-hub-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var alertN atomic.Int64

// raised is the change that raises a new alert at site.
func raised(site string, sev alerts.Severity) alerts.Change {
	n := alertN.Add(1)
	now := time.Now().UTC()
	return alerts.Change{
		Kind: alerts.KindRaised, At: now,
		Alert: alerts.Alert{
			ID: fmt.Sprintf("A%06d", n), Camera: "cam-" + site, CameraName: "摄像机 " + site, Site: site,
			Type: "intrusion", Severity: sev, Signal: alerts.SignalActive, Status: alerts.StatusNew,
			RaisedAt: now, LastSeenAt: now, Count: 1,
		},
	}
}

// raise appends a new alert and returns its change.
func (r *rig) raise(site string, sev alerts.Severity) alerts.Change {
	r.t.Helper()
	c, err := r.j.Append(context.Background(), raised(site, sev), 0)
	if err != nil {
		r.t.Fatalf("append: %v", err)
	}
	return c
}

// raiseMany appends n new alerts in one batch.
func (r *rig) raiseMany(site string, sev alerts.Severity, n int) {
	r.t.Helper()
	items := make([]alerts.BatchItem, n)
	for i := range items {
		items[i].Change = raised(site, sev)
	}
	_, errs := r.j.AppendBatch(context.Background(), items)
	for _, err := range errs {
		if err != nil {
			r.t.Fatalf("append: %v", err)
		}
	}
}

func (r *rig) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(r.srv.URL, "http") + "/api/v1/alerts/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (r *rig) dial(query string) *websocket.Conn {
	r.t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(r.wsURL(query), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		r.t.Fatalf("dial %s: %v (status %d)", query, err, status)
	}
	r.t.Cleanup(func() { conn.Close() })
	return conn
}

type msg struct {
	Kind  string       `json:"kind"`
	Seq   uint64       `json:"seq"`
	At    time.Time    `json:"at"`
	Alert alerts.Alert `json:"alert"`
}

func read(t *testing.T, conn *websocket.Conn) (msg, error) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	var m msg
	_, data, err := conn.ReadMessage()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m, nil
}

func mustRead(t *testing.T, conn *websocket.Conn) msg {
	t.Helper()
	m, err := read(t, conn)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// readSeqs reads n change messages and returns their seqs.
func readSeqs(t *testing.T, conn *websocket.Conn, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		m := mustRead(t, conn)
		if m.Kind == "hello" || m.Kind == "reset" {
			t.Fatalf("unexpected %s after %v", m.Kind, seqs)
		}
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func closeCode(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	for {
		_, err := read(t, conn)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("want a close frame, got %v", err)
	}
}

func consecutive(t *testing.T, seqs []uint64, from uint64) {
	t.Helper()
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("seq %d at %d, want %d (gap or duplicate): %v", s, i, from+uint64(i), seqs)
		}
	}
}

func TestStreamReplayThenLiveWithAppendsDuringReplay(t *testing.T) {
	r := newRig(t, stream.Options{ReplayPage: 4})
	for range 10 {
		r.raise("hall", alerts.Minor)
	}
	waitFor(t, "hub to see seq 10", func() bool { return r.hub.LastSeq() == 10 })
	// Appends land while the replay reads its first and third pages.
	r.hook.hook = func(call int32) {
		if call == 1 || call == 3 {
			for range 5 {
				r.raise("hall", alerts.Minor)
			}
		}
	}
	conn := r.dial("since=0")
	hello := mustRead(t, conn)
	if hello.Kind != "hello" || hello.Seq != 10 {
		t.Fatalf("hello = %+v, want seq 10", hello)
	}
	consecutive(t, readSeqs(t, conn, 20), 1)
	r.hook.hook = nil
	r.raise("hall", alerts.Minor)
	consecutive(t, readSeqs(t, conn, 1), 21)
}

func TestStreamFreshClientGetsHelloThenLive(t *testing.T) {
	r := newRig(t, stream.Options{})
	r.raise("hall", alerts.Major)
	r.raise("hall", alerts.Major)
	waitFor(t, "hub to see seq 2", func() bool { return r.hub.LastSeq() == 2 })
	conn := r.dial("")
	if m := mustRead(t, conn); m.Kind != "hello" || m.Seq != 2 {
		t.Fatalf("hello = %+v", m)
	}
	c := r.raise("hall", alerts.Major)
	m := mustRead(t, conn)
	if m.Kind != "raised" || m.Seq != 3 || m.Alert.ID != c.Alert.ID || m.At.IsZero() {
		t.Fatalf("live message = %+v", m)
	}
}

func TestStreamSlowClientClosed4008(t *testing.T) {
	const slowAfter = 5
	r := newRig(t, stream.Options{SlowAfter: slowAfter})
	r.raise("hall", alerts.Minor)
	// The client is held in its replay while the live queue overflows.
	r.hook.hook = func(int32) {
		for range slowAfter + 1 {
			r.raise("hall", alerts.Minor)
		}
		waitFor(t, "slow close", func() bool { return metric(t, r.reg, "vigil_ws_slow_closed_total") == 1 })
	}
	conn := r.dial("since=0")
	if m := mustRead(t, conn); m.Kind != "hello" {
		t.Fatalf("first message %+v", m)
	}
	if code := closeCode(t, conn); code != stream.CloseSlowClient {
		t.Fatalf("close code %d, want 4008", code)
	}
	waitFor(t, "client to leave", func() bool { return r.hub.Clients() == 0 })
	if g := metric(t, r.reg, "vigil_ws_clients"); g != 0 {
		t.Fatalf("vigil_ws_clients = %v", g)
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestStreamOrigin(t *testing.T) {
	r := newRig(t, stream.Options{AllowedOrigins: []string{"https://desk.example.org"}})
	host := strings.TrimPrefix(r.srv.URL, "http://")
	for _, tc := range []struct {
		name, origin string
		want         int
	}{
		{"no origin", "", http.StatusSwitchingProtocols},
		{"same host", "http://" + host, http.StatusSwitchingProtocols},
		{"allow-listed", "https://desk.example.org", http.StatusSwitchingProtocols},
		{"foreign", "https://evil.example.com", http.StatusForbidden},
		{"same host other port", "http://127.0.0.1:1", http.StatusForbidden},
		{"garbage", "::not a url", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(r.wsURL(""), h)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.want, err)
			}
		})
	}
}

func TestStreamHundredClientsSameOrder(t *testing.T) {
	clients, events := 100, 1000
	if raceEnabled {
		events = 100
	}
	r := newRig(t, stream.Options{})
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = r.dial("")
		if m := mustRead(t, conns[i]); m.Kind != "hello" || m.Seq != 0 {
			t.Fatalf("hello %+v", m)
		}
	}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(4 * wait))
			for i := range events {
				var m msg
				if err := c.ReadJSON(&m); err != nil {
					errs <- err
					return
				}
				if m.Seq != uint64(i+1) {
					errs <- fmt.Errorf("message %d has seq %d", i, m.Seq)
					return
				}
			}
		})
	}
	for range events {
		r.raise("hall", alerts.Minor)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := metric(t, r.reg, "vigil_alert_delivery_seconds"); n != float64(clients*events) {
		t.Fatalf("delivery observations %v, want %d", n, clients*events)
	}
	if g := metric(t, r.reg, "vigil_ws_clients"); g != float64(clients) {
		t.Fatalf("vigil_ws_clients = %v", g)
	}
}

func TestStreamResetWhenSinceTooOld(t *testing.T) {
	r := newRig(t, stream.Options{})
	for range 10 {
		r.raise("hall", alerts.Minor)
	}
	if err := r.j.TrimBefore(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hub to see seq 10", func() bool { return r.hub.LastSeq() == 10 })

	t.Run("too old", func(t *testing.T) {
		conn := r.dial("since=2")
		if m := mustRead(t, conn); m.Kind != "hello" || m.Seq != 10 {
			t.Fatalf("hello %+v", m)
		}
		if m := mustRead(t, conn); m.Kind != "reset" {
			t.Fatalf("want reset, got %+v", m)
		}
		c := r.raise("hall", alerts.Minor)
		if m := mustRead(t, conn); m.Seq != c.Seq {
			t.Fatalf("after reset got seq %d, want live %d", m.Seq, c.Seq)
		}
	})
	t.Run("ahead of the hub", func(t *testing.T) {
		conn := r.dial("since=1000")
		if m := mustRead(t, conn); m.Kind != "hello" || m.Seq != r.hub.LastSeq() {
			t.Fatalf("hello %+v", m)
		}
		if m := mustRead(t, conn); m.Kind != "reset" {
			t.Fatalf("a since ahead of the hub: want reset, got %+v", m)
		}
		c := r.raise("hall", alerts.Minor)
		if m := mustRead(t, conn); m.Seq != c.Seq {
			t.Fatalf("after reset got seq %d, want live %d", m.Seq, c.Seq)
		}
	})
	t.Run("still kept", func(t *testing.T) {
		last := r.hub.LastSeq()
		conn := r.dial("since=7")
		if m := mustRead(t, conn); m.Kind != "hello" {
			t.Fatalf("hello %+v", m)
		}
		consecutive(t, readSeqs(t, conn, int(last-7)), 8)
	})
}

func TestStreamFilters(t *testing.T) {
	r := newRig(t, stream.Options{})
	var all []alerts.Change // in seq order
	add := func() {
		for _, site := range []string{"hall", "gate"} {
			for _, sev := range []alerts.Severity{alerts.Minor, alerts.Critical, alerts.Major} {
				all = append(all, r.raise(site, sev))
			}
		}
	}
	add() // replayed to the since=0 clients below
	for _, tc := range []struct {
		query string
		want  func(alerts.Change) bool
	}{
		{"site=gate", func(c alerts.Change) bool { return c.Alert.Site == "gate" }},
		{"min_severity=major", func(c alerts.Change) bool { return c.Alert.Severity != alerts.Minor }},
		{"min_severity=critical&site=hall", func(c alerts.Change) bool {
			return c.Alert.Site == "hall" && c.Alert.Severity == alerts.Critical
		}},
		{"min_severity=minor", func(alerts.Change) bool { return true }},
	} {
		t.Run(tc.query, func(t *testing.T) {
			conn := r.dial("since=0&" + tc.query)
			mustRead(t, conn) // hello
			add()             // live
			var want []uint64
			for _, c := range all {
				if tc.want(c) {
					want = append(want, c.Seq)
				}
			}
			got := readSeqs(t, conn, len(want))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			conn.Close()
		})
	}
	resp, err := http.Get(r.srv.URL + "?min_severity=loud")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad min_severity: status %d", resp.StatusCode)
	}
}

func TestStreamShutdownAndDisconnectAll(t *testing.T) {
	r := newRig(t, stream.Options{})
	a, b := r.dial(""), r.dial("")
	mustRead(t, a)
	mustRead(t, b)
	r.hub.DisconnectAll()
	for _, c := range []*websocket.Conn{a, b} {
		if code := closeCode(t, c); code != stream.CloseGoingAway {
			t.Fatalf("DisconnectAll: close code %d", code)
		}
	}
	c := r.dial("")
	mustRead(t, c)
	r.stop()
	if code := closeCode(t, c); code != stream.CloseGoingAway {
		t.Fatalf("shutdown: close code %d", code)
	}
	if n := r.hub.Clients(); n != 0 {
		t.Fatalf("%d clients after Run returned", n)
	}
}

// TestStreamCloseWaitsForTheClientsAnswer: the hub finishes the closing
// handshake before it closes the socket. A frame the client sends while the
// close frame is on its way (a pong, say) would otherwise meet a closed
// socket, and the reset would discard the close frame before it is read.
func TestStreamCloseWaitsForTheClientsAnswer(t *testing.T) {
	const backlog = 2000
	r := newRig(t, stream.Options{SlowAfter: 2 * backlog})
	// A client with a 256 KiB receive buffer falls behind by more than its
	// socket holds: part of what it was sent waits in the server's socket.
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	conn, _, err := d.Dial(r.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustRead(t, conn)
	r.raiseMany("hall", alerts.Minor, backlog)
	waitFor(t, "the backlog to be written", func() bool { return metric(t, r.reg, "vigil_alert_delivery_seconds") == backlog })
	r.hub.DisconnectAll()
	// The two sleeps order what cannot be observed from here (the server
	// has written its close frame; a reset would have come back). On a slow
	// machine they can only let the test pass without proving much, never
	// fail it falsely.
	time.Sleep(200 * time.Millisecond) // the close frame is queued behind the backlog
	if err := conn.WriteMessage(websocket.TextMessage, []byte("in flight")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a socket closed at once would have reset by now
	n := 0
	for {
		_, err := read(t, conn)
		if err == nil {
			n++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != stream.CloseGoingAway {
			t.Fatalf("after %d of %d messages: %v, want close %d", n, backlog, err, stream.CloseGoingAway)
		}
		break
	}
	if n != backlog {
		t.Fatalf("read %d messages before the close, want %d", n, backlog)
	}
	waitFor(t, "client to leave", func() bool { return r.hub.Clients() == 0 })
}

// noFeedJournal cannot be subscribed to, as the Redis journal while Redis
// has been down since the node started.
type noFeedJournal struct{ alerts.Journal }

func (noFeedJournal) Subscribe(context.Context, int) (*alerts.Subscription, error) {
	return nil, alertstest.ErrDown
}

// TestStreamNotReadyAnswers503: a client is not held forever by a hub that
// has no journal feed yet; it is told to come back.
func TestStreamNotReadyAnswers503(t *testing.T) {
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(journalDir(t), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	hub, err := stream.New(stream.Options{Journal: noFeedJournal{j}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	alertstest.RunBackground(t, hub.Run)
	srv := httptest.NewServer(hub)
	defer srv.Close()
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/alerts/stream", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial a hub without a feed: %v %v, want 503", resp, err)
	}
}

func TestStreamDropsSilentClient(t *testing.T) {
	// A second between pings: a pong delayed by a busy machine (-race, other
	// builds) must not count as silence.
	r := newRig(t, stream.Options{PingInterval: time.Second})
	// A client that never reads never answers pings.
	conn := r.dial("")
	_ = conn
	waitFor(t, "silent client to be dropped", func() bool { return r.hub.Clients() == 0 })

	// One that reads answers them and stays.
	live := r.dial("")
	mustRead(t, live)
	pings := make(chan struct{}, 8)
	live.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := live.NextReader(); err != nil {
				return
			}
		}
	}()
	for range 4 { // two read deadlines' worth of pings
		select {
		case <-pings:
		case <-time.After(wait):
			t.Fatal("no ping")
		}
	}
	if n := r.hub.Clients(); n != 1 {
		t.Fatalf("answering client dropped: %d clients", n)
	}
}
