package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// alertSnapResult is the alert-snapshot scenario's result: how long after
// an event the desk has the alert's picture.
type alertSnapResult struct {
	Cameras int     `json:"cameras"`
	Rounds  int     `json:"rounds"`
	GOPS    float64 `json:"gop_s"`
	Mbps    float64 `json:"mbps"`
	// Alerts raised and alerts whose snapshot reached the desk.
	Raised      int `json:"alerts_raised"`
	WithPicture int `json:"alerts_with_snapshot"`
	// From the event accepted (202) to the desk receiving the alert's
	// snapshot change: what the duty officer waits for.
	DeskP50Ms float64 `json:"desk_p50_ms"`
	DeskP95Ms float64 `json:"desk_p95_ms"`
	DeskMaxMs float64 `json:"desk_max_ms"`
	// From raised_at to the keyframe pictured: the wait the rule
	// ("the first keyframe at or after raised_at") imposes, bounded by the
	// camera's GOP.
	KeyWaitP50Ms float64 `json:"keyframe_wait_p50_ms"`
	KeyWaitP95Ms float64 `json:"keyframe_wait_p95_ms"`
	// The service's own vigil_alert_snapshot_seconds (raise → stored), as
	// bucket upper bounds.
	ServerP50MaxS float64 `json:"server_p50_at_most_s"`
	ServerP95MaxS float64 `json:"server_p95_at_most_s"`
	Machine       machine `json:"machine"`
}

func runAlertSnap(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("alertsnap", flag.ContinueOnError)
	cameras := fs.Int("cameras", 8, "simulated cameras, each raising one alert per round at the same moment")
	rounds := fs.Int("rounds", 10, "rounds of one alert per camera, 3 s apart (alerts of one camera within 2 s share a picture)")
	gop := fs.Int("gop", 25, "keyframe interval of the generated clip, frames at 25 fps (25 = 1 s, 50 = 2 s)")
	mbps := fs.Float64("mbps", 4, "bitrate of the generated clip, Mbit/s")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *cameras < 1 || *rounds < 1 || *gop < 1 {
		return nil, fmt.Errorf("cameras, rounds and gop must be positive")
	}
	res, err := alertSnapBench(ctx, log, *cameras, *rounds, *gop, *mbps)
	if res != nil {
		summary(os.Stderr, fmt.Sprintf("alert snapshots: %d cameras x %d rounds, GOP %.1f s, %.1f Mbit/s 1920x1080", *cameras, *rounds, res.GOPS, *mbps),
			"alerts with a snapshot", fmt.Sprintf("%d of %d", res.WithPicture, res.Raised),
			"event -> snapshot at the desk", fmt.Sprintf("p50 %.0f ms, p95 %.0f ms (target <= 1500: %s), max %.0f ms", res.DeskP50Ms, res.DeskP95Ms, passFail(res.DeskP95Ms <= 1500), res.DeskMaxMs),
			"raised_at -> keyframe pictured", fmt.Sprintf("p50 %.0f ms, p95 %.0f ms", res.KeyWaitP50Ms, res.KeyWaitP95Ms),
			"vigil_alert_snapshot_seconds", fmt.Sprintf("p50 <= %.2f s, p95 <= %.2f s", res.ServerP50MaxS, res.ServerP95MaxS))
	}
	return res, err
}

func alertSnapBench(ctx context.Context, log *slog.Logger, cameras, rounds, gop int, mbps float64) (*alertSnapResult, error) {
	ctx, cancel := bounded(ctx, time.Duration(rounds)*3*time.Second+3*time.Minute)
	defer cancel()
	const size = "1920x1080"
	clip, err := clipFileGOP(log, size, mbps, gop)
	if err != nil {
		return nil, err
	}
	bin, err := vigilBinary(log)
	if err != nil {
		return nil, err
	}
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := e.startCamsimChild(cameras, clip, false)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sc := serviceConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port)}
	for i := range cameras {
		sc.Cameras = append(sc.Cameras, cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: fmt.Sprintf("rtsp://%s/cam/%d", sim.rtsp, i), Record: true})
	}
	cfgPath, err := e.writeConfig("node", sc)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if _, err := e.startChild(filepath.Join(filepath.Dir(cfgPath), "vigil.log"), nil, bin, "serve", "-config", cfgPath); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, base+"/healthz", 20*time.Second); err != nil {
		return nil, err
	}
	// Every camera up, with a GOP or two in the live cache.
	if err := waitCamerasUp(ctx, base, e.tokens.admin, cameras, 30*time.Second); err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second)

	// The desk: every alert's raise and its snapshot change, by key.
	type seen struct {
		posted, snapAt time.Time
		raisedAt, key  time.Time
	}
	var mu sync.Mutex
	byKey := map[string]*seen{}
	conn, _, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).DialContext(ctx,
		"ws"+strings.TrimPrefix(base, "http")+"/api/v1/alerts/stream", http.Header{"Authorization": {"Bearer " + e.tokens.desk}})
	if err != nil {
		return nil, fmt.Errorf("desk stream: %w", err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			var m struct {
				Kind  string `json:"kind"`
				Alert struct {
					Key      string    `json:"key"`
					RaisedAt time.Time `json:"raised_at"`
					Snapshot *struct {
						At time.Time `json:"at"`
					} `json:"snapshot"`
				} `json:"alert"`
			}
			if json.Unmarshal(b, &m) != nil || m.Alert.Snapshot == nil {
				continue
			}
			mu.Lock()
			if s, ok := byKey[m.Alert.Key]; ok && s.snapAt.IsZero() {
				s.snapAt, s.raisedAt, s.key = now, m.Alert.RaisedAt, m.Alert.Snapshot.At
			}
			mu.Unlock()
		}
	}()
	defer func() {
		conn.Close()
		<-readDone
	}()

	res := &alertSnapResult{Cameras: cameras, Rounds: rounds, GOPS: float64(gop) / 25, Mbps: mbps, Machine: describeMachine()}
	for r := range rounds {
		if r > 0 {
			// 3 s and a random part of a second apart, so that the raises
			// fall at every phase of the cameras' GOPs.
			select {
			case <-time.After(3*time.Second + time.Duration(rand.Int64N(int64(time.Second)))):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		var wg sync.WaitGroup
		for c := range cameras {
			key := fmt.Sprintf("r%d-c%d", r, c)
			wg.Go(func() {
				s := &seen{}
				mu.Lock()
				byKey[key] = s
				mu.Unlock()
				posted := time.Now()
				if code := postEvent(ctx, base, fmt.Sprintf("cam-%d", c), e.tokens.hook, "intrusion", "pulse", key); code != http.StatusAccepted {
					mu.Lock()
					delete(byKey, key)
					mu.Unlock()
					log.Warn("event refused", "camera", c, "status", code)
					return
				}
				mu.Lock()
				s.posted = posted
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	// Wait for the last pictures (the rule allows up to 3 s for a keyframe).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		missing := 0
		for _, s := range byKey {
			if s.snapAt.IsZero() {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var desk, wait []float64
	mu.Lock()
	res.Raised = len(byKey)
	for _, s := range byKey {
		if s.snapAt.IsZero() {
			continue
		}
		desk = append(desk, float64(s.snapAt.Sub(s.posted).Microseconds())/1000)
		wait = append(wait, float64(s.key.Sub(s.raisedAt).Microseconds())/1000)
	}
	mu.Unlock()
	res.WithPicture = len(desk)
	q := func(v []float64, p float64) float64 {
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return round(v[min(len(v)-1, max(0, int(math.Ceil(p*float64(len(v))))-1))], 1)
	}
	res.DeskP50Ms, res.DeskP95Ms, res.DeskMaxMs = q(desk, 0.5), q(desk, 0.95), q(desk, 1)
	res.KeyWaitP50Ms, res.KeyWaitP95Ms = q(wait, 0.5), q(wait, 0.95)
	if h, err := scrapeHistogram(ctx, base+"/metrics", "vigil_alert_snapshot_seconds"); err == nil {
		res.ServerP50MaxS, res.ServerP95MaxS = h.quantileBound(0.5), h.quantileBound(0.95)
	}
	var chk check
	if res.WithPicture != res.Raised {
		chk.failf("%d of %d alerts got no snapshot", res.Raised-res.WithPicture, res.Raised)
	}
	return res, chk.err()
}

// waitCamerasUp waits until the node reports n cameras up.
func waitCamerasUp(ctx context.Context, base, token string, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var cams struct {
			Cameras []struct {
				Status string `json:"status"`
			} `json:"cameras"`
		}
		up := 0
		if code, err := doJSON(ctx, "GET", base+"/api/v1/cameras", token, nil, &cams); err == nil && code == http.StatusOK {
			for _, c := range cams.Cameras {
				if c.Status == "online" {
					up++
				}
			}
		}
		if up >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d cameras up after %v", up, n, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
