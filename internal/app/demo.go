package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/camsim"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	// Dir holds the demo's configuration, recordings and journal; default
	// ./data-demo.
	Dir string
	// Listen is the desk and API address; default 127.0.0.1:8080.
	Listen string
	// Out gets the URL and the tokens, once the app answers.
	Out io.Writer
	// Logger; default text logs at info on stderr.
	Logger *slog.Logger
	// Started, when not nil, is called with the running App.
	Started func(*App)
}

// demoCameras are the four simulated cameras of the design contract's "vigil demo".
var demoCameras = []struct{ id, name, site, grid, location string }{
	{"hall-entrance", "服务大厅入口", "hall", "G03", "中心一楼大厅"},
	{"hall-counter", "服务大厅受理窗口", "hall", "G03", "中心一楼综合受理窗口"},
	{"mediation-room", "矛盾纠纷调解室", "hall", "G03", "中心二楼调解室"},
	{"key-site-gate", "重点部位大门", "key-site", "G07", "镇政府东门"},
}

// demoSchedule raises something to look at soon after start, then keeps a
// realistic rhythm: motion in the hall about every minute, an intrusion at
// the gate every few minutes, a tamper now and then.
func demoSchedule() []camsim.ScheduledEvent {
	return []camsim.ScheduledEvent{
		{Camera: "cam/hall-entrance", Type: camsim.Motion, State: camsim.Active, After: 8 * time.Second, Every: 70 * time.Second, Hold: 12 * time.Second},
		{Camera: "cam/hall-counter", Type: camsim.CellMotion, State: camsim.Active, After: 40 * time.Second, Every: 95 * time.Second, Hold: 8 * time.Second},
		{Camera: "cam/key-site-gate", Type: camsim.Intrusion, State: camsim.Active, After: 15 * time.Second, Every: 200 * time.Second, Hold: 20 * time.Second},
		{Camera: "cam/key-site-gate", Type: camsim.LineCrossing, State: camsim.Pulse, After: 60 * time.Second, Every: 150 * time.Second},
		{Camera: "cam/mediation-room", Type: camsim.Tamper, State: camsim.Active, After: 120 * time.Second, Every: 420 * time.Second, Hold: 15 * time.Second},
	}
}

// Demo runs the whole service on the embedded journal with four simulated
// cameras until ctx ends.
func Demo(ctx context.Context, o DemoOptions) error {
	if o.Dir == "" {
		o.Dir = "./data-demo"
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	specs := make([]camsim.CameraSpec, 0, len(demoCameras))
	for _, c := range demoCameras {
		specs = append(specs, camsim.CameraSpec{Path: "cam/" + c.id, Events: true})
	}
	sim, err := camsim.New(camsim.Options{
		Listen:   "127.0.0.1:0",
		NoUDP:    true,
		Cameras:  specs,
		Schedule: demoSchedule(),
		Logger:   o.Logger, // camsim names its own component
	})
	if err != nil {
		return fmt.Errorf("demo: cameras: %w", err)
	}

	tokens := demoTokens{Desk: auth.NewToken(), Investigator: auth.NewToken(), Admin: auth.NewToken()}
	cfgPath, err := writeDemoConfig(o.Dir, o.Listen, sim.URL, tokens)
	if err != nil {
		return err
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	a, err := New(Options{Config: cfg, Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if o.Started != nil {
		o.Started(a)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sim.Run(gctx) })
	g.Go(func() error { return a.Run(gctx) })
	g.Go(func() error { return demoOutages(gctx, sim) })
	g.Go(func() error {
		// The block comes after the start-up log lines, where a newcomer
		// looks, once the app answers.
		if waitServing(gctx, a) {
			tokens.print(o.Out, a.URL(), o.Dir)
		}
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// demoTokens are the demo's fresh tokens, one per role; they exist only
// in this process and in the hashes of the config it writes.
type demoTokens struct{ Desk, Investigator, Admin string }

func (t demoTokens) print(w io.Writer, url, dir string) {
	fmt.Fprintf(w, `
Vigil demo: four simulated cameras; configuration, recordings and journal under %s
  url:                %s/
  desk token:         %s   (the alert board, 应急值守台)
  investigator token: %s   (footage)
  admin token:        %s   (cameras, audit)
The tokens are valid until this demo stops; each start makes new ones.
Ctrl-C stops the demo.

`, dir, url, t.Desk, t.Investigator, t.Admin)
}

// waitServing waits until a answers /healthz, or ctx ends (false).
func waitServing(ctx context.Context, a *App) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL()+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// demoOutages takes the mediation-room camera offline for a while every few
// minutes, so the camera panel and the camera_offline alert have something
// to show.
func demoOutages(ctx context.Context, sim *camsim.Server) error {
	const cam = "cam/mediation-room"
	t := time.NewTimer(3 * time.Minute)
	defer t.Stop()
	down := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fault, next := camsim.FaultStop, 50*time.Second
		if down {
			fault, next = camsim.FaultRestart, 6*time.Minute
		}
		if err := sim.Fault(cam, fault); err != nil {
			return fmt.Errorf("demo outage: %w", err)
		}
		down = !down
		t.Reset(next)
	}
}

// writeDemoConfig writes vigil.yaml and cameras.yaml for the demo, so that
// the demo runs through the same loader, validation and reload as a real
// deployment.
func writeDemoConfig(dir, listen string, cameraURL func(path string) string, tokens demoTokens) (string, error) {
	vigil := fmt.Sprintf(`# Written by "vigil demo"; rewritten at every start.
listen: %s
storage: {dir: ./recordings, segment: 10s, part: 1s, retain: 1d, min_free_bytes: 100MiB}
journal: {backend: embedded, path: ./journal.db}
auth:
  tokens:
    - {name: desk-demo, role: desk, sha256: %s}
    - {name: investigator-demo, role: investigator, sha256: %s}
    - {name: admin-demo, role: admin, sha256: %s}
metrics_public: true
ingest: {offline_after: 30s}
alerts:
  units: [{id: police, name: 派出所}, {id: zongzhi, name: 综治办}, {id: sifa, name: 司法所}]
  rules:
    - {match: {type: intrusion, site: key-site}, severity: critical, ack_within: 2m, resolve_within: 30m, dispatch_to: police, cooldown: 30s}
    - {match: {type: line_crossing, site: key-site}, severity: critical, ack_within: 2m, resolve_within: 30m, dispatch_to: police, cooldown: 30s}
    - {match: {type: intrusion, site: hall}, severity: major, ack_within: 5m, resolve_within: 1h, dispatch_to: zongzhi, cooldown: 60s}
    - {match: {type: tamper}, severity: major, ack_within: 5m, resolve_within: 2h, dispatch_to: zongzhi, cooldown: 60s}
    - {match: {type: camera_offline}, severity: major, ack_within: 10m, resolve_within: 4h}
    - {match: {type: recording_tampered}, severity: critical, ack_within: 10m, resolve_within: 24h}
    - {match: {}, severity: minor, ack_within: 15m, resolve_within: 24h, cooldown: 60s}
cameras_file: cameras.yaml
sites: [{id: hall, name: 公共服务大厅}, {id: key-site, name: 重点部位}]
`, listen, auth.HashToken(tokens.Desk), auth.HashToken(tokens.Investigator), auth.HashToken(tokens.Admin))
	var cams strings.Builder
	cams.WriteString("# Written by \"vigil demo\": the simulated cameras.\ncameras:\n")
	for _, c := range demoCameras {
		fmt.Fprintf(&cams, "  - {id: %s, name: %s, site: %s, grid: %s, location: %s, url: %q, transport: tcp}\n",
			c.id, c.name, c.site, c.grid, c.location, cameraURL("cam/"+c.id))
	}
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(vigil), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cams.String()), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}
