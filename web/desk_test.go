package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

const deskToken = "desk-secret-token"

// sessions is a stand-in for internal/auth: one token, named desk-1, and a
// session cookie. The app's end-to-end test covers the real one.
type sessions struct {
	mu  sync.Mutex
	ids map[string]bool
	n   int
}

func (s *sessions) actor(r *http.Request) string {
	c, err := r.Cookie("vigil_session")
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[c.Value] {
		return "desk-1"
	}
	return ""
}

func (s *sessions) serveSession(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var req struct{ Token string }
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Token != deskToken {
			http.Error(w, `{"error":"invalid token","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.n++
		id := fmt.Sprintf("session-%d", s.n)
		s.ids[id] = true
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "vigil_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"desk-1","role":"desk"}`)
	case http.MethodGet:
		if s.actor(r) == "" {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"desk-1","role":"desk"}`)
	case http.MethodDelete:
		if c, err := r.Cookie("vigil_session"); err == nil {
			s.mu.Lock()
			delete(s.ids, c.Value)
			s.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: "vigil_session", Path: "/", MaxAge: -1})
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *sessions) require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.actor(r) == "" {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestDeskInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	units := []alerts.Unit{{ID: "police", Name: "派出所"}, {ID: "zongzhi", Name: "综治办"}}
	eng, err := alerts.New(alerts.Options{Journal: j, Units: units,
		Rules: []alerts.Rule{{Severity: alerts.Minor, Cooldown: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := stream.New(stream.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	ss := &sessions{ids: map[string]bool{}}
	api, err := alertsapi.New(alertsapi.Options{Engine: eng, Actor: ss.actor})
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stopRun := context.WithCancel(ctx)
	var runs sync.WaitGroup
	runs.Go(func() {
		if err := hub.Run(runCtx); err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	runs.Go(func() {
		if err := eng.Run(runCtx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	defer runs.Wait()
	defer stopRun()

	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.HandleFunc("/api/v1/session", ss.serveSession)
	var streamClosed atomic.Bool // keeps the page from reconnecting
	mux.Handle("GET /api/v1/alerts/stream", ss.require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streamClosed.Load() {
			http.Error(w, "paused by the test", http.StatusServiceUnavailable)
			return
		}
		hub.ServeHTTP(w, r)
	})))
	mux.Handle("/api/v1/alerts", ss.require(api))
	mux.Handle("/api/v1/alerts/", ss.require(api))
	mux.Handle("GET /api/v1/units", ss.require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(units)
	})))
	mux.Handle("GET /api/v1/cameras", ss.require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]map[string]any{
			{"id": "key-gate", "name": "重点部位大门", "site": "key-site", "status": "online", "since": "2026-11-26T08:00:00Z"},
			{"id": "hall-entrance", "name": "服务大厅入口", "site": "hall", "status": "offline", "since": "2026-11-26T09:30:00Z"},
		})
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	browser := testutil.Chromium(t, ctx, 1366, 768)

	raise := func(id, camName string, sev alerts.Severity) {
		t.Helper()
		now := time.Now().UTC()
		ack, res := now.Add(2*time.Minute), now.Add(30*time.Minute)
		_, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, At: now, Alert: alerts.Alert{
			ID: id, Camera: "key-gate", CameraName: camName, Site: "key-site", Grid: "G03", Type: "intrusion",
			Severity: sev, Source: "onvif", Signal: alerts.SignalActive, Status: alerts.StatusNew,
			RaisedAt: now, LastSeenAt: now, Count: 1, AckDeadline: &ack, ResolveDeadline: &res,
			History: []alerts.HistoryEntry{{At: now, By: "system", Action: "raised"}},
		}}, 0)
		if err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
	}
	row := func(id string) string { return fmt.Sprintf(`#alert-list li[data-id=%q]`, id) }
	detailStatus := func(st string) string { return fmt.Sprintf(`#detail-body[data-status=%q]`, st) }

	// A camera name that would run script if the page used innerHTML.
	const evilName = `<img src=x onerror="document.body.dataset.xss=1">重点部位大门`
	err = chromedp.Do(browser,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`#login-token`),
		chromedp.SendKeys(`#login-token`, deskToken),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#alert-list`),
		chromedp.WaitVisible(`#conn[data-state="open"]`),
		chromedp.WaitVisible(`#camera-list li[data-status="offline"]`),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	who, err := chromedp.Run(browser, chromedp.Text(`#who-name`))
	if err != nil || who != "desk-1 (值守)" {
		t.Fatalf("logged-in name %q (%v)", who, err)
	}

	raise("A1", evilName, alerts.Critical)
	err = chromedp.Do(browser,
		chromedp.WaitVisible(row("A1")),
		chromedp.Click(row("A1")+` button`),
		chromedp.WaitVisible(detailStatus("new")),
		chromedp.Click(`#btn-ack`),
		chromedp.WaitVisible(detailStatus("acknowledged")),
		choose(`#unit-select`, "police"),
		chromedp.Click(`#btn-dispatch`),
		chromedp.WaitVisible(detailStatus("dispatched")),
		chromedp.SendKeys(`#resolve-feedback`, "已到场处置"),
		chromedp.Click(`#resolve-false`),
		chromedp.Click(`#btn-resolve`),
		chromedp.WaitVisible(`#confirm-false`), // 误报 asks first
		chromedp.Click(`#btn-confirm-false`),
		chromedp.WaitVisible(detailStatus("resolved")),
		chromedp.WaitVisible(`#act-followup`),
	)
	if err != nil {
		t.Fatalf("handle A1: %v", err)
	}
	title, err := chromedp.Run(browser, chromedp.Text(`#detail-title`))
	if err != nil {
		t.Fatal(err)
	}
	xss, err := chromedp.Run(browser, chromedp.AttributeValue(`body`, "data-xss"))
	if err != nil {
		t.Fatal(err)
	}
	if xss.Exists {
		t.Fatal("camera name ran as HTML")
	}
	if want := "紧急 · 区域入侵 · " + evilName; title != want {
		t.Fatalf("detail title %q, want %q", title, want)
	}

	changes, err := j.Since(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, c := range changes {
		if c.Alert.ID == "A1" && c.Kind != alerts.KindRaised {
			steps = append(steps, fmt.Sprintf("%s by %s", c.Kind, c.By))
		}
	}
	if fmt.Sprint(steps) != "[acknowledged by desk-1 dispatched by desk-1 resolved by desk-1]" {
		t.Fatalf("journal steps %v", steps)
	}
	a1, err := j.Get(ctx, "A1")
	if err != nil || a1.Unit != "police" || !a1.FalseAlarm || a1.Feedback != "已到场处置" {
		t.Fatalf("A1 after handling: %+v (%v)", a1, err)
	}

	// The server drops the websocket; two alerts arrive while the page is
	// away and show after its reconnect with since.
	hub.DisconnectAll()
	raise("A2", "服务大厅入口", alerts.Major)
	raise("A3", "调解室", alerts.Minor)
	err = chromedp.Do(browser,
		chromedp.WaitVisible(row("A2")),
		chromedp.WaitVisible(row("A3")),
		chromedp.WaitVisible(`#conn[data-state="open"]`),
	)
	if err != nil {
		t.Fatalf("after reconnect: %v", err)
	}

	// Someone else acknowledges A2 behind the page's back: its click gets
	// 409 and shows the fresh state.
	err = chromedp.Do(browser, chromedp.Click(row("A2")+` button`), chromedp.WaitVisible(detailStatus("new")))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := j.Get(ctx, "A2")
	streamClosed.Store(true) // keep the page on the stale version while we act
	hub.DisconnectAll()
	if err := chromedp.Do(browser, chromedp.WaitVisible(`#conn[data-state="closed"]`)); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Ack(ctx, "A2", "desk-2", "", a2.Version); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(browser,
		chromedp.Click(`#btn-ack`),
		chromedp.WaitVisible(`#conflict`),
		chromedp.WaitVisible(detailStatus("acknowledged")),
	)
	if err != nil {
		t.Fatalf("conflict: %v", err)
	}

	// The camera changes A3 behind the page's back (a repeat, by the
	// system): the officer's 受理 still goes through, sent again on the
	// current version, with no conflict shown.
	if err := chromedp.Do(browser, chromedp.Click(row("A3")+` button`), chromedp.WaitVisible(detailStatus("new"))); err != nil {
		t.Fatal(err)
	}
	a3, _ := j.Get(ctx, "A3")
	repeat := a3
	repeat.Count++
	if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindUpdated, At: time.Now().UTC(), By: alerts.System, Reason: alerts.ReasonRepeat, Alert: repeat}, a3.Version); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(browser, chromedp.Click(`#btn-ack`), chromedp.WaitVisible(detailStatus("acknowledged"))); err != nil {
		t.Fatalf("ack after a camera change: %v", err)
	}
	if got, _ := j.Get(ctx, "A3"); got.Status != alerts.StatusAcknowledged || got.AcknowledgedBy != "desk-1" || got.Count != 2 {
		t.Fatalf("A3 after the ack: %+v", got)
	}
	if hidden, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.getElementById("conflict").hidden`)); err != nil || !hidden {
		t.Fatalf("a conflict was shown for a camera change (%v)", err)
	}
	streamClosed.Store(false)
	if err := chromedp.Do(browser, chromedp.WaitVisible(`#conn[data-state="open"]`)); err != nil {
		t.Fatalf("reconnect after pause: %v", err)
	}

	// A signal ends and comes back within the cooldown: the reopened alert
	// goes to the top of the list, above newer work, highlighted, with a
	// sound; a repeat only changes its count in place.
	signal := func(st alerts.State) {
		t.Helper()
		if err := eng.Handle(ctx, alerts.Event{Camera: "key-gate", Type: alerts.Motion, Key: "r", State: st, Source: alerts.SourceGeneric}); err != nil {
			t.Fatal(err)
		}
	}
	signal(alerts.Active)
	signal(alerts.Inactive)
	var reopened []alerts.Alert
	if reopened, _, err = j.List(ctx, alerts.Filter{Camera: "key-gate", Signal: alerts.SignalEnded, Open: true}); err != nil || len(reopened) != 1 {
		t.Fatalf("the ended motion alert: %v %v", reopened, err)
	}
	rid := reopened[0].ID
	raise("A4", "重点部位大门", alerts.Critical)
	topIs := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(fmt.Sprintf(`#alert-list li:first-child.fresh[data-id=%q]`, id))
	}
	if err := chromedp.Do(browser, topIs("A4")); err != nil {
		t.Fatalf("A4 on top: %v", err)
	}
	alarms := func() int {
		v, err := chromedp.Run(browser, chromedp.AttributeValue(`body`, "data-alarms"))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(v.Value)
		return n
	}
	before := alarms()
	signal(alerts.Active)
	if err := chromedp.Do(browser, topIs(rid)); err != nil {
		t.Fatalf("reopened alert on top and highlighted: %v", err)
	}
	if n := alarms(); n != before+1 {
		t.Fatalf("%d alarms played for the reopened alert, want 1", n-before)
	}
	signal(alerts.Active) // a repeat: count 3, no sound
	testutil.WaitFor(t, 10*time.Second, "the repeat's count on the row", func() bool {
		txt, err := chromedp.Run(browser, chromedp.Text(row(rid)+` .meta`))
		return err == nil && strings.Contains(txt, "×3")
	})
	if n := alarms(); n != before+1 {
		t.Fatalf("a repeat played a sound")
	}

	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "desk.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dst := os.Getenv("VIGIL_DESK_SCREENSHOT"); dst != "" {
		os.WriteFile(dst, png, 0o644)
	}
	t.Logf("screenshot %s", shot)
}

func TestHandlerServesOnlyThePage(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", 200}, {"/assets/desk.js", 200}, {"/assets/i18n.js", 200}, {"/assets/app.css", 200}, {"/assets/app.js", 200}, {"/assets/common.js", 200}, {"/assets/footage.js", 200}, {"/assets/admin.js", 200},
		{"/assets/", 404}, {"/nope", 404}, {"/assets/../desk.go", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("missing nosniff")
			}
		})
	}
}
