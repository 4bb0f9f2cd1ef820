package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"vigil/configs"
	"vigil/internal/app"
	"vigil/internal/auth"
)

// env is one scenario's sandbox: a temp dir, tokens, and every process and
// goroutine the scenario started, stopped by Close in reverse order.
type env struct {
	dir    string
	log    *slog.Logger // bench's own progress, on stderr
	tokens tokens

	mu      sync.Mutex
	closers []func()
}

type tokens struct{ desk, investigator, admin, hook string }

func newEnv(log *slog.Logger) (*env, error) {
	dir, err := os.MkdirTemp("", "vigil-bench-*")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, log: log, tokens: tokens{
		desk: auth.NewToken(), investigator: auth.NewToken(), admin: auth.NewToken(), hook: "hook-" + auth.NewToken()[:16],
	}}
	return e, nil
}

func (e *env) defer_(f func()) {
	e.mu.Lock()
	e.closers = append(e.closers, f)
	e.mu.Unlock()
}

// Close stops everything the scenario started and removes its files.
func (e *env) Close() {
	e.mu.Lock()
	cl := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		cl[i]()
	}
	if os.Getenv("VIGIL_BENCH_KEEP") == "" {
		_ = os.RemoveAll(e.dir)
	} else {
		e.log.Info("kept the scenario's files", "dir", e.dir)
	}
}

// serviceConfig is what varies between scenarios in vigil.yaml.
type serviceConfig struct {
	Listen   string // default 127.0.0.1:0
	Storage  string // YAML flow mapping without braces; default below
	Journal  string // embedded (default) or "redis ADDR"
	Cameras  []cameraConfig
	LogLevel string
	// MaxViewers is live.max_viewers; default 32. The live UDP port is
	// always a free one (udp_port: 0).
	MaxViewers int
	// MaxEventAge is alerts.max_event_age; default the service's.
	MaxEventAge string
	// Node is the node: mapping without braces (cluster scenarios).
	Node string
}

type cameraConfig struct {
	ID       string
	URL      string
	Record   bool
	ONVIF    bool
	Site     string
	Disabled bool
}

// writeConfig writes vigil.yaml and cameras.yaml into sub (below e.dir) and
// returns the path of vigil.yaml.
func (e *env) writeConfig(sub string, sc serviceConfig) (string, error) {
	dir := filepath.Join(e.dir, sub)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	if sc.Listen == "" {
		sc.Listen = "127.0.0.1:0"
	}
	if sc.Storage == "" {
		sc.Storage = "dir: ./recordings, segment: 60s, part: 1s, retain: 1d, min_free_bytes: 0, fsync: part"
	}
	journal := "{backend: embedded, path: ./journal.db}"
	if addr, ok := strings.CutPrefix(sc.Journal, "redis "); ok {
		journal = fmt.Sprintf("{backend: redis, path: ./journal.db, redis: {addr: %q, stream_max_len: 1000000}}", addr)
	}
	if sc.LogLevel == "" {
		sc.LogLevel = "warn"
	}
	if sc.MaxViewers <= 0 {
		sc.MaxViewers = 32
	}
	eventAge := ""
	if sc.MaxEventAge != "" {
		eventAge = "\n  max_event_age: " + sc.MaxEventAge
	}
	vigil := fmt.Sprintf(`# Written by bench.
listen: %s
log: {level: %s}
storage: {%s}
journal: %s
auth:
  tokens:
    - {name: desk-bench, role: desk, sha256: %s}
    - {name: investigator-bench, role: investigator, sha256: %s}
    - {name: admin-bench, role: admin, sha256: %s}
metrics_public: true
export: {max_range: 2h}
live: {udp_port: 0, max_viewers: %d}
alerts:
  stale_after: 10m%s
  units: [{id: police, name: 派出所}]
  rules:
    - {match: {type: recording_tampered}, severity: critical, ack_within: 10m, resolve_within: 24h}
    - {match: {}, severity: minor, ack_within: 15m, resolve_within: 24h, cooldown: 60s}
cameras_file: cameras.yaml
`, sc.Listen, sc.LogLevel, sc.Storage, journal, auth.HashToken(e.tokens.desk), auth.HashToken(e.tokens.investigator), auth.HashToken(e.tokens.admin), sc.MaxViewers, eventAge)
	if sc.Node != "" {
		vigil += "node: {" + sc.Node + "}\n"
	}
	var cams strings.Builder
	cams.WriteString("cameras:\n")
	if len(sc.Cameras) == 0 {
		cams.Reset()
		cams.WriteString("cameras: []\n")
	}
	for _, c := range sc.Cameras {
		site := c.Site
		if site == "" {
			site = "hall"
		}
		fmt.Fprintf(&cams, "  - {id: %s, name: %s, site: %s, url: %q, transport: tcp, enabled: %t, record: %t, events: {onvif_metadata: %t, webhook_secret: %q}}\n",
			c.ID, c.ID, site, c.URL, !c.Disabled, c.Record, c.ONVIF, e.tokens.hook)
	}
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(vigil), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cams.String()), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// inProcess is a Vigil node running in the bench process.
type inProcess struct {
	app  *app.App
	cfg  *configs.Config
	done chan error
	stop context.CancelFunc
}

// startNode writes sc as the configuration of the scenario's one node and
// starts it in this process (startApp).
func (e *env) startNode(ctx context.Context, sc serviceConfig) (*inProcess, error) {
	cfgPath, err := e.writeConfig("node", sc)
	if err != nil {
		return nil, err
	}
	return e.startApp(ctx, cfgPath)
}

// startApp loads cfgPath and runs app.New + Run in this process; its logs go
// to a file beside the configuration.
func (e *env) startApp(ctx context.Context, cfgPath string) (*inProcess, error) {
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", cfgPath, err)
	}
	lf, err := os.Create(filepath.Join(filepath.Dir(cfgPath), "vigil.log"))
	if err != nil {
		return nil, err
	}
	a, err := app.New(app.Options{Config: cfg, Logger: app.NewLogger(lf, cfg.Log)})
	if err != nil {
		lf.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &inProcess{app: a, cfg: cfg, done: make(chan error, 1), stop: cancel}
	go func() { p.done <- a.Run(ctx) }()
	e.defer_(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			e.log.Warn("vigil did not stop within 15s")
		}
		lf.Close()
	})
	if err := waitHTTP(ctx, a.URL()+"/healthz", 10*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// Stop ends the in-process node and waits for it.
func (p *inProcess) Stop() error {
	p.stop()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		return errors.New("vigil did not stop within 15s")
	}
}

// vigilBinary builds cmd/vigil once into the cache directory.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func vigilBinary(log *slog.Logger) (string, error) {
	buildOnce.Do(func() {
		dir, err := cacheDir()
		if err != nil {
			buildOnce.err = err
			return
		}
		out := filepath.Join(dir, "vigil")
		root, err := moduleRoot()
		if err != nil {
			buildOnce.err = err
			return
		}
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", out, "./cmd/vigil")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build ./cmd/vigil: %v\n%s", err, b)
			return
		}
		log.Info("built vigil", "path", out, "took", time.Since(start).Round(time.Millisecond))
		buildOnce.path = out
	})
	return buildOnce.path, buildOnce.err
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the vigil module")
	}
	return filepath.Dir(mod), nil
}

func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "vigil-bench")
	return dir, os.MkdirAll(dir, 0o750)
}

// child is a process the scenario started; Close ends it.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (c *child) Pid() int { return c.cmd.Process.Pid }

// Kill sends sig and waits up to 10s for the process to end.
func (c *child) Kill(sig syscall.Signal) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startChild starts name with args; stdout lines are passed to onLine until
// it returns false; stderr goes to logPath.
func (e *env) startChild(logPath string, onLine func(string) bool, name string, args ...string) (*child, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		// Blocking: the ready line must not be dropped behind a burst of
		// output (camsim prints one URL per camera first). After ready, a
		// drainer keeps reading.
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	e.defer_(func() { c.Kill(syscall.SIGTERM) })
	if onLine == nil {
		go func() {
			for range lines {
			}
		}()
		return c, nil
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("%s exited before it was ready (see %s)", name, logPath)
			}
			if !onLine(l) {
				go func() {
					for range lines {
					}
				}()
				return c, nil
			}
		case <-deadline:
			c.Kill(syscall.SIGKILL)
			return nil, fmt.Errorf("%s not ready within 30s (see %s)", name, logPath)
		}
	}
}

// camsimChild runs `vigil camsim` as a child process, so that Vigil's CPU is
// measured without the simulator's.
type camsimChild struct {
	*child
	rtsp    string // host:port
	control string // host:port
}

func (e *env) startCamsimChild(n int, clip string, metadata bool) (*camsimChild, error) {
	bin, err := vigilBinary(e.log)
	if err != nil {
		return nil, err
	}
	args := []string{"camsim", "-listen", "127.0.0.1:0", "-control", "127.0.0.1:0", "-udp", "", "-cameras", strconv.Itoa(n), "-metadata=" + strconv.FormatBool(metadata)}
	if clip != "" {
		args = append(args, "-clip", clip)
	}
	cs := &camsimChild{}
	c, err := e.startChild(filepath.Join(e.dir, "camsim.log"), func(l string) bool {
		if strings.HasPrefix(l, "rtsp://") && cs.rtsp == "" {
			cs.rtsp = strings.SplitN(strings.TrimPrefix(l, "rtsp://"), "/", 2)[0]
		}
		if a, ok := strings.CutPrefix(l, "control: http://"); ok {
			cs.control = strings.SplitN(a, "/", 2)[0]
			return false
		}
		return true
	}, bin, args...)
	if err != nil {
		return nil, err
	}
	cs.child = c
	return cs, nil
}

// redis is a redis-server the scenario started on a free port.
type redis struct {
	*child
	addr string
	dir  string
	port int
}

func (e *env) startRedis(port int, extra ...string) (*redis, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(e.dir, "redis")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir}
	if len(extra) == 0 {
		extra = []string{"--appendonly", "no"}
	}
	c, err := e.startChild(filepath.Join(dir, "redis.log"), nil, "redis-server", append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	r := &redis{child: c, addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, port: port}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			_, _ = conn.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := conn.Read(buf)
			conn.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return r, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Kill(syscall.SIGKILL)
	return nil, errors.New("redis-server did not answer PING within 10s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procSample is a process's CPU time and memory at one instant.
type procSample struct {
	at      time.Time
	cpu     time.Duration
	rss     int64 // bytes
	hwm     int64 // bytes
	threads int
}

// sampleSelf reads this process's CPU (getrusage) and memory.
func sampleSelf() procSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := procSample{at: time.Now(), cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	s.rss, s.hwm = readStatus("/proc/self/status")
	return s
}

// samplePid reads another process's CPU and memory from /proc.
func samplePid(pid int) procSample {
	s := procSample{at: time.Now()}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		str := string(raw)
		if i := strings.LastIndexByte(str, ')'); i > 0 && i+2 < len(str) {
			f := strings.Fields(str[i+2:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				s.cpu = time.Duration(ut+st) * (time.Second / 100) // USER_HZ
			}
		}
	}
	s.rss, s.hwm = readStatus(fmt.Sprintf("/proc/%d/status", pid))
	return s
}

func readStatus(path string) (rss, hwm int64) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}

// machine describes where the numbers were measured.
type machine struct {
	CPUs      int    `json:"cpus"`
	MemTotal  string `json:"mem_total"`
	GoVersion string `json:"go"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// discard is an io.Writer for unwanted output.
var discard io.Writer = io.Discard
