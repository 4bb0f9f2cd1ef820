// Package testutil starts real servers for tests: a redis-server on a free
// loopback port with its own data directory. It owns no production code.
package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long StartRedis and Restart wait for PONG.
const startTimeout = 10 * time.Second

// Redis is a redis-server process owned by one test. Its methods are safe
// for concurrent use.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cfg  config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and been waited for
	runs int
}

type config struct {
	appendOnly  bool
	appendFsync string
	password    string
	args        []string
}

// Option changes how redis-server is started.
type Option func(*config)

// WithAppendOnly turns on the append-only file with the given appendfsync
// policy ("always", "everysec" or "no"); "" means "always".
func WithAppendOnly(fsync string) Option {
	return func(c *config) {
		if fsync == "" {
			fsync = "always"
		}
		c.appendOnly = true
		c.appendFsync = fsync
	}
}

// WithPassword sets requirepass, for tests of authentication and of logs
// that must not show the password.
func WithPassword(pw string) Option {
	return func(c *config) { c.password = pw }
}

// WithArgs appends raw redis-server arguments ("--maxmemory", "10mb").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// StartRedis starts redis-server on a free 127.0.0.1 port with its own
// t.TempDir() and no snapshots, waits until it answers PING, and stops it
// when the test ends. It fails the test, never skips it, when redis-server
// is not installed: the test command installs it.
func StartRedis(t testing.TB, opts ...Option) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testutil: redis-server not found on PATH (install Debian's redis-server package; `make test` does): %v", err)
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(&r.cfg)
	}
	t.Cleanup(r.Kill)
	// A free port can be taken between probing and binding; try a few.
	var lastErr error
	for range 5 {
		r.port, err = freePort()
		if err != nil {
			t.Fatalf("testutil: find a free port: %v", err)
		}
		if lastErr = r.start(); lastErr == nil {
			return r
		}
	}
	t.Fatalf("testutil: start redis-server: %v", lastErr)
	return nil
}

// Addr is host:port of the server; it stays the same across Restart.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Dir is the server's data directory (AOF and RDB files, log).
func (r *Redis) Dir() string { return r.dir }

// Stop sends SIGTERM and waits for the server to exit; with persistence on,
// redis-server flushes before it exits. Stopping a stopped server is a no-op.
func (r *Redis) Stop() { r.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the process to exit: a crash.
func (r *Redis) Kill() { r.signal(syscall.SIGKILL) }

// Restart starts the server again on the same port and directory, after
// stopping it if it still runs, and waits for PING.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("testutil: restart redis-server on %s: %v", r.Addr(), err)
	}
}

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(startTimeout):
		// A server that ignores SIGTERM this long is stuck; make sure it
		// does not outlive the test.
		_ = cmd.Process.Kill()
		<-done
	}
}

func (r *Redis) args() []string {
	a := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--dir", r.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", "redis.log",
		"--loglevel", "notice",
	}
	if r.cfg.appendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", r.cfg.appendFsync)
	} else {
		a = append(a, "--appendonly", "no")
	}
	if r.cfg.password != "" {
		a = append(a, "--requirepass", r.cfg.password)
	}
	return append(a, r.cfg.args...)
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(r.bin, r.args()...)
	cmd.Dir = r.dir
	// Own process group so a signal to the test's group does not reach it
	// first, and so it is not left behind by a killed parent shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	// This goroutine ends when the process exits; Stop, Kill and the test
	// cleanup all wait for done, so it never outlives the test.
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.runs++
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited during start: %s", r.logTail())
		default:
		}
		if err := ping(r.Addr(), r.cfg.password); err == nil {
			r.cmd, r.done = cmd, done
			return nil
		} else if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("no PONG within %s: %v; log: %s", startTimeout, err, r.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logTail returns the last lines of the server log, for failure messages.
func (r *Redis) logTail() string {
	b, err := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// ping speaks just enough RESP to see the server answer; a server that is
// still loading its AOF answers -LOADING and is not ready yet.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return errors.New("AUTH refused")
		}
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
