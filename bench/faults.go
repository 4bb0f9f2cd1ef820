package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"vigil/internal/camsim"
)

type faultsOpts struct {
	Drill        string        `json:"drill"`
	Restarts     int           `json:"restarts"`
	Kills        int           `json:"kills"`
	KillEvery    time.Duration `json:"-"`
	KillCameras  int           `json:"kill_cameras"`
	RedisStop    time.Duration `json:"-"`
	AbuseRate    int           `json:"abuse_rate"`
	AbuseFor     time.Duration `json:"-"`
	SlowEvents   int           `json:"slow_events"`
	TrickleConns int           `json:"trickle_conns"`
	TrickleFor   time.Duration `json:"-"`
	VerifyEvery  time.Duration `json:"-"`
}

// drill is one fault drill; it returns its report and an error for what
// went wrong (lost, duplicated, crashed).
type drill func(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error)

var drillOrder = []string{"camera-restarts", "vigil-kill", "redis-outage", "slow-client", "malformed", "slow-bodies", "tamper"}

func drills() map[string]drill {
	return map[string]drill{
		"camera-restarts": drillCameraRestarts,
		"vigil-kill":      drillVigilKill,
		"redis-outage":    drillRedisOutage,
		"slow-client":     drillSlowClient,
		"malformed":       drillMalformed,
		"slow-bodies":     drillSlowBodies,
		"tamper":          drillTamper,
	}
}

type faultsResult struct {
	Scenario string                    `json:"scenario"`
	Options  faultsOpts                `json:"options"`
	Drills   map[string]map[string]any `json:"drills"`
	Failed   []string                  `json:"failed"`
	Seconds  float64                   `json:"seconds"`
	Machine  machine                   `json:"machine"`
}

func faultsFlags(o *faultsOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	fs.StringVar(&o.Drill, "drill", "all", "all | "+strings.Join(drillOrder, " | "))
	fs.IntVar(&o.Restarts, "restarts", 20, "camera-restarts: stop/restart cycles")
	fs.IntVar(&o.Kills, "kills", 5, "vigil-kill: SIGKILL cycles")
	fs.DurationVar(&o.KillEvery, "kill-every", 20*time.Second, "vigil-kill: recording time between kills")
	fs.IntVar(&o.KillCameras, "kill-cameras", 8, "vigil-kill: cameras recorded")
	fs.DurationVar(&o.RedisStop, "redis-stop", 30*time.Second, "redis-outage: how long Redis is stopped (SIGSTOP)")
	fs.IntVar(&o.AbuseRate, "abuse-rate", 1000, "malformed: requests per second")
	fs.DurationVar(&o.AbuseFor, "abuse-for", 10*time.Second, "malformed: how long")
	fs.DurationVar(&o.VerifyEvery, "verify-every", 10*time.Second, "tamper: storage.verify_every of the node")
	fs.IntVar(&o.SlowEvents, "slow-events", 30000, "slow-client: at most this many events raised while one client does not read")
	fs.IntVar(&o.TrickleConns, "trickle-conns", 300, "slow-bodies: unauthenticated POST /api/v1/session trickling their bodies")
	fs.DurationVar(&o.TrickleFor, "trickle-for", 30*time.Second, "slow-bodies: how long")
	return fs
}

func runFaults(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	o := faultsOpts{}
	if err := faultsFlags(o2p(&o)).Parse(args); err != nil {
		return nil, err
	}
	res, err := faultsBench(ctx, log, o)
	if res != nil {
		kv := []any{}
		for _, name := range drillOrder {
			if r, ok := res.Drills[name]; ok {
				kv = append(kv, name, fmt.Sprintf("%v", r))
			}
		}
		kv = append(kv, "failed", fmt.Sprint(res.Failed), "took", fmt.Sprintf("%.0fs", res.Seconds))
		summary(os.Stderr, "fault drills", kv...)
	}
	return res, err
}

func o2p(o *faultsOpts) *faultsOpts { return o }

func faultsBench(ctx context.Context, log *slog.Logger, o faultsOpts) (*faultsResult, error) {
	ctx, cancel := bounded(ctx, 10*time.Minute)
	defer cancel()
	names := drillOrder
	if o.Drill != "all" && o.Drill != "" {
		if _, ok := drills()[o.Drill]; !ok {
			return nil, fmt.Errorf("unknown drill %q: want all or one of %s", o.Drill, strings.Join(drillOrder, ", "))
		}
		names = []string{o.Drill}
	}
	res := &faultsResult{Scenario: "faults", Options: o, Drills: map[string]map[string]any{}, Failed: []string{}, Machine: describeMachine()}
	start := time.Now()
	var errs []string
	for _, name := range names {
		log.Info("drill", "name", name)
		r, err := drills()[name](ctx, log, o)
		if r == nil {
			r = map[string]any{}
		}
		if err != nil {
			r["error"] = err.Error()
			res.Failed = append(res.Failed, name)
			errs = append(errs, name+": "+err.Error())
		}
		res.Drills[name] = r
	}
	res.Seconds = round(time.Since(start).Seconds(), 1)
	if len(errs) > 0 {
		return res, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return res, nil
}

// simInProcess starts camsim in this process with the small built-in clip.
func simInProcess(ctx context.Context, e *env, n int, events bool) (*camsim.Server, error) {
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", NoUDP: true, Cameras: camsim.Cameras(n, events), SyncEvery: -1})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = sim.Run(ctx); close(done) }()
	e.defer_(func() { stop(); <-done })
	return sim, nil
}

func simCameras(sim *camsim.Server, n int, record, onvif bool) []cameraConfig {
	out := make([]cameraConfig, n)
	for i := range out {
		out[i] = cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: sim.URL(fmt.Sprintf("cam/%d", i)), Record: record, ONVIF: onvif}
	}
	return out
}

// drillCameraRestarts stops and restarts a recorded camera o.Restarts
// times: every reconnect within the backoff cap (10 s plus jitter), every
// segment playable, and the outages listed as gaps.
func drillCameraRestarts(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := simInProcess(ctx, e, 2, false)
	if err != nil {
		return nil, err
	}
	node, err := e.startNode(ctx, serviceConfig{
		Storage: "dir: ./recordings, segment: 10s, part: 1s, retain: 1d, min_free_bytes: 0, fsync: part",
		Cameras: simCameras(sim, 2, true, false),
	})
	if err != nil {
		return nil, err
	}
	reg := node.app.Registry()
	frames := func() float64 { return counterWhere(reg, "vigil_ingest_frames_total", "camera", "cam-0") }
	if err := waitFor(ctx, 30*time.Second, func() bool { return frames() > 50 }); err != nil {
		return nil, fmt.Errorf("camera never delivered frames: %w", err)
	}
	const capWithJitter = 12500 * time.Millisecond // ingest backoff Max 10s, jitter ±25% at most
	const outage, gapTolerance = 2 * time.Second, 500 * time.Millisecond
	var reconnects []time.Duration
	var chk check
	for i := range o.Restarts {
		if err := sim.Fault("cam/0", camsim.FaultStop); err != nil {
			return nil, err
		}
		// The outage must be well above the gap tolerance below: a shorter
		// one can meet a reconnect attempt right after the restart and leave
		// a gap that arrival jitter alone hides.
		time.Sleep(outage)
		before := frames()
		t := time.Now()
		if err := sim.Fault("cam/0", camsim.FaultRestart); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, 3*capWithJitter, func() bool { return frames() > before+5 }); err != nil {
			chk.failf("restart %d: no frames within %v", i+1, 3*capWithJitter)
			continue
		}
		d := time.Since(t)
		reconnects = append(reconnects, d)
		if d > capWithJitter {
			chk.failf("restart %d: reconnect took %v, above the backoff cap", i+1, d.Round(time.Millisecond))
		}
		time.Sleep(1500 * time.Millisecond)
	}
	ctrlFrames := counterWhere(reg, "vigil_ingest_frames_total", "camera", "cam-1")
	recon := counterWhere(reg, "vigil_camera_reconnects_total", "camera", "cam-0")
	if err := node.Stop(); err != nil {
		chk.failf("stop: %v", err)
	}
	storage := filepath.Join(filepath.Dir(node.cfg.Path), "recordings")
	segs := indexSegments(storage, "cam-0")
	gaps := gapsOf(segs, gapTolerance)
	checked, failures := probeAll(ctx, filepath.Join(storage, "cam-0"), nil)
	if len(failures) > 0 {
		chk.failf("%d of %d segments do not play: %s", len(failures), checked, failures[0])
	}
	if len(gaps) < o.Restarts {
		chk.failf("%d gaps listed for %d outages", len(gaps), o.Restarts)
	}
	if gc := gapsOf(indexSegments(storage, "cam-1"), gapTolerance); len(gc) > 0 {
		chk.failf("the untouched camera has %d gaps", len(gc))
	}
	slices.Sort(reconnects)
	r := map[string]any{
		"restarts": o.Restarts, "reconnected": len(reconnects), "reconnects_metric": recon,
		"segments": len(segs), "segments_probed": checked, "unplayable": len(failures), "gaps": len(gaps),
		"control_camera_frames": ctrlFrames,
	}
	if len(reconnects) > 0 {
		r["reconnect_p50_ms"] = reconnects[len(reconnects)/2].Milliseconds()
		r["reconnect_max_ms"] = reconnects[len(reconnects)-1].Milliseconds()
	}
	return r, chk.err()
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// eventGen posts generic events with distinct keys at a steady rate and
// remembers which were accepted (202).
type eventGen struct {
	mu       sync.Mutex
	accepted map[string]bool
	refused  map[int]int
	n        atomic.Int64
	stopped  atomic.Bool
	done     chan struct{}
}

func startEventGen(ctx context.Context, base func() string, hookKey string, cameras, perSecond int) *eventGen {
	return startEventGenKeyed(ctx, base, hookKey, cameras, perSecond, true)
}

// startEventGenKeyed is startEventGen; with distinct false every event of a
// camera has the same key, so it bumps that camera's one alert (each bump
// is still a change sent to the desks) and the number of alerts stays
// small.
func startEventGenKeyed(ctx context.Context, base func() string, hookKey string, cameras, perSecond int, distinct bool) *eventGen {
	g := &eventGen{accepted: map[string]bool{}, refused: map[int]int{}, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for !g.stopped.Load() && ctx.Err() == nil {
			<-tick.C
			i := g.n.Add(1)
			key := fmt.Sprintf("k-%d", i)
			cam := fmt.Sprintf("cam-%d", int(i)%cameras)
			if !distinct {
				key = "line-" + cam
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				st := postEvent(ctx, base(), cam, hookKey, "io_alarm", "pulse", key)
				g.mu.Lock()
				if st == 202 {
					g.accepted[key] = true
				} else {
					g.refused[st]++
				}
				g.mu.Unlock()
			}()
		}
		wg.Wait()
	}()
	return g
}

func (g *eventGen) stop() map[string]bool {
	g.stopped.Store(true)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepted
}

// drillVigilKill runs Vigil as a child process and SIGKILLs it every
// o.KillEvery while it records o.KillCameras cameras and raises alerts.
func drillVigilKill(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	bin, err := vigilBinary(log)
	if err != nil {
		return nil, err
	}
	sim, err := simInProcess(ctx, e, o.KillCameras, false)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath, err := e.writeConfig("node", serviceConfig{
		Listen:  fmt.Sprintf("127.0.0.1:%d", port),
		Storage: "dir: ./recordings, segment: 60s, part: 1s, retain: 1d, min_free_bytes: 0, fsync: part",
		Cameras: simCameras(sim, o.KillCameras, true, false),
	})
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	storage := filepath.Join(filepath.Dir(cfgPath), "recordings")
	logPath := filepath.Join(filepath.Dir(cfgPath), "vigil.log")
	start := func() (*child, error) {
		c, err := e.startChild(logPath, nil, bin, "serve", "-config", cfgPath)
		if err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, base+"/healthz", 20*time.Second); err != nil {
			return nil, err
		}
		return c, nil
	}
	node, err := start()
	if err != nil {
		return nil, err
	}
	gen := startEventGen(ctx, func() string { return base }, e.tokens.hook, o.KillCameras, 20)
	dk := startDesk(ctx, func() string { return base }, e.tokens.desk)
	var chk check
	var lossMs []int64
	probed := map[string]bool{}
	var probedN, unplayable int
	var restartMs []int64
	for k := range o.Kills {
		select {
		case <-time.After(o.KillEvery):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		killAt := time.Now()
		node.Kill(syscall.SIGKILL)
		t := time.Now()
		if node, err = start(); err != nil {
			return nil, fmt.Errorf("restart %d: %w", k+1, err)
		}
		restartMs = append(restartMs, time.Since(t).Milliseconds())
		// Recovery has indexed the cut segments: each must play, and the
		// media lost before the kill must be at most one part (1 s).
		n, fails := probeAll(ctx, storage, probed)
		probedN += n
		unplayable += len(fails)
		for _, f := range fails {
			chk.failf("kill %d: %s", k+1, f)
		}
		for i := range o.KillCameras {
			segs := indexSegments(storage, fmt.Sprintf("cam-%d", i))
			var last time.Time
			for _, s := range segs {
				if !s.End.After(killAt.Add(time.Second)) && s.End.After(last) {
					last = s.End
				}
			}
			lost := killAt.Sub(last)
			lossMs = append(lossMs, lost.Milliseconds())
			if lost > 1500*time.Millisecond { // one part plus the 25-fps frame and clock slack
				chk.failf("kill %d: cam-%d lost %v of media", k+1, i, lost.Round(time.Millisecond))
			}
		}
	}
	time.Sleep(2 * time.Second)
	accepted := gen.stop()
	waitKeys(ctx, 15*time.Second, []*desk{dk}, accepted)
	dk.stop()
	missing, dups := dk.keyCheck(accepted)
	// The journal after all the kills: replay from 0 must be contiguous and
	// hold every change the desk was sent, under the same alert.
	replay := map[uint64]string{}
	var replayDups, replayGaps int64
	var lastSeq uint64
	var replayMu sync.Mutex // the desk's reader goroutine fills replay
	rc, err := dialDesk(ctx, base, e.tokens.desk, 0, func(m deskMsg) {
		if m.seq == 0 {
			return
		}
		replayMu.Lock()
		defer replayMu.Unlock()
		if _, ok := replay[m.seq]; ok {
			replayDups++
		}
		if lastSeq != 0 && m.seq > lastSeq+1 {
			replayGaps += int64(m.seq - lastSeq - 1)
		}
		lastSeq = max(lastSeq, m.seq)
		replay[m.seq] = m.id
	})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	_ = waitFor(ctx, 15*time.Second, func() bool {
		replayMu.Lock()
		defer replayMu.Unlock()
		return len(replay) >= int(rc.hello) && rc.hello > 0
	})
	rc.Close()
	replayMu.Lock()
	defer replayMu.Unlock()
	node.Kill(syscall.SIGTERM)
	dk.mu.Lock()
	notInJournal := 0
	for seq, id := range dk.seqs {
		if replay[seq] != id {
			notInJournal++
		}
	}
	dk.mu.Unlock()
	if missing > 0 || dups > 0 {
		chk.failf("alerts: %d accepted events never delivered, %d delivered twice", missing, dups)
	}
	if notInJournal > 0 || replayDups > 0 || replayGaps > 0 {
		chk.failf("journal: %d delivered changes missing after restart, %d duplicate and %d missing seqs in the replay", notInJournal, replayDups, replayGaps)
	}
	slices.Sort(lossMs)
	r := map[string]any{
		"kills": o.Kills, "cameras": o.KillCameras, "restart_ms": restartMs,
		"segments_probed": probedN, "unplayable": unplayable,
		"media_lost_ms_p50": pick(lossMs, 0.5), "media_lost_ms_max": pick(lossMs, 1),
		"events_accepted": len(accepted), "refused_while_down": gen.refused, "events_missing_at_desk": missing, "events_duplicated_at_desk": dups,
		"journal_seqs": len(replay), "delivered_not_in_journal": notInJournal, "replay_duplicates": replayDups, "replay_gaps": replayGaps,
		"desk_reconnects": dk.reconn,
	}
	return r, chk.err()
}

func pick(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	return v[int(q*float64(len(v)-1))]
}

// drillRedisOutage freezes Redis (SIGSTOP) for o.RedisStop and SIGKILLs it
// once during a burst of alerts: every accepted event reaches every desk
// client exactly once.
func drillRedisOutage(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	aof := []string{"--appendonly", "yes", "--appendfsync", "always"}
	rd, err := e.startRedis(port, aof...)
	if err != nil {
		return nil, err
	}
	sim, err := simInProcess(ctx, e, 4, false)
	if err != nil {
		return nil, err
	}
	node, err := e.startNode(ctx, serviceConfig{Journal: "redis " + rd.addr, Cameras: simCameras(sim, 4, false, false)})
	if err != nil {
		return nil, err
	}
	base := node.app.URL()
	desks := startDesks(ctx, 3, func() string { return base }, e.tokens.desk)
	gen := startEventGen(ctx, func() string { return base }, e.tokens.hook, 4, 40)
	time.Sleep(3 * time.Second)
	log.Info("redis-outage: SIGSTOP redis", "for", o.RedisStop)
	_ = rd.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(o.RedisStop)
	_ = rd.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	log.Info("redis-outage: SIGKILL redis during the burst; restart on the same port and AOF")
	rd.Kill(syscall.SIGKILL)
	time.Sleep(time.Second)
	if rd, err = e.startRedis(port, aof...); err != nil {
		return nil, err
	}
	time.Sleep(5 * time.Second)
	accepted := gen.stop()
	waitKeys(ctx, 30*time.Second, desks, accepted)
	var chk check
	r := map[string]any{"events_accepted": len(accepted), "refused": gen.refused, "redis_stopped_s": o.RedisStop.Seconds()}
	spool := counterSum(node.app.Registry(), "vigil_journal_spool_events")
	r["spool_events_at_end"] = spool
	var missT, dupT int
	var gapsT, dupSeq int64
	for i, d := range desks {
		d.stop()
		m, dup := d.keyCheck(accepted)
		missT += m
		dupT += dup
		d.mu.Lock()
		gapsT += d.gaps
		dupSeq += d.dups
		r[fmt.Sprintf("desk%d_reconnects", i)] = d.reconn
		d.mu.Unlock()
	}
	r["missing_at_desks"], r["duplicated_at_desks"], r["seq_gaps"], r["seq_duplicates"] = missT, dupT, gapsT, dupSeq
	if missT > 0 || dupT > 0 {
		chk.failf("%d accepted events missing and %d duplicated at the desks", missT, dupT)
	}
	return r, chk.err()
}

// drillSlowClient raises events while one desk client does not read: it
// must be closed with 4008, the others must be unaffected, and with since it
// must get everything it missed. Completeness is checked on seq: every client
// must hold every seq from its hello to the journal's last one.
func drillSlowClient(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	const cams = 25 // the hooks take 50 requests/s per camera
	sim, err := simInProcess(ctx, e, 1, false)
	if err != nil {
		return nil, err
	}
	cc := make([]cameraConfig, cams)
	for i := range cc {
		cc[i] = cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: sim.URL("cam/0"), Disabled: true}
	}
	node, err := e.startNode(ctx, serviceConfig{Cameras: cc})
	if err != nil {
		return nil, err
	}
	base := node.app.URL()
	desks := startDesks(ctx, 3, func() string { return base }, e.tokens.desk)
	// The slow client: it stops reading after its hello, with a 256 KiB
	// receive buffer. Not smaller: on loopback (64 KiB MSS) a tiny buffer
	// never opens a window worth announcing, so when the client reads again
	// the server learns of it only from zero-window probes seconds apart.
	// Not the default either: it grows to 32 MiB here, and the hub's
	// queue would fill only after the client had been silent past the
	// hub's ping deadline, which ends it without a close frame.
	u := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/alerts/stream"
	slow, _, err := bufferDialer(256<<10).DialContext(ctx, u, map[string][]string{"Authorization": {"Bearer " + e.tokens.desk}})
	if err != nil {
		return nil, err
	}
	defer slow.Close()
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, hb, err := slow.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("slow client hello: %w", err)
	}
	slowHello := parseDeskMsg(hb, time.Now()).seq
	// 400 events/s bumping 25 alerts (16 requests/s per camera, under the
	// hooks' 50): below the engine's ceiling (see alerts), so that only the
	// hub is under test. Raise events until the hub gives up on the slow
	// client (the socket buffers hold a few MB before the hub's queue of
	// 1,000 fills), at most o.SlowEvents events or 90 s.
	genStart := time.Now()
	gen := startEventGenKeyed(ctx, func() string { return base }, e.tokens.hook, cams, 400, false)
	slowClosed := func() bool { return counterSum(node.app.Registry(), "vigil_ws_slow_closed_total") >= 1 }
	_ = waitFor(ctx, 90*time.Second, func() bool { return slowClosed() || gen.n.Load() >= int64(o.SlowEvents) })
	closedAfter := time.Since(genStart)
	// The client reads again at once, as a desk whose tab was frozen for a
	// moment would: what it was sent, then the close.
	slowSeqs := map[uint64]int{}
	var slowLast uint64
	code, readErr := 0, ""
	slowRead := make(chan struct{})
	go func() {
		defer close(slowRead)
		for {
			_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := slow.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code = ce.Code
				} else {
					readErr = err.Error()
				}
				return
			}
			m := parseDeskMsg(b, time.Now())
			if m.seq != 0 {
				slowSeqs[m.seq]++
				slowLast = max(slowLast, m.seq)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	accepted := gen.stop()
	// The journal's last seq: what a new client is told in its hello, once
	// the engine has drained its queue.
	var final uint64
	_ = waitFor(ctx, 30*time.Second, func() bool {
		c, err := dialDesk(ctx, base, e.tokens.desk, -1, nil)
		if err != nil {
			return false
		}
		c.Close()
		done := c.hello == final
		final = c.hello
		time.Sleep(500 * time.Millisecond)
		return done
	})
	<-slowRead // the slow client's close (or read error)
	// Resume with since.
	var mu sync.Mutex
	rc, err := dialDesk(ctx, base, e.tokens.desk, int64(slowLast), func(m deskMsg) {
		mu.Lock()
		if m.seq != 0 {
			slowSeqs[m.seq]++
		}
		mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	complete := func(seqs map[uint64]int, from uint64) (missing, dup int) {
		for q := from + 1; q <= final; q++ {
			switch n := seqs[q]; {
			case n == 0:
				missing++
			case n > 1:
				dup += n - 1
			}
		}
		return missing, dup
	}
	_ = waitFor(ctx, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		m, _ := complete(slowSeqs, slowHello)
		return m == 0
	})
	rc.Close()
	var chk check
	mu.Lock()
	slowMissing, slowDup := complete(slowSeqs, slowHello)
	mu.Unlock()
	r := map[string]any{"events_sent": gen.n.Load(), "alerts": len(accepted), "refused": gen.refused, "final_seq": final,
		"slow_close_code": code, "slow_read_error": readErr, "slow_closed_after_s": round(closedAfter.Seconds(), 1), "slow_read_before_close": slowLast - slowHello,
		"slow_missing_after_resume": slowMissing, "slow_duplicates": slowDup,
		"ws_slow_closed_total": counterSum(node.app.Registry(), "vigil_ws_slow_closed_total"),
		"engine_dropped":       counterSum(node.app.Registry(), "vigil_alert_events_dropped_total")}
	if code != 4008 {
		chk.failf("slow client closed with %d, want 4008", code)
	}
	if slowMissing > 0 || slowDup > 0 {
		chk.failf("slow client after resume: %d seqs missing, %d duplicated", slowMissing, slowDup)
	}
	_ = waitFor(ctx, 20*time.Second, func() bool {
		for _, d := range desks {
			d.mu.Lock()
			last := d.last
			d.mu.Unlock()
			if last < final {
				return false
			}
		}
		return true
	})
	for i, d := range desks {
		d.stop()
		d.mu.Lock()
		behind := final - min(final, d.last)
		r[fmt.Sprintf("desk%d", i)] = fmt.Sprintf("behind %d, seq gaps %d, duplicates %d, reconnects %d", behind, d.gaps, d.dups, d.reconn)
		if behind > 0 || d.gaps > 0 || d.dups > 0 || d.reconn > 0 {
			chk.failf("desk %d affected: behind %d, seq gaps %d, duplicates %d, reconnects %d", i, behind, d.gaps, d.dups, d.reconn)
		}
		d.mu.Unlock()
	}
	return r, chk.err()
}
