package configs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const waitLimit = 10 * time.Second

type watchRig struct {
	t       *testing.T
	dir     string
	w       *Watcher
	changes chan Change
	errs    chan error
	done    chan error
}

func camerasNamed(name string) string {
	return "cameras:\n  - id: cam-1\n    name: " + name + "\n    url: rtsp://192.0.2.1/s\n"
}

func startWatcher(t *testing.T, debounce time.Duration) *watchRig {
	t.Helper()
	dir := t.TempDir()
	r := &watchRig{t: t, dir: dir, changes: make(chan Change, 100), errs: make(chan error, 100), done: make(chan error, 1)}
	r.write("vigil.yaml", baseVigil, false)
	r.write("cameras.yaml", camerasNamed("v0"), false)
	w, err := NewWatcher(WatchOptions{
		Path:     filepath.Join(dir, "vigil.yaml"),
		Getenv:   noEnv,
		OnChange: func(c Change) { r.changes <- c },
		OnError:  func(err error) { r.errs <- err },
		Debounce: debounce,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.started = make(chan struct{})
	r.w = w
	ctx, cancel := context.WithCancel(t.Context())
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after cancel")
		}
	})
	select {
	case <-w.started:
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("watcher did not start")
	}
	return r
}

// write writes a file in place, or like an editor: a new file renamed over
// the old one.
func (r *watchRig) write(name, content string, replace bool) {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	if !replace {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	tmp := filepath.Join(r.dir, "."+name+".swp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		r.t.Fatal(err)
	}
}

func (r *watchRig) nextChange() Change {
	r.t.Helper()
	select {
	case c := <-r.changes:
		return c
	case err := <-r.errs:
		r.t.Fatalf("want a change, got error %v", err)
	case <-time.After(waitLimit):
		r.t.Fatal("no change delivered")
	}
	return Change{}
}

func (r *watchRig) nextError() error {
	r.t.Helper()
	select {
	case c := <-r.changes:
		r.t.Fatalf("want an error, got change to %v", c.New)
	case err := <-r.errs:
		return err
	case <-time.After(waitLimit):
		r.t.Fatal("no error delivered")
	}
	return nil
}

func TestWatchDeliversValidChange(t *testing.T) {
	for _, replace := range []bool{false, true} {
		name := map[bool]string{false: "write in place", true: "rename over"}[replace]
		t.Run(name, func(t *testing.T) {
			r := startWatcher(t, 20*time.Millisecond)
			r.write("cameras.yaml", camerasNamed("v1")+"  - id: cam-2\n    name: cam-2\n    url: rtsp://192.0.2.2/s\n", replace)
			c := r.nextChange()
			if c.New.Cameras[0].Name != "v1" || c.Old.Cameras[0].Name != "v0" {
				t.Errorf("change %v -> %v", c.Old.Cameras, c.New.Cameras)
			}
			if strings.Join(c.Added, ",") != "cam-2" || strings.Join(c.Changed, ",") != "cam-1" || len(c.Removed) != 0 {
				t.Errorf("diff = %v %v %v", c.Added, c.Removed, c.Changed)
			}
			if r.w.Current() != c.New {
				t.Errorf("Current is not the delivered config")
			}
			r.write("vigil.yaml", baseVigil+"metrics_public: true\n", replace)
			if c := r.nextChange(); !c.New.MetricsPublic || len(c.Added)+len(c.Removed)+len(c.Changed) != 0 {
				t.Errorf("service change: %v, diff %v %v %v", c.New, c.Added, c.Removed, c.Changed)
			}
		})
	}
}

func TestWatchKeepsOldOnInvalidChange(t *testing.T) {
	r := startWatcher(t, 20*time.Millisecond)
	old := r.w.Current()
	r.write("cameras.yaml", "cameras:\n  - id: cam-1\n    url: http://192.0.2.1/s\n", true)
	err := r.nextError()
	if got := err.Error(); !strings.HasSuffix(got, "cameras.yaml:3:10: cameras[0].url: scheme must be rtsp or rtsps") {
		t.Errorf("error = %v", got)
	}
	if r.w.Current() != old {
		t.Errorf("invalid file replaced the running config")
	}
	if _, err := r.w.Reload(); err == nil {
		t.Errorf("Reload of an invalid file succeeded")
	}
	<-r.errs // Reload reports through OnError too
	r.write("cameras.yaml", camerasNamed("fixed"), true)
	if c := r.nextChange(); c.Old != old || c.New.Cameras[0].Name != "fixed" {
		t.Errorf("after fix: %v -> %v", c.Old, c.New)
	}
}

func TestWatchDebounces(t *testing.T) {
	r := startWatcher(t, 300*time.Millisecond)
	// A burst of writes well inside the debounce window ends in one reload
	// of the last content: an intermediate version is never delivered.
	for i := 1; i <= 5; i++ {
		r.write("cameras.yaml", camerasNamed("burst"+string(rune('0'+i))), i%2 == 0)
	}
	if c := r.nextChange(); c.New.Cameras[0].Name != "burst5" {
		t.Fatalf("first change delivered %s, want burst5", c.New.Cameras[0].Name)
	}
	r.write("cameras.yaml", camerasNamed("marker"), false)
	if c := r.nextChange(); c.New.Cameras[0].Name != "marker" {
		t.Errorf("after the burst got %s, want marker", c.New.Cameras[0].Name)
	}
}

func TestReloadReturnsChange(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte(baseVigil), 0o644)
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(camerasNamed("a")), 0o644)
	var mu sync.Mutex
	var calls int
	w, err := NewWatcher(WatchOptions{Path: filepath.Join(dir, "vigil.yaml"), Getenv: noEnv, OnChange: func(Change) { mu.Lock(); calls++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.Reload()
	if err != nil || !c.Empty() {
		t.Fatalf("Reload of unchanged files = %+v, %v", c, err)
	}
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte("cameras: []\n"), 0o644)
	c, err = w.Reload()
	if err != nil || strings.Join(c.Removed, ",") != "cam-1" {
		t.Fatalf("Reload = %+v, %v", c, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("OnChange called %d times, want 1", calls)
	}
}

func TestNewWatcherRejectsInvalid(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte("listen: x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(""), 0o644)
	if _, err := NewWatcher(WatchOptions{Path: filepath.Join(dir, "vigil.yaml"), Getenv: noEnv}); err == nil {
		t.Error("NewWatcher accepted an invalid config")
	}
}

func TestWatchFunc(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(baseVigil), 0o644)
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(camerasNamed("first")), 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan *Config, 10)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, path, noEnv, func(c *Config) { got <- c }, func(err error) { t.Errorf("onError: %v", err) })
	}()
	select {
	case c := <-got:
		if c.Cameras[0].Name != "first" {
			t.Errorf("initial config has %v", c.Cameras)
		}
	case <-time.After(waitLimit):
		t.Fatal("no initial config")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Watch did not return after cancel")
	}
	if err := Watch(t.Context(), filepath.Join(dir, "nope.yaml"), noEnv, func(*Config) {}, func(error) {}); err == nil {
		t.Error("Watch of a missing file returned nil")
	}
}

// A reload that would leave no admin token is refused: nobody could reload
// a fixed file through the API afterwards. Emptying a file is refused too.
func TestReloadRefusals(t *testing.T) {
	const admin = "auth:\n  tokens:\n    - {name: ops, role: admin, sha256: " + hexA + "}\n"
	const desk = "auth:\n  tokens:\n    - {name: desk-1, role: desk, sha256: " + hexA + "}\n"
	tests := []struct {
		name           string
		vigil, cameras string
		want           error
	}{
		{"only a desk token left", desk, camerasNamed("v0"), ErrNoAdmin},
		{"tokens removed", "listen: 127.0.0.1:8080\n", camerasNamed("v0"), ErrNoAdmin},
		{"vigil.yaml emptied", "", camerasNamed("v0"), ErrEmptyFile},
		{"cameras.yaml emptied", admin, "", ErrEmptyFile},
		{"cameras.yaml whitespace", admin, " \n", ErrEmptyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "vigil.yaml")
			os.WriteFile(path, []byte(admin), 0o644)
			os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(camerasNamed("v0")), 0o644)
			var onError error
			w, err := NewWatcher(WatchOptions{Path: path, Getenv: noEnv,
				OnChange: func(c Change) { t.Errorf("OnChange(%v)", c.New) },
				OnError:  func(err error) { onError = err }})
			if err != nil {
				t.Fatal(err)
			}
			before := w.Current()
			os.WriteFile(path, []byte(tt.vigil), 0o644)
			os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(tt.cameras), 0o644)
			if _, err := w.Reload(); !errors.Is(err, tt.want) {
				t.Errorf("Reload = %v, want %v", err, tt.want)
			}
			if !errors.Is(onError, tt.want) {
				t.Errorf("OnError got %v", onError)
			}
			if w.Current() != before {
				t.Errorf("the running configuration was replaced")
			}
		})
	}
	// Without an admin token before, a reload without one is no loss.
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(desk), 0o644)
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(camerasNamed("v0")), 0o644)
	w, err := NewWatcher(WatchOptions{Path: path, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(camerasNamed("v1")), 0o644)
	if _, err := w.Reload(); err != nil {
		t.Errorf("Reload without an admin token before and after: %v", err)
	}
}
