package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vigil/internal/camsim"
)

type alertsOpts struct {
	Rate     int           `json:"rate"`
	Cameras  int           `json:"cameras"`
	Clients  int           `json:"clients"`
	Duration time.Duration `json:"-"`
	Journal  string        `json:"journal"`
	Source   string        `json:"source"`
}

type latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

type alertsResult struct {
	Scenario     string     `json:"scenario"`
	Options      alertsOpts `json:"options"`
	DurationS    float64    `json:"duration_s"`
	EventsSent   int64      `json:"events_sent"`
	RateAchieved float64    `json:"rate_achieved"`
	Expected     int64      `json:"deliveries_expected"`
	Delivered    int64      `json:"deliveries"`
	Missing      int64      `json:"missing"`
	Duplicates   int64      `json:"duplicates"`
	SeqGaps      int64      `json:"seq_gaps"`
	Closed       int        `json:"clients_closed"`
	// Dropped counts events the engine refused because its queue was full
	// (vigil_alert_events_dropped_total): they never become alerts.
	Dropped  int64   `json:"engine_dropped"`
	Latency  latency `json:"latency"`
	CPUCores float64 `json:"process_cpu_cores"`
	Target   string  `json:"target"`
	Machine  machine `json:"machine"`
}

func runAlerts(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	o := alertsOpts{}
	fs.IntVar(&o.Rate, "rate", 1000, "camera events per second, spread over the cameras")
	fs.IntVar(&o.Cameras, "cameras", 16, "simulated cameras with ONVIF metadata tracks")
	fs.IntVar(&o.Clients, "clients", 50, "desk websocket clients")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "measurement time")
	fs.StringVar(&o.Journal, "journal", "embedded", "embedded | redis")
	fs.StringVar(&o.Source, "source", "onvif", "onvif (RTSP metadata track through ingest) | hook (generic webhook)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	res, err := alertsBench(ctx, log, o)
	if res != nil {
		target := 25.0
		if o.Journal == "redis" {
			target = 40
		}
		summary(os.Stderr, fmt.Sprintf("alerts: %d events/s, %d cameras (%s), %d clients, %s journal", o.Rate, o.Cameras, o.Source, o.Clients, o.Journal),
			"events sent", fmt.Sprintf("%d (%.0f/s)", res.EventsSent, res.RateAchieved),
			"deliveries", fmt.Sprintf("%d of %d (missing %d, duplicates %d, seq gaps %d)", res.Delivered, res.Expected, res.Missing, res.Duplicates, res.SeqGaps),
			"dropped by the engine (queue full)", res.Dropped,
			"latency p50/p90/p99/max ms", fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.Max),
			"target p99", fmt.Sprintf("<= %.0f ms: %s", target, passFail(res.Latency.P99 <= target)),
			"process CPU (bench+camsim+vigil)", fmt.Sprintf("%.2f cores", res.CPUCores))
	}
	return res, err
}

func passFail(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// alertClient is the state of one desk client during the alerts run.
type alertClient struct {
	mu      sync.Mutex
	lastSeq uint64
	gaps    int64
	dups    int64
	seen    []int64 // highest count seen per camera index
	lat     []int32 // microseconds, measured events only
	from    []int64 // first measured count per camera
	c       *deskClient
}

func alertsBench(ctx context.Context, log *slog.Logger, o alertsOpts) (*alertsResult, error) {
	if o.Cameras < 1 || o.Clients < 1 || o.Rate < 1 {
		return nil, fmt.Errorf("cameras, clients and rate must be positive")
	}
	ctx, cancel := bounded(ctx, o.Duration+3*time.Minute)
	defer cancel()
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	journal := ""
	if o.Journal == "redis" {
		r, err := e.startRedis(0)
		if err != nil {
			return nil, err
		}
		journal = "redis " + r.addr
	} else if o.Journal != "embedded" {
		return nil, fmt.Errorf("journal %q: want embedded or redis", o.Journal)
	}

	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", NoUDP: true, Cameras: camsim.Cameras(o.Cameras, true), SyncEvery: -1})
	if err != nil {
		return nil, err
	}
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() { _ = sim.Run(simCtx); close(simDone) }()
	e.defer_(func() { simStop(); <-simDone })

	sc := serviceConfig{Journal: journal}
	for i := range o.Cameras {
		sc.Cameras = append(sc.Cameras, cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: sim.URL(fmt.Sprintf("cam/%d", i)), ONVIF: o.Source == "onvif"})
	}
	node, err := e.startNode(ctx, sc)
	if err != nil {
		return nil, err
	}
	base := node.app.URL()

	// sent[cam][count] is when the event that makes the alert's count
	// reach count was sent (unix ns).
	perCam := o.Rate*int(o.Duration/time.Second+2)/o.Cameras + 16
	sent := make([][]atomic.Int64, o.Cameras)
	for i := range sent {
		sent[i] = make([]atomic.Int64, perCam+2)
	}
	counts := make([]atomic.Int64, o.Cameras) // the count of each camera's alert after the last event sent

	clients := make([]*alertClient, o.Clients)
	for i := range clients {
		ac := &alertClient{seen: make([]int64, o.Cameras), from: make([]int64, o.Cameras)}
		for j := range ac.from {
			ac.from[j] = 1 << 62
		}
		c, err := dialDesk(ctx, base, e.tokens.desk, -1, func(m deskMsg) {
			ac.mu.Lock()
			defer ac.mu.Unlock()
			if m.seq != 0 {
				switch {
				case ac.lastSeq != 0 && m.seq <= ac.lastSeq:
					ac.dups++
				case ac.lastSeq != 0 && m.seq != ac.lastSeq+1:
					ac.gaps += int64(m.seq - ac.lastSeq - 1)
				}
				ac.lastSeq = max(ac.lastSeq, m.seq)
			}
			idx, ok := camIndex(m.camera)
			if !ok || idx >= o.Cameras || m.count <= ac.seen[idx] {
				return
			}
			for c := ac.seen[idx] + 1; c <= m.count; c++ {
				if c >= ac.from[idx] && c < int64(len(sent[idx])) {
					if s := sent[idx][c].Load(); s != 0 {
						ac.lat = append(ac.lat, int32(min((m.at.UnixNano()-s)/1000, 1<<31-1)))
					}
				}
			}
			ac.seen[idx] = m.count
		})
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		ac.mu.Lock()
		ac.c = c
		ac.lastSeq = max(ac.lastSeq, c.hello)
		ac.mu.Unlock()
		clients[i] = ac
		e.defer_(c.Close)
	}

	send := newEventSender(e, sim, base, o)
	defer send.stop()
	// Warm-up: once ingest has every camera, one event per camera raises
	// its alert (repeated for a camera whose first event came before its
	// session played); then each alert's count is the event counter.
	if o.Source == "onvif" {
		reg := node.app.Registry()
		if err := waitFor(ctx, 60*time.Second, func() bool { return counterSum(reg, "vigil_camera_up") >= float64(o.Cameras) }); err != nil {
			return nil, fmt.Errorf("cameras up: %w", err)
		}
	}
	seenBy := func(i int) (lo, hi int64) {
		lo = 1 << 62
		for _, ac := range clients {
			ac.mu.Lock()
			lo, hi = min(lo, ac.seen[i]), max(hi, ac.seen[i])
			ac.mu.Unlock()
		}
		return lo, hi
	}
	settled := false
	for range 30 {
		settled = true
		for i := range o.Cameras {
			if lo, hi := seenBy(i); lo == 0 || lo != hi {
				settled = false
				if hi == 0 {
					if err := send.send(ctx, i); err != nil {
						return nil, fmt.Errorf("warm-up: %w", err)
					}
				}
			}
		}
		if settled {
			break
		}
		time.Sleep(time.Second)
	}
	if !settled {
		return nil, fmt.Errorf("warm-up: the cameras' first alerts did not reach every client within 30s")
	}
	for i := range o.Cameras {
		_, hi := seenBy(i)
		counts[i].Store(hi)
		for _, ac := range clients {
			ac.mu.Lock()
			ac.from[i] = hi + 1
			ac.mu.Unlock()
		}
	}
	log.Info("alerts: warm-up done; measuring", "duration", o.Duration)

	cpu0 := sampleSelf()
	start := time.Now()
	var total int64
	tick := time.NewTicker(2 * time.Millisecond)
	cam := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			el := now.Sub(start)
			if el >= o.Duration {
				break loop
			}
			due := int64(float64(o.Rate) * el.Seconds())
			for ; total < due; total++ {
				c := counts[cam].Add(1)
				if c >= int64(len(sent[cam])) {
					counts[cam].Add(-1)
					break loop
				}
				sent[cam][c].Store(time.Now().UnixNano())
				if err := send.send(ctx, cam); err != nil {
					return nil, err
				}
				cam = (cam + 1) % o.Cameras
			}
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	send.flush()
	waitErr := waitAll(ctx, 20*time.Second, clients, counts)
	cpu1 := sampleSelf()

	res := &alertsResult{Scenario: "alerts", Options: o, DurationS: round(elapsed.Seconds(), 2), EventsSent: total,
		RateAchieved: round(float64(total)/elapsed.Seconds(), 1), Machine: describeMachine(),
		CPUCores: round(float64(cpu1.cpu-cpu0.cpu)/float64(cpu1.at.Sub(cpu0.at)), 2)}
	res.Target = "p99 <= 25 ms embedded, <= 40 ms redis (DESIGN.md)"
	var all []int32
	for _, ac := range clients {
		ac.mu.Lock()
		for i := range o.Cameras {
			want := counts[i].Load() - (ac.from[i] - 1)
			got := ac.seen[i] - (ac.from[i] - 1)
			res.Expected += want
			res.Delivered += min(got, want)
			res.Missing += max(0, want-got)
		}
		res.Duplicates += ac.dups
		res.SeqGaps += ac.gaps
		all = append(all, ac.lat...)
		ac.mu.Unlock()
		if ac.c.CloseCode() != 0 {
			res.Closed++
		}
	}
	res.Latency = percentiles(all)
	res.Dropped = int64(counterSum(node.app.Registry(), "vigil_alert_events_dropped_total"))
	var chk check
	if waitErr != nil {
		chk.failf("%v", waitErr)
	}
	if res.Missing > 0 || res.Duplicates > 0 || res.SeqGaps > 0 || res.Closed > 0 {
		chk.failf("delivery: %d missing, %d duplicates, %d seq gaps, %d clients closed", res.Missing, res.Duplicates, res.SeqGaps, res.Closed)
	}
	if send.errors.Load() > 0 {
		chk.failf("%d events not accepted by the source", send.errors.Load())
	}
	return res, chk.err()
}

func percentiles(us []int32) latency {
	if len(us) == 0 {
		return latency{}
	}
	slices.Sort(us)
	at := func(q float64) float64 {
		i := int(q * float64(len(us)-1))
		return round(float64(us[i])/1000, 3)
	}
	return latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: round(float64(us[len(us)-1])/1000, 3)}
}

func camIndex(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, "cam-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// waitAll waits until every client has seen the latest count of every
// camera.
func waitAll(ctx context.Context, d time.Duration, clients []*alertClient, counts []atomic.Int64) error {
	deadline := time.Now().Add(d)
	for {
		behind := 0
		for _, ac := range clients {
			ac.mu.Lock()
			for i := range counts {
				if ac.seen[i] < counts[i].Load() {
					behind++
				}
			}
			ac.mu.Unlock()
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d client×camera pairs still behind after %v", behind, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventSender raises line-crossing pulses on a camera, either on its ONVIF
// metadata track (camsim) or through the generic webhook. Every pulse on a
// camera bumps that camera's one alert, so the alert's count names the
// event.
type eventSender struct {
	sim    *camsim.Server
	o      alertsOpts
	url    string
	key    string
	queues []chan struct{}
	wg     sync.WaitGroup
	errors atomic.Int64
}

func newEventSender(e *env, sim *camsim.Server, base string, o alertsOpts) *eventSender {
	s := &eventSender{sim: sim, o: o, url: base, key: e.tokens.hook}
	if o.Source == "hook" {
		// One worker per camera keeps each camera's events in order.
		for i := range o.Cameras {
			q := make(chan struct{}, 4096)
			s.queues = append(s.queues, q)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				url := fmt.Sprintf("%s/api/v1/hooks/cam-%d/events?key=%s", base, i, s.key)
				for range q {
					resp, err := client.Post(url, "application/json", strings.NewReader(`{"type":"line_crossing","state":"pulse","key":"line-1"}`))
					if err != nil {
						s.errors.Add(1)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						s.errors.Add(1)
					}
				}
			}()
		}
	}
	return s
}

func (s *eventSender) send(ctx context.Context, cam int) error {
	if s.o.Source == "hook" {
		select {
		case s.queues[cam] <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sent, err := s.sim.Trigger(fmt.Sprintf("cam/%d", cam), camsim.LineCrossing, camsim.Pulse)
	if err != nil {
		return err
	}
	if !sent.Delivered {
		s.errors.Add(1)
	}
	return nil
}

// flush waits until queued webhook requests are sent.
func (s *eventSender) flush() {
	for _, q := range s.queues {
		for len(q) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (s *eventSender) stop() {
	for _, q := range s.queues {
		close(q)
	}
	s.queues = nil
	s.wg.Wait()
}
