package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/testutil"
)

const (
	camPassword = "pw-Zq81-never-shown"
	urlPassword = "urlpw-Kx44-never-shown"
	hookSecret  = "hook-Yy20-never-shown"
	deskToken   = "desk-token-e2e"
	invToken    = "investigator-token-e2e"
	adminToken  = "admin-token-e2e"
)

// writeConfig writes a vigil.yaml and cameras.yaml into a temp dir and
// loads them.
func writeConfig(t *testing.T, extra string) *configs.Config {
	t.Helper()
	return writeConfigFiles(t, extra, `cameras:
  - id: hall-entrance
    name: 服务大厅入口
    site: hall
    url: rtsp://127.0.0.1:1/cam/0
    username: admin
    password: `+camPassword+`
    events: {webhook_secret: `+hookSecret+`}
  - id: key-site-gate
    name: 重点部位大门
    site: key-site
    url: rtsp://admin:`+urlPassword+`@127.0.0.1:1/cam/1
`)
}

// writeConfigFiles writes the test vigil.yaml (with extra appended) and the
// given cameras.yaml into a temp dir and loads them.
func writeConfigFiles(t *testing.T, extra, cams string) *configs.Config {
	t.Helper()
	dir := t.TempDir()
	vigil := `listen: 127.0.0.1:0
storage: {dir: ./rec, min_free_bytes: 0}
journal: {path: ./journal.db}
auth:
  tokens:
    - {name: desk-1, role: desk, sha256: ` + auth.HashToken(deskToken) + `}
    - {name: inv-1, role: investigator, sha256: ` + auth.HashToken(invToken) + `}
    - {name: ops, role: admin, sha256: ` + auth.HashToken(adminToken) + `}
alerts:
  units: [{id: police, name: 派出所}]
` + extra
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte(vigil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cameras.yaml"), []byte(cams), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startApp runs an App on a free loopback port until the test ends.
func startApp(t *testing.T, cfg *configs.Config, logs io.Writer) *App {
	t.Helper()
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	return a
}

func call(t *testing.T, method, url, token string, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthAndRedactionEndToEnd(t *testing.T) {
	logs := &testutil.Buffer{}
	a := startApp(t, writeConfig(t, ""), logs)
	base := a.URL()

	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"healthz is open", "GET", "/healthz", "", 200},
		{"readyz is open", "GET", "/readyz", "", 200},
		{"cameras without token", "GET", "/api/v1/cameras", "", 401},
		{"cameras with bad token", "GET", "/api/v1/cameras", "nope", 401},
		{"cameras as desk", "GET", "/api/v1/cameras", deskToken, 200},
		{"camera as investigator", "GET", "/api/v1/cameras/hall-entrance", invToken, 200},
		{"unknown camera", "GET", "/api/v1/cameras/nowhere", deskToken, 404},
		{"bad camera id", "GET", "/api/v1/cameras/..%2Fetc", deskToken, 400},
		{"reload as desk", "POST", "/api/v1/admin/reload", deskToken, 403},
		{"reload as admin", "POST", "/api/v1/admin/reload", adminToken, 200},
		{"metrics without token", "GET", "/metrics", "", 401},
		{"metrics as desk", "GET", "/metrics", deskToken, 403},
		{"metrics as admin", "GET", "/metrics", adminToken, 200},
		{"unknown api path", "GET", "/api/v1/nothing", deskToken, 404},
		{"wrong method", "DELETE", "/api/v1/cameras", deskToken, 405},
		{"unknown alert action", "POST", "/api/v1/alerts/01ABC/frobnicate", deskToken, 404},
	}
	var everything strings.Builder
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := call(t, c.method, base+c.path, c.token, "")
			if code != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.want)
			}
			if code >= 400 && !strings.Contains(body, `"code"`) {
				t.Fatalf("error body without code: %s", body)
			}
			everything.WriteString(body)
		})
	}
	var cams struct {
		Cameras []map[string]any `json:"cameras"`
	}
	_, body := call(t, "GET", base+"/api/v1/cameras", deskToken, "")
	if err := json.Unmarshal([]byte(body), &cams); err != nil || len(cams.Cameras) != 2 {
		t.Fatalf("cameras: %v %s", err, body)
	}
	all := everything.String() + logs.String()
	for _, secret := range []string{camPassword, urlPassword, hookSecret, deskToken, adminToken} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %q appears in API output or logs", secret)
		}
	}
}

func TestMetricsPublic(t *testing.T) {
	a := startApp(t, writeConfig(t, "metrics_public: true\n"), io.Discard)
	code, body := call(t, "GET", a.URL()+"/metrics", "", "")
	if code != 200 || !strings.Contains(body, "vigil_config_reload_errors_total") {
		t.Fatalf("metrics: %d", code)
	}
}

func TestReloadRejectsBrokenConfig(t *testing.T) {
	cfg := writeConfig(t, "")
	a := startApp(t, cfg, io.Discard)
	if err := os.WriteFile(cfg.CamerasPath, []byte("cameras:\n  - id: Bad_ID\n    url: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "POST", a.URL()+"/api/v1/admin/reload", adminToken, "")
	if code != 400 || !strings.Contains(body, "cameras[0].id") || !strings.Contains(body, "cameras[0].url") {
		t.Fatalf("reload: %d %s", code, body)
	}
	// The running configuration is kept.
	code, _ = call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance", deskToken, "")
	if code != 200 {
		t.Fatalf("camera after failed reload: %d", code)
	}
}

func TestSessionCookieLogin(t *testing.T) {
	a := startApp(t, writeConfig(t, ""), io.Discard)
	resp, err := http.Post(a.URL()+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+deskToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Cookies())
	}
	req, _ := http.NewRequest("GET", a.URL()+"/api/v1/units", nil)
	req.AddCookie(resp.Cookies()[0])
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 200 || !strings.Contains(string(b), "派出所") {
		t.Fatalf("units with cookie: %d %s", r2.StatusCode, b)
	}
}

func TestReadyzSaysWhichCheckFailed(t *testing.T) {
	cfg := writeConfig(t, "")
	cfg.Storage.MinFreeBytes = 1 << 60 // more than any disk has
	a := startApp(t, cfg, io.Discard)
	code, body := call(t, "GET", a.URL()+"/readyz", "", "")
	if code != 503 || !strings.Contains(body, `"ready":false`) || !strings.Contains(body, "below min_free_bytes") || !strings.Contains(body, `"journal":"ok"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
}
