package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this binary's main, as a built vigil would.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// vigilCommand runs this test binary as the vigil command in dir.
func vigilCommand(t *testing.T, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VIGIL_TEST_MAIN=1")
	return cmd
}

func get(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, v)
	return resp.StatusCode
}

// TestDemo runs `vigil demo` in a fresh directory the way a newcomer does and
// checks, through the API, that the four simulated cameras come online, get
// recorded, and raise an alert from their ONVIF events; then SIGTERM stops it
// cleanly, and every segment it wrote plays in ffprobe.
func TestDemo(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe not found (Debian package ffmpeg; make test installs it)")
	}
	dir := t.TempDir()
	cmd := vigilCommand(t, dir, "demo", "-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	var url, token string
	lines := bufio.NewScanner(stdout)
	for (url == "" || token == "") && lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) >= 2 && f[0] == "url:":
			url = strings.TrimSuffix(f[1], "/")
		case len(f) >= 3 && f[0] == "desk" && f[1] == "token:":
			token = f[2]
		}
	}
	if url == "" || token == "" {
		t.Fatalf("demo printed no URL and token; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	deadline := time.Now().Add(90 * time.Second)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("within 90 s: %s; stderr:\n%s", what, stderr.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	wait("four cameras online", func() bool {
		var l struct{ Cameras []struct{ Status string } }
		get(t, url+"/api/v1/cameras", token, &l)
		online := 0
		for _, c := range l.Cameras {
			if c.Status == "online" {
				online++
			}
		}
		return online == 4
	})
	wait("an alert raised from a simulated ONVIF event", func() bool {
		var l struct{ Alerts []struct{ Source string } }
		get(t, url+"/api/v1/alerts", token, &l)
		for _, a := range l.Alerts {
			if a.Source == "onvif" {
				return true
			}
		}
		return false
	})
	cams := []string{"hall-entrance", "hall-counter", "mediation-room", "key-site-gate"}
	wait("a recorded segment per camera", func() bool {
		for _, c := range cams {
			idx, _ := filepath.Glob(filepath.Join(dir, "data-demo", "recordings", c, "*", "index.jsonl"))
			if len(idx) == 0 {
				return false
			}
			if b, _ := os.ReadFile(idx[0]); len(b) == 0 {
				return false
			}
		}
		return true
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Fatalf("demo exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not exit within 10 s of SIGTERM")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "data-demo", "recordings", "*", "*", "*.mp4"))
	if len(files) < len(cams) {
		t.Fatalf("%d segment files, want at least %d", len(files), len(cams))
	}
	for _, f := range files {
		out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "json", f).CombinedOutput()
		if err != nil || strings.Contains(string(out), "rror") {
			t.Errorf("%s does not play: %v\n%s", f, err, out)
		}
	}
}
