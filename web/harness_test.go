package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/alerts/boltjournal"
	"vigil/alerts/stream"
	"vigil/internal/testutil"
	"vigil/web"
)

// stack is the web app over the real alert engine, journal and hub, with
// a stand-in for internal/auth (tokens with roles, a session cookie) and
// for the camera and footage endpoints. The server can be stopped and
// started again on the same address; sessions survive, as they do in the
// service's memory while only the network is down.
type stack struct {
	t     *testing.T
	j     *boltjournal.Journal
	eng   *alerts.Engine
	hub   *stream.Hub
	mux   *http.ServeMux
	addr  string
	srv   *http.Server
	roles map[string][2]string // token → name, role

	mu       sync.Mutex
	sessions map[string][2]string
	n        int
	audit    []map[string]any // GET /audit's records, oldest first; seq int
}

// addAudit appends a record to GET /audit.
func (s *stack) addAudit(rec map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec["seq"] = len(s.audit) + 1
	s.audit = append(s.audit, rec)
}

var stackUnits = []alerts.Unit{{ID: "police", Name: "派出所"}, {ID: "zongzhi", Name: "综治办"}, {ID: "sifa", Name: "司法所"}}

var stackCameras = []map[string]any{
	{"id": "key-gate", "name": "重点部位大门", "site": "key-site", "grid": "G07", "status": "online", "since": "2026-11-26T08:00:00Z", "recording": true},
	{"id": "hall-entrance", "name": "服务大厅入口", "site": "hall", "grid": "G03", "status": "offline", "since": "2026-11-26T09:30:00Z"},
	{"id": "hall-counter", "name": "服务大厅受理窗口", "site": "hall", "grid": "G03", "status": "online", "since": "2026-11-26T08:00:00Z", "recording": true},
}

func cameraLookup(id string) (name, site, grid string, ok bool) {
	for _, c := range stackCameras {
		if c["id"] == id {
			return c["name"].(string), c["site"].(string), c["grid"].(string), true
		}
	}
	return "", "", "", false
}

func newStack(t *testing.T, ctx context.Context) *stack {
	t.Helper()
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	eng, err := alerts.New(alerts.Options{Journal: j, Units: stackUnits, Cameras: cameraLookup, Rules: []alerts.Rule{
		{Match: alerts.Match{Type: alerts.Intrusion, Site: "key-site"}, Severity: alerts.Critical, AckWithin: 2 * time.Minute, ResolveWithin: 30 * time.Minute, DispatchTo: "police", Cooldown: 30 * time.Second},
		{Severity: alerts.Minor, AckWithin: 15 * time.Minute, ResolveWithin: 24 * time.Hour, Cooldown: time.Minute},
	}})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := stream.New(stream.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, j: j, eng: eng, hub: hub, sessions: map[string][2]string{}, roles: map[string][2]string{
		"desk-secret-token":         {"desk-1", "desk"},
		"investigator-secret-token": {"investigator-1", "investigator"},
		"admin-secret-token":        {"ops", "admin"},
	}}
	api, err := alertsapi.New(alertsapi.Options{Engine: eng, Actor: func(r *http.Request) string { return s.principal(r)[0] }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var runs sync.WaitGroup
	runs.Go(func() { hub.Run(runCtx) })
	runs.Go(func() { eng.Run(runCtx) })
	t.Cleanup(runs.Wait)
	t.Cleanup(stopRun)

	mux := http.NewServeMux()
	s.mux = mux
	mux.Handle("/", web.Handler())
	mux.HandleFunc("/api/v1/session", s.serveSession)
	need := func(h http.Handler, roles ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := s.principal(r)
			if p[0] == "" {
				http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			for _, role := range roles {
				if role == p[1] || p[1] == "admin" {
					h.ServeHTTP(w, r)
					return
				}
			}
			http.Error(w, `{"error":"forbidden","code":"forbidden"}`, http.StatusForbidden)
		})
	}
	jsonOf := func(v any) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		})
	}
	mux.Handle("GET /api/v1/alerts/stream", need(hub, "desk"))
	mux.Handle("/api/v1/alerts", need(api, "desk", "investigator"))
	mux.Handle("/api/v1/alerts/", need(api, "desk", "investigator"))
	mux.Handle("GET /api/v1/units", need(jsonOf(stackUnits), "desk", "investigator"))
	mux.Handle("GET /api/v1/sites", need(jsonOf([]map[string]string{{"id": "hall", "name": "公共服务大厅"}, {"id": "key-site", "name": "重点部位"}}), "desk", "investigator"))
	mux.Handle("GET /api/v1/cameras", need(jsonOf(stackCameras), "desk", "investigator"))
	mux.Handle("GET /api/v1/cameras/{id}/recordings", need(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
		seg := func(i int) map[string]any {
			st := start.Add(time.Duration(9*60+i) * time.Minute)
			return map[string]any{"id": st.Format("15-04-05.000") + "Z", "start": st, "end": st.Add(time.Minute), "duration_s": 60, "bytes": 30_000_000,
				"url": "/api/v1/cameras/" + r.PathValue("id") + "/recordings/" + st.Format("15-04-05.000") + "Z"}
		}
		gapAt := start.Add((9*60 + 2) * time.Minute)
		jsonOf(map[string]any{"camera": r.PathValue("id"), "segments": []any{seg(0), seg(1), seg(3)},
			"gaps": []any{map[string]any{"start": gapAt, "end": gapAt.Add(time.Minute)}}}).ServeHTTP(w, r)
	}), "investigator"))
	s.audit = []map[string]any{
		{"seq": 1, "at": "2026-11-26T09:00:00Z", "by": "desk-1", "action": "acknowledged", "object": "01JDALERT"},
		{"seq": 2, "at": "2026-11-26T09:05:00Z", "by": "investigator-1", "action": "exported", "object": "key-gate 09:00–09:10"},
	}
	mux.Handle("GET /api/v1/audit", need(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		s.mu.Lock()
		recs := []map[string]any{}
		next := since
		for _, rec := range s.audit {
			if n := rec["seq"].(int); n > since {
				recs = append(recs, rec)
				next = n
			}
		}
		s.mu.Unlock()
		jsonOf(map[string]any{"records": recs, "next_since": next}).ServeHTTP(w, r)
	}), "admin"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func (s *stack) URL() string { return "http://" + s.addr }

func (s *stack) serve(ln net.Listener) {
	s.srv = &http.Server{Handler: s.mux}
	go s.srv.Serve(ln)
}

// stop takes the server off the network: the listener closes, every
// connection (websockets too) drops, the page's requests are refused.
func (s *stack) stop() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.hub.DisconnectAll()
	s.srv = nil
}

// restart serves again on the same address.
func (s *stack) restart() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *stack) principal(r *http.Request) [2]string {
	c, err := r.Cookie("vigil_session")
	if err != nil {
		return [2]string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

func (s *stack) serveSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodPost:
		var req struct{ Token string }
		p, ok := [2]string{}, false
		if json.NewDecoder(r.Body).Decode(&req) == nil {
			p, ok = s.roles[req.Token]
		}
		if !ok {
			http.Error(w, `{"error":"invalid token","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.n++
		id := fmt.Sprintf("session-%d", s.n)
		s.sessions[id] = p
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "vigil_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		fmt.Fprintf(w, `{"name":%q,"role":%q}`, p[0], p[1])
	case http.MethodGet:
		p := s.principal(r)
		if p[0] == "" {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"name":%q,"role":%q}`, p[0], p[1])
	case http.MethodDelete:
		if c, err := r.Cookie("vigil_session"); err == nil {
			s.mu.Lock()
			delete(s.sessions, c.Value)
			s.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// raise appends a new alert to the journal as the engine would.
func (s *stack) raise(ctx context.Context, id, camera string, sev alerts.Severity, typ alerts.Type) {
	s.t.Helper()
	name, site, grid, _ := cameraLookup(camera)
	now := time.Now().UTC()
	ack, res := now.Add(2*time.Minute), now.Add(30*time.Minute)
	_, err := s.j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, At: now, Alert: alerts.Alert{
		ID: id, Camera: camera, CameraName: name, Site: site, Grid: grid, Type: typ,
		Severity: sev, Source: "onvif", Signal: alerts.SignalActive, Status: alerts.StatusNew,
		RaisedAt: now, LastSeenAt: now, Count: 1, AckDeadline: &ack, ResolveDeadline: &res,
		History: []alerts.HistoryEntry{{At: now, By: "system", Action: "raised"}},
	}}, 0)
	if err != nil {
		s.t.Fatalf("append %s: %v", id, err)
	}
}

// newBrowser starts headless Debian chromium with a fresh profile and the
// given viewport. A missing chromium fails the test: the app is not
// tested without it.
func newBrowser(t *testing.T, ctx context.Context, w, h int) context.Context {
	t.Helper()
	return testutil.Chromium(t, ctx, w, h, chromedp.Flag("lang", "zh-CN"))
}

// shoot saves a PNG of the page under dir and, when VIGIL_SCREENSHOT_DIR
// is set, there too, for a person to look at.
func shoot(t *testing.T, browser context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("VIGIL_SCREENSHOT_DIR"); d != "" {
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Errorf("screenshot to VIGIL_SCREENSHOT_DIR: %v", err)
		}
	}
	t.Logf("screenshot %s", filepath.Join(dir, name+".png"))
}

func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
}

// choose picks an option of a select as a person does: the value changes
// and the page hears "change".
func choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(s => { s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); })(document.querySelector(%q))`, value, sel))
}

func login(url, token string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(url + "/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		chromedp.SendKeys(chromedp.CSS(`#login-token`), token),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
	}
}
