package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// segInfo is one index line.
type segInfo struct {
	File   string
	Start  time.Time
	End    time.Time
	Frames int64
}

// indexSegments reads a camera's day indexes under the storage dir, oldest
// first.
func indexSegments(storage, camera string) []segInfo {
	var out []segInfo
	_ = filepath.WalkDir(filepath.Join(storage, camera), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.jsonl" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec struct {
				File   string    `json:"file"`
				Start  time.Time `json:"start"`
				End    time.Time `json:"end"`
				Frames int64     `json:"frames"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				out = append(out, segInfo{File: filepath.Join(filepath.Dir(p), rec.File), Start: rec.Start, End: rec.End, Frames: rec.Frames})
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// gapsOf lists the spans longer than tolerance between consecutive segments.
func gapsOf(segs []segInfo, tolerance time.Duration) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(segs); i++ {
		if d := segs[i].Start.Sub(segs[i-1].End); d > tolerance {
			gaps = append(gaps, d)
		}
	}
	return gaps
}

// ffprobeFrames decodes a file with ffprobe and returns its frame count;
// any ffprobe error output is an error.
func ffprobeFrames(ctx context.Context, path string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames,duration", "-of", "json", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %v: %s", filepath.Base(path), err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return 0, fmt.Errorf("ffprobe %s: %s", filepath.Base(path), firstLine(s))
	}
	var p struct {
		Streams []struct {
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		return 0, fmt.Errorf("ffprobe %s: no stream", filepath.Base(path))
	}
	var n int64
	fmt.Sscan(p.Streams[0].Frames, &n)
	return n, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// probeAll ffprobes every .mp4 under dir that is not in done and returns
// how many were checked and the failures.
func probeAll(ctx context.Context, dir string, done map[string]bool) (checked int, failures []string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".mp4") || done[p] {
			return nil
		}
		checked++
		if _, err := ffprobeFrames(ctx, p); err != nil {
			failures = append(failures, err.Error())
		}
		if done != nil {
			done[p] = true
		}
		return nil
	})
	return checked, failures
}

// postEvent sends one generic webhook event and returns the status (0 when
// the node did not answer).
func postEvent(ctx context.Context, base, camera, hookKey, typ, state, key string) int {
	body := fmt.Sprintf(`{"type":%q,"state":%q,"key":%q}`, typ, state, key)
	req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/api/v1/hooks/%s/events?key=%s", base, camera, hookKey), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// desk is a desk client that reconnects with since after every close, as
// the desk page does, and records every change it is sent.
type desk struct {
	mu      sync.Mutex
	last    uint64
	dups    int64
	gaps    int64
	closes  map[int]int
	keys    map[string]int // alert key → raised messages
	seqs    map[uint64]string
	reconn  int
	stopped atomic.Bool
	done    chan struct{}
}

// startDesks starts n desk clients (startDesk).
func startDesks(ctx context.Context, n int, base func() string, token string) []*desk {
	desks := make([]*desk, n)
	for i := range desks {
		desks[i] = startDesk(ctx, base, token)
	}
	return desks
}

func startDesk(ctx context.Context, base func() string, token string) *desk {
	d := &desk{closes: map[int]int{}, keys: map[string]int{}, seqs: map[uint64]string{}, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		since := int64(-1)
		for !d.stopped.Load() && ctx.Err() == nil {
			c, err := dialDesk(ctx, base(), token, since, func(m deskMsg) { d.on(m) })
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			d.mu.Lock()
			if since < 0 {
				d.last = max(d.last, c.hello)
			}
			d.mu.Unlock()
			for !d.stopped.Load() && ctx.Err() == nil {
				select {
				case <-c.done:
				case <-time.After(100 * time.Millisecond):
					continue
				}
				break
			}
			c.Close()
			d.mu.Lock()
			if !d.stopped.Load() {
				d.closes[c.CloseCode()]++
				d.reconn++
			}
			since = int64(d.last)
			d.mu.Unlock()
		}
	}()
	return d
}

func (d *desk) on(m deskMsg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m.seq == 0 {
		return
	}
	switch {
	case m.seq <= d.last:
		d.dups++
		return
	case d.last != 0 && m.seq != d.last+1:
		d.gaps += int64(m.seq - d.last - 1)
	}
	d.last = m.seq
	d.seqs[m.seq] = m.id
	if m.kind == "raised" {
		d.keys[m.key]++
	}
}

func (d *desk) stop() {
	d.stopped.Store(true)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// keyCheck compares the keys a desk saw raised with the accepted ones.
func (d *desk) keyCheck(accepted map[string]bool) (missing, dup int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range accepted {
		switch n := d.keys[k]; {
		case n == 0:
			missing++
		case n > 1:
			dup += n - 1
		}
	}
	return missing, dup
}

// waitKeys waits until every desk has seen every accepted key, up to t.
func waitKeys(ctx context.Context, t time.Duration, desks []*desk, accepted map[string]bool) {
	deadline := time.Now().Add(t)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, d := range desks {
			if m, _ := d.keyCheck(accepted); m > 0 {
				all = false
			}
		}
		if all {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bufferDialer makes a websocket client whose socket has a fixed receive
// buffer of n bytes: a client that stops reading is felt by the server
// after a known amount of data.
func bufferDialer(n int) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if err := c.(*net.TCPConn).SetReadBuffer(n); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}
