package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"vigil/internal/auth"
	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

// deskAlert is what the browser test reads of an alert through the API.
type deskAlert struct {
	ID       string `json:"id"`
	Camera   string `json:"camera"`
	Type     string `json:"type"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	Unit     string `json:"unit"`
	Feedback string `json:"feedback"`
	Clip     *struct {
		URL string `json:"url"`
	} `json:"clip"`
	FollowUp *struct {
		Satisfied bool   `json:"satisfied"`
		Note      string `json:"note"`
		By        string `json:"by"`
	} `json:"follow_up"`
	History []struct {
		By     string `json:"by"`
		Action string `json:"action"`
		Note   string `json:"note"`
	} `json:"history"`
}

// alertOf waits for the alert of camera and type to exist and returns it.
func alertOf(t *testing.T, a *App, camera, typ string) deskAlert {
	t.Helper()
	var found deskAlert
	waitFor(t, 15*time.Second, camera+" "+typ+" alert", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts?camera="+camera, deskToken, "")
		var l struct {
			Alerts []deskAlert `json:"alerts"`
		}
		json.Unmarshal([]byte(body), &l)
		for _, al := range l.Alerts {
			if al.Type == typ {
				found = al
				return true
			}
		}
		return false
	})
	return found
}

func getAlert(t *testing.T, a *App, id string) deskAlert {
	t.Helper()
	code, body := call(t, "GET", a.URL()+"/api/v1/alerts/"+id, deskToken, "")
	if code != 200 {
		t.Fatalf("GET alert %s: %d %s", id, code, body)
	}
	var al deskAlert
	if err := json.Unmarshal([]byte(body), &al); err != nil {
		t.Fatalf("alert %s: %v %s", id, err, body)
	}
	return al
}

// deskBrowser starts headless Debian chromium at 1366×768 with a fresh
// profile. A missing chromium fails the test: the desk is not tested
// without it.
func deskBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	return testutil.Chromium(t, ctx, 1366, 768)
}

// screenshot saves the viewport under dir and, for a person to look at,
// at /tmp/desk-e2e-NAME.png (the Chinese desk also at /tmp/desk-e2e.png).
func screenshot(t *testing.T, browser context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("/tmp/desk-e2e-"+name+".png", png, 0o644) // best effort, outside the test's dir
	if name == "zh" {
		os.WriteFile("/tmp/desk-e2e.png", png, 0o644)
	}
}

// TestDeskBrowserEndToEnd drives the desk page in chromium against the
// whole service: real session auth, camsim cameras through ingest, the
// engine, the journal, the hub and the recorder.
func TestDeskBrowserEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	shots := t.TempDir()
	sim := startCamsim(t, "cam/gate", "cam/hall")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site", "hall": "hall"}), &testutil.Buffer{})
	waitFor(t, 15*time.Second, "cameras online", func() bool {
		return cameraStatus(t, a, "gate") == "online" && cameraStatus(t, a, "hall") == "online"
	})
	browser := deskBrowser(t, ctx)

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, acancel := context.WithTimeout(browser, 20*time.Second)
		defer acancel()
		for i, act := range actions {
			if err := chromedp.Do(actx, act); err != nil {
				if png, serr := chromedp.Run(browser, chromedp.CaptureScreenshot()); serr == nil {
					os.WriteFile(filepath.Join(shots, "failed.png"), png, 0o644)
					os.WriteFile("/tmp/desk-e2e-failed.png", png, 0o644)
				}
				t.Fatalf("%s: step %d: %v", what, i+1, err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		actx, acancel := context.WithTimeout(browser, 20*time.Second)
		defer acancel()
		s, err := chromedp.Run(actx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	eval := func(expr string) int {
		t.Helper()
		actx, acancel := context.WithTimeout(browser, 20*time.Second)
		defer acancel()
		n, err := chromedp.Run(actx, chromedp.Evaluate[int](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return n
	}
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
	}
	row := func(id string) string { return fmt.Sprintf(`#alert-list li[data-id=%q]`, id) }
	detailStatus := func(st string) string { return fmt.Sprintf(`#detail-body[data-status=%q]`, st) }

	// A wrong token is refused; the right one opens the desk.
	do("bad login",
		chromedp.Navigate(a.URL()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		chromedp.SendKeys(chromedp.CSS(`#login-token`), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		poll(`document.getElementById("login-error").textContent === "令牌无效"`),
	)
	do("login",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("login-token").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#login-token`), deskToken),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#alert-list`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
	)
	if who := text(`#who-name`); who != "desk-1 (值守)" {
		t.Fatalf("logged-in name %q", who)
	}

	// The camera panel shows both cameras online.
	do("cameras online",
		chromedp.WaitVisible(chromedp.CSS(`#camera-list li[data-id="gate"][data-status="online"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#camera-list li[data-id="hall"][data-status="online"]`)),
	)
	if s := text(`#camera-list section[data-site="key-site"] li[data-id="gate"] .cam-state`); !strings.HasPrefix(s, "在线") {
		t.Fatalf("gate camera state %q", s)
	}

	// An intrusion at the key site appears live, auto-dispatched to police.
	if _, err := sim.Trigger("cam/gate", camsim.Intrusion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	gate := alertOf(t, a, "gate", "intrusion")
	do("intrusion appears",
		chromedp.WaitVisible(chromedp.CSS(row(gate.ID)+`[data-severity="critical"]`)),
		chromedp.Click(chromedp.CSS(row(gate.ID)+` button`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail-body[data-id="`+gate.ID+`"]`)),
	)
	if title := text(`#detail-title`); title != "紧急 · 区域入侵 · gate" {
		t.Fatalf("intrusion title %q", title)
	}

	// Motion in the hall is minor and not auto-dispatched: the desk handles
	// it step by step.
	if _, err := sim.Trigger("cam/hall", camsim.Motion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	hall := alertOf(t, a, "hall", "motion")
	if hall.Status != "new" {
		t.Fatalf("hall motion alert %+v", hall)
	}
	do("handle hall motion",
		chromedp.WaitVisible(chromedp.CSS(row(hall.ID))),
		chromedp.Click(chromedp.CSS(row(hall.ID)+` button`)),
		chromedp.WaitVisible(chromedp.CSS(detailStatus("new"))),
		chromedp.WaitVisible(chromedp.CSS(`#btn-ack`)),
		chromedp.Click(chromedp.CSS(`#btn-ack`)),
		chromedp.WaitVisible(chromedp.CSS(detailStatus("acknowledged"))),
		// Chosen as a person does: the value changes and the page hears it.
		chromedp.Evaluate[chromedp.Void](`(s => { s.value = "police"; s.dispatchEvent(new Event("change", {bubbles: true})); })(document.getElementById("unit-select"))`),
		chromedp.Click(chromedp.CSS(`#btn-dispatch`)),
		chromedp.WaitVisible(chromedp.CSS(detailStatus("dispatched"))),
	)
	screenshot(t, browser, shots, "dispatched")
	// The clip player has the alert's clip.
	clip, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.CSS(`#clip`), "src"))
	if err != nil || !clip.Exists || clip.Value != "/api/v1/alerts/"+hall.ID+"/clip" {
		t.Fatalf("clip src %+v (%v)", clip, err)
	}
	// The segment being written is not exportable until it closes (2 s
	// segments here): wait for one in the catalog, as a desk would see the
	// clip a segment after the alert.
	waitFor(t, 15*time.Second, "a closed hall segment", func() bool {
		segs, _, _ := a.recorder.Catalog().List("hall", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return len(segs) > 0
	})
	if clipStatus := eval(`fetch(document.getElementById("clip").src, {method: "HEAD"}).then(r => r.status)`); clipStatus != 200 {
		t.Fatalf("clip HEAD from the page: %d", clipStatus)
	}
	// The player reads the clip's metadata: the recorder's export plays in
	// chromium, not only in ffprobe.
	do("clip metadata",
		chromedp.Evaluate[chromedp.Void](`(v => { v.preload = "metadata"; v.load(); })(document.getElementById("clip"))`),
		poll(`(v => v.error ? Promise.reject(new Error("media error " + v.error.code + " " + v.error.message)) : v.readyState >= 1 && v.duration > 0)(document.getElementById("clip"))`),
	)
	if d, err := chromedp.Run(browser, chromedp.Evaluate[float64](`document.getElementById("clip").duration`)); err == nil {
		t.Logf("clip duration in the player: %.1fs", d)
	}
	do("resolve hall motion",
		chromedp.SendKeys(chromedp.CSS(`#resolve-feedback`), "已到场查看，无异常"),
		chromedp.Click(chromedp.CSS(`#btn-resolve`)),
		chromedp.WaitVisible(chromedp.CSS(detailStatus("resolved"))),
		chromedp.WaitVisible(chromedp.CSS(`#act-followup`)),
	)
	if s := text(`#d-feedback`); s != "已到场查看，无异常" {
		t.Fatalf("feedback shown %q", s)
	}
	got := getAlert(t, a, hall.ID)
	var steps []string
	for _, h := range got.History {
		if h.By == "desk-1" {
			steps = append(steps, h.Action)
		}
	}
	if fmt.Sprint(steps) != "[acknowledged dispatched resolved]" || got.Unit != "police" || got.Feedback != "已到场查看，无异常" {
		t.Fatalf("hall alert after handling: steps %v, %+v", steps, got)
	}

	// Follow-up visit (回访) on the resolved alert.
	do("follow-up",
		chromedp.Click(chromedp.CSS(`#followup-satisfied`)), // not satisfied
		chromedp.SendKeys(chromedp.CSS(`#followup-note`), "群众反映响应慢"),
		chromedp.Click(chromedp.CSS(`#btn-followup`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#act-followup`)),
		poll(`document.getElementById("d-followup").textContent.startsWith("不满意 · 群众反映响应慢 · desk-1")`),
	)
	hist := text(`#history`)
	for _, step := range []string{"登记", "受理 · desk-1", "分流交办 · desk-1", "办结 · desk-1 · 已到场查看，无异常", "回访 · desk-1"} {
		if !strings.Contains(hist, step) {
			t.Errorf("history %q lacks %q", hist, step)
		}
	}
	got = getAlert(t, a, hall.ID)
	t.Logf("history through the API: %+v", got.History)
	if got.FollowUp == nil || got.FollowUp.Satisfied || got.FollowUp.Note != "群众反映响应慢" || got.FollowUp.By != "desk-1" {
		t.Fatalf("follow-up through the API: %+v", got.FollowUp)
	}

	// The server drops every websocket while two more alerts are raised;
	// both show after the page reconnects with since.
	hellos := eval(`Number(document.body.dataset.hellos)`)
	if hellos != 1 {
		t.Fatalf("streams opened before the disconnect: %d", hellos)
	}
	a.hub.DisconnectAll()
	if _, err := sim.Trigger("cam/hall", camsim.Intrusion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Trigger("cam/gate", camsim.Motion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	hallIn := alertOf(t, a, "hall", "intrusion")
	gateMo := alertOf(t, a, "gate", "motion")
	do("alerts after reconnect",
		poll(`Number(document.body.dataset.hellos) === 2`),
		chromedp.WaitVisible(chromedp.CSS(row(hallIn.ID))),
		chromedp.WaitVisible(chromedp.CSS(row(gateMo.ID))),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
	)
	if n := text(`#count-new`); n != "2" {
		t.Fatalf("待受理 counter %q, want 2 (hall intrusion, gate motion; the gate intrusion was dispatched by its rule)", n)
	}
	screenshot(t, browser, shots, "zh")

	// English: labels change, and stay after a reload (the session cookie
	// keeps the desk open).
	do("english",
		chromedp.Click(chromedp.CSS(`#btn-lang`)),
		poll(`document.querySelector(".top h1").textContent === "Response desk"`),
	)
	// The status filter set to "all" as a person would: choose, then change.
	showAll := chromedp.Evaluate[chromedp.Void](`(s => { s.value = ""; s.dispatchEvent(new Event("change", {bubbles: true})); })(document.getElementById("filter-status"))`)
	checkEnglish := func(when string) {
		t.Helper()
		for sel, want := range map[string]string{
			`.top h1`:                       "Response desk",
			`#btn-logout`:                   "Log out",
			`#conn-text`:                    "Live",
			`#cam-title`:                    "Cameras",
			`#btn-lang`:                     "中文",
			`#d-status`:                     "Resolved",
			`#filter-status option:checked`: "All",
			`#history li:nth-child(2)`:      "", // checked below: action labels in English
			`#d-followup`:                   "Not satisfied · 群众反映响应慢 · desk-1",
			row(gateMo.ID) + ` .sev`:        "Minor",
			`#camera-list li[data-id="gate"] .cam-state`: "Online",
		} {
			if got := text(sel); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s reads %q, want %q", when, sel, got, want)
			}
		}
		hist := text(`#history`)
		for _, step := range []string{"Raised", "Acknowledged · desk-1", "Dispatched · desk-1", "Resolved · desk-1 · 已到场查看，无异常", "Follow-up · desk-1"} {
			if !strings.Contains(hist, step) {
				t.Errorf("%s: history %q lacks %q", when, hist, step)
			}
		}
		lang, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.documentElement.lang`))
		if err != nil {
			t.Fatal(err)
		}
		title, err := chromedp.Run(browser, chromedp.Title())
		if err != nil {
			t.Fatal(err)
		}
		if lang != "en" || title != "(2) Response desk" {
			t.Errorf("%s: html lang %q, title %q", when, lang, title)
		}
	}
	do("select resolved alert in English", showAll,
		chromedp.Click(chromedp.CSS(row(hall.ID)+` button`)), chromedp.WaitVisible(chromedp.CSS(detailStatus("resolved"))))
	checkEnglish("after the switch")
	do("reload",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
		chromedp.WaitVisible(chromedp.CSS(row(gateMo.ID))),
		chromedp.WaitVisible(chromedp.CSS(`#camera-list li[data-id="gate"][data-status="online"]`)),
		showAll,
		chromedp.Click(chromedp.CSS(row(hall.ID)+` button`)), chromedp.WaitVisible(chromedp.CSS(detailStatus("resolved"))),
	)
	checkEnglish("after reload")
	screenshot(t, browser, shots, "en")

	// Logout: back to the login form; the old session cookie is dead on the
	// server, and the page's own API calls get 401.
	cookies, err := chromedp.Call(browser, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == auth.CookieName {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatalf("no session cookie in %v", cookies)
	}
	do("logout",
		chromedp.Click(chromedp.CSS(`#btn-logout`)),
		chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#desk`)),
		poll(`document.getElementById("conn").dataset.state === "closed" && document.getElementById("alert-list").children.length === 0`),
	)
	if s := text(`#login-title`); s != "Desk login" {
		t.Errorf("login form after logout reads %q, want the English title", s)
	}
	if status := eval(`fetch("/api/v1/alerts").then(r => r.status)`); status != 401 {
		t.Fatalf("page's API call after logout: %d, want 401", status)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", a.URL()+"/api/v1/alerts", nil)
	req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: session})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("old session cookie after logout: %d, want 401", resp.StatusCode)
	}
	// A reload stays on the login form.
	do("reload after logout", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#login-token`)))
	screenshot(t, browser, shots, "logout")

	// A refused token reads in the chosen language, and follows the switch.
	do("bad login in English",
		chromedp.SendKeys(chromedp.CSS(`#login-token`), "wrong"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		poll(`document.getElementById("login-error").textContent === "Invalid token"`),
		chromedp.Click(chromedp.CSS(`#btn-lang`)),
		poll(`document.getElementById("login-error").textContent === "令牌无效" && document.getElementById("login-title").textContent === "值守登录"`),
	)
}
