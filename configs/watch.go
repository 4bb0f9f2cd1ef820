package configs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a Watcher waits after the last file event
// before reloading: editors write a file in several steps.
const DefaultDebounce = 200 * time.Millisecond

// Change is the outcome of a successful reload.
type Change struct {
	Old, New *Config
	// Camera IDs, as from Diff(Old, New).
	Added, Removed, Changed []string
}

// Empty reports whether nothing at all changed.
func (c Change) Empty() bool { return Equal(c.Old, c.New) }

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Path is the vigil.yaml path.
	Path string
	// Getenv looks up ${NAME}; os.LookupEnv when nil.
	Getenv func(string) (string, bool)
	// Initial is the running configuration. When nil, NewWatcher loads it
	// and fails if it does not validate.
	Initial *Config
	// OnChange gets every configuration that validated and differs from
	// the previous one, in order, one call at a time. It must not call
	// Reload.
	OnChange func(Change)
	// OnError gets the joined errors of a reload that failed validation
	// (the running configuration stays), and file watching errors.
	OnError func(error)
	// Debounce overrides DefaultDebounce.
	Debounce time.Duration
}

func (o *WatchOptions) validate() error {
	if o.Path == "" {
		return errors.New("watch config: no path")
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.OnChange == nil {
		o.OnChange = func(Change) {}
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	return nil
}

// Watcher holds the running configuration and replaces it when the files
// change (Run) or when asked (Reload), only ever with a configuration that
// validates.
type Watcher struct {
	opts WatchOptions

	reloadMu sync.Mutex // serializes reloads and OnChange calls
	mu       sync.Mutex // guards current
	current  *Config

	// started, when not nil, is closed once Run watches the directories.
	started chan struct{}
}

// NewWatcher returns a Watcher; it does not watch until Run.
func NewWatcher(opts WatchOptions) (*Watcher, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	w := &Watcher{opts: opts, current: opts.Initial}
	if w.current == nil {
		cfg, err := LoadEnv(opts.Path, opts.Getenv)
		if err != nil {
			return nil, err
		}
		w.current = cfg
	}
	return w, nil
}

// ErrNoAdmin is wrapped by the error of a reload refused because it would
// leave no admin token.
var ErrNoAdmin = errors.New("no admin token")

func hasAdmin(c *Config) bool {
	return c != nil && slices.ContainsFunc(c.Auth.Tokens, func(t Token) bool { return t.Role == RoleAdmin })
}

// Current returns the running configuration.
func (w *Watcher) Current() *Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Reload loads and validates the files now. On success the new
// configuration becomes current, OnChange is called when it differs, and
// the Change is returned (empty when nothing differs). On failure the
// running configuration stays, OnError is called and the joined errors
// are returned. It is what POST /api/v1/admin/reload calls.
func (w *Watcher) Reload() (Change, error) {
	// reloadMu orders reloads and their OnChange calls; mu only guards
	// current, so readers (Current) never wait for OnChange to apply a
	// change (closing segments, restarting cameras).
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	cfg, err := LoadEnv(w.opts.Path, w.opts.Getenv)
	if err == nil && hasAdmin(w.Current()) && !hasAdmin(cfg) {
		// Without an admin token nobody could reload the next, fixed
		// file through the API, or see the cameras' health.
		err = &Error{File: w.opts.Path, Line: 1, Column: 1, Path: "auth.tokens", Err: ErrNoAdmin,
			Msg: "the new configuration has no admin token; refused, the running configuration stays"}
	}
	if err != nil {
		w.opts.OnError(err)
		return Change{}, err
	}
	w.mu.Lock()
	ch := Change{Old: w.current, New: cfg}
	ch.Added, ch.Removed, ch.Changed = Diff(ch.Old, ch.New)
	if ch.Empty() {
		w.mu.Unlock()
		return ch, nil
	}
	w.current = cfg
	w.mu.Unlock()
	w.opts.OnChange(ch)
	return ch, nil
}

// Run watches the directories of vigil.yaml and of the camera registry and
// reloads after changes settle. It returns nil when ctx ends, or an error if
// watching cannot start.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer fw.Close()

	dirs := map[string]bool{}
	watch := func() error {
		cur := w.Current()
		want := []string{filepath.Dir(filepath.Clean(w.opts.Path)), filepath.Dir(filepath.Clean(cur.CamerasPath))}
		for _, dir := range want {
			if dirs[dir] {
				continue
			}
			if err := fw.Add(dir); err != nil {
				return fmt.Errorf("watch config: %s: %w", dir, err)
			}
			dirs[dir] = true
		}
		return nil
	}
	if err := watch(); err != nil {
		return err
	}
	// A change between the initial load and the watch would otherwise go
	// unnoticed until the next one.
	w.Reload()
	if w.started != nil {
		close(w.started)
	}

	timer := time.NewTimer(w.opts.Debounce)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if w.relevant(ev.Name) {
				timer.Reset(w.opts.Debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.opts.OnError(fmt.Errorf("watch config: %w", err))
		case <-timer.C:
			if _, err := w.Reload(); err == nil {
				// cameras_file may now name another directory.
				if err := watch(); err != nil {
					w.opts.OnError(err)
				}
			}
		}
	}
}

// relevant reports whether an event on name may change the configuration:
// one of the two files, or a Kubernetes-style "..data" symlink swap.
func (w *Watcher) relevant(name string) bool {
	name = filepath.Clean(name)
	cur := w.Current()
	if name == filepath.Clean(w.opts.Path) || name == filepath.Clean(cur.CamerasPath) {
		return true
	}
	base := filepath.Base(name)
	return len(base) > 2 && base[:2] == ".."
}

// Watch loads the configuration at path, calls onChange with it, and then
// with every changed configuration that validates until ctx ends; problems
// go to onError. getenv may be nil for the process environment. It returns
// the load error if the initial configuration does not validate.
func Watch(ctx context.Context, path string, getenv func(string) (string, bool), onChange func(*Config), onError func(error)) error {
	w, err := NewWatcher(WatchOptions{
		Path:     path,
		Getenv:   getenv,
		OnChange: func(c Change) { onChange(c.New) },
		OnError:  onError,
	})
	if err != nil {
		return err
	}
	onChange(w.Current())
	return w.Run(ctx)
}
