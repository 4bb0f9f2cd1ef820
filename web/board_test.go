package web_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/alerts"
)

// run performs actions in order and fails the test at the first that does
// not complete, with a screenshot of the moment.
func run(t *testing.T, browser context.Context, shots, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(browser, 20*time.Second)
	defer cancel()
	for i, a := range actions {
		if err := chromedp.Do(actx, a); err != nil {
			shoot(t, browser, shots, "failed-"+strings.ReplaceAll(what, " ", "-"))
			t.Fatalf("%s: step %d: %v", what, i+1, err)
		}
	}
}

func eval[T any](t *testing.T, browser context.Context, expr string) T {
	t.Helper()
	actx, cancel := context.WithTimeout(browser, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(actx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestBoardAtViewports: at a phone's and a desk's size the board fits
// without sideways scrolling, and an alert is handled by clicks: 受理 with
// a note, 分流交办 to a chosen unit, 办结反馈 with text. The Chinese page
// shows no English from the engine (actors, reasons, units, sites).
func TestBoardAtViewports(t *testing.T) {
	for _, vp := range []struct {
		name  string
		w, h  int
		phone bool
	}{
		{"phone-390x844", 390, 844, true},
		{"tablet-768x1024", 768, 1024, false},
		{"desk-1366x768", 1366, 768, false},
		{"wide-1920x1080", 1920, 1080, false},
	} {
		t.Run(vp.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			shots := t.TempDir()
			s := newStack(t, ctx)
			browser := newBrowser(t, ctx, vp.w, vp.h)
			row := func(id string) string { return fmt.Sprintf(`#alert-list li[data-id=%q]`, id) }
			status := func(st string) string { return fmt.Sprintf(`#detail-body[data-status=%q]`, st) }

			// An intrusion at the key site, dispatched by its rule, and
			// motion in the hall waiting for 受理.
			if err := s.eng.Handle(ctx, alerts.Event{Camera: "key-gate", Type: alerts.Intrusion, Key: "gate", State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
				t.Fatal(err)
			}
			s.raise(ctx, "M1", "hall-counter", alerts.Minor, alerts.Motion)
			run(t, browser, shots, "login", append(login(s.URL(), "desk-secret-token"),
				chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
				chromedp.WaitVisible(chromedp.CSS(row("M1"))),
				chromedp.WaitVisible(chromedp.CSS(`#camera-list li[data-id="key-gate"]`)),
			)...)
			fits := func(when string) {
				t.Helper()
				if sw, iw := eval[int](t, browser, `document.scrollingElement.scrollWidth`), eval[int](t, browser, `innerWidth`); sw > iw {
					shoot(t, browser, shots, "overflow")
					t.Errorf("%s: the page is %d px wide in a %d px window", when, sw, iw)
				}
			}
			fits("after login")
			// 待受理 first, above the dispatched critical alert.
			if first := eval[string](t, browser, `document.querySelector("#alert-list li").dataset.id`); first != "M1" {
				t.Errorf("first row %s, want the 待受理 alert M1", first)
			}
			if got := eval[string](t, browser, `document.title`); got != "(1) 应急值守台" {
				t.Errorf("tab title %q", got)
			}
			if got := eval[string](t, browser, `[...document.querySelectorAll("#camera-list .site-name")].map(e => e.textContent).join(",")`); got != "公共服务大厅,重点部位" {
				t.Errorf("camera groups %q", got)
			}
			if got := eval[string](t, browser, `[...document.querySelectorAll("#camera-list section[data-site=hall] .cam-name")].map(e => e.textContent).join(",")`); got != "服务大厅入口,服务大厅受理窗口" {
				t.Errorf("hall cameras %q, want sorted by name", got)
			}
			if vp.phone {
				if vis := eval[bool](t, browser, `getComputedStyle(document.getElementById("detail")).display !== "none"`); vis {
					t.Error("phone: the detail shows beside the list")
				}
			}

			run(t, browser, shots, "open and acknowledge",
				chromedp.Click(chromedp.CSS(row("M1")+` button`)),
				chromedp.WaitVisible(chromedp.CSS(status("new"))),
				chromedp.Click(chromedp.CSS(`#ack-note`)),
				chromedp.SendKeys(chromedp.CSS(`#ack-note`), "值班员已查看监控"),
				chromedp.Click(chromedp.CSS(`#btn-ack`)),
				chromedp.WaitVisible(chromedp.CSS(status("acknowledged"))),
			)
			if vp.phone {
				if vis := eval[bool](t, browser, `getComputedStyle(document.querySelector(".list-pane")).display !== "none"`); vis {
					t.Error("phone: the list shows beside the detail")
				}
			}
			fits("in the detail")
			// No unit is chosen for the officer: 分流交办 waits for one.
			if dis := eval[bool](t, browser, `document.getElementById("btn-dispatch").disabled && document.getElementById("unit-select").value === ""`); !dis {
				t.Error("dispatch is possible before a unit is chosen")
			}
			run(t, browser, shots, "dispatch",
				choose(`#unit-select`, "zongzhi"),
				chromedp.Click(chromedp.CSS(`#dispatch-note`)),
				chromedp.SendKeys(chromedp.CSS(`#dispatch-note`), "请综治办到场"),
				chromedp.Click(chromedp.CSS(`#btn-dispatch`)),
				chromedp.WaitVisible(chromedp.CSS(status("dispatched"))),
			)
			if dis := eval[bool](t, browser, `document.getElementById("btn-resolve").disabled`); !dis {
				t.Error("办结反馈 enabled without feedback")
			}
			run(t, browser, shots, "resolve",
				chromedp.Click(chromedp.CSS(`#resolve-feedback`)),
				chromedp.SendKeys(chromedp.CSS(`#resolve-feedback`), "已到场处置完毕"),
				chromedp.Click(chromedp.CSS(`#btn-resolve`)),
				chromedp.WaitVisible(chromedp.CSS(status("resolved"))),
				chromedp.WaitVisible(chromedp.CSS(`#act-followup`)),
			)
			m1, err := s.j.Get(ctx, "M1")
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, h := range m1.History {
				steps = append(steps, h.By+" "+h.Action+" "+h.Note)
			}
			want := []string{"system raised ", "desk-1 acknowledged 值班员已查看监控", "desk-1 dispatched → zongzhi (综治办): 请综治办到场", "desk-1 resolved 已到场处置完毕"}
			if !slices.Equal(steps, want) || m1.Unit != "zongzhi" || m1.Feedback != "已到场处置完毕" {
				t.Errorf("M1 after handling: %q, unit %s, feedback %q", steps, m1.Unit, m1.Feedback)
			}
			hist := eval[string](t, browser, `document.getElementById("history").textContent`)
			for _, w := range []string{"登记 · 系统", "受理 · desk-1 · 值班员已查看监控", "分流交办 · desk-1 · → 综治办 · 请综治办到场", "办结 · desk-1 · 已到场处置完毕"} {
				if !strings.Contains(hist, w) {
					t.Errorf("history %q lacks %q", hist, w)
				}
			}
			if got := eval[string](t, browser, `document.getElementById("d-site").textContent`); got != "公共服务大厅" {
				t.Errorf("site shown as %q", got)
			}
			fits("after handling")
			shoot(t, browser, shots, "board-"+vp.name)

			// The auto-dispatched intrusion reads in Chinese too.
			gate, _, err := s.j.List(ctx, alerts.Filter{Camera: "key-gate"})
			if err != nil || len(gate) != 1 {
				t.Fatalf("gate alerts %v %v", gate, err)
			}
			if vp.phone {
				run(t, browser, shots, "back", chromedp.Click(chromedp.CSS(`#btn-back`)), chromedp.WaitVisible(chromedp.CSS(`#alert-list`)))
			}
			run(t, browser, shots, "open the intrusion",
				chromedp.Click(chromedp.CSS(row(gate[0].ID)+` button`)),
				chromedp.WaitVisible(chromedp.CSS(status("dispatched"))),
				poll(`document.getElementById("history").textContent.includes("按规则自动交办")`),
			)
			page := eval[string](t, browser, `document.body.innerText`)
			for _, en := range []string{"system", "auto-dispatch", "by rule", "signal ended", "satisfied", "→ police", "key-site"} {
				if strings.Contains(page, en) {
					t.Errorf("the Chinese page shows %q:\n%s", en, page)
				}
			}
			if got := eval[string](t, browser, `document.getElementById("d-unit").textContent`); got != "派出所" {
				t.Errorf("unit shown as %q", got)
			}
			fits("intrusion detail")
			shoot(t, browser, shots, "intrusion-"+vp.name)
		})
	}
}

// TestBoardSurvivesServerRestart: the server goes away; the board stays
// with the banner, and after the restart it resumes from where it was
// with every alert once, the ones raised meanwhile included.
func TestBoardSurvivesServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	browser := newBrowser(t, ctx, 1366, 768)
	row := func(id string) string { return fmt.Sprintf(`#alert-list li[data-id=%q]`, id) }
	s.raise(ctx, "A1", "hall-entrance", alerts.Major, alerts.Motion)
	run(t, browser, shots, "login", append(login(s.URL(), "desk-secret-token"),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("A1"))),
	)...)
	s.raise(ctx, "A2", "key-gate", alerts.Critical, alerts.Intrusion)
	run(t, browser, shots, "live alert", chromedp.WaitVisible(chromedp.CSS(row("A2"))))

	s.stop()
	run(t, browser, shots, "server down",
		chromedp.WaitVisible(chromedp.CSS(`#banner`)),
		poll(`document.getElementById("banner").textContent.startsWith("连接中断，正在重连")`),
	)
	// Several reconnect attempts fail; the board stays.
	run(t, browser, shots, "still down", poll(`/已中断 00:0[3-9]/.test(document.getElementById("banner").textContent)`))
	if v := eval[string](t, browser, `document.body.dataset.view + " " + document.querySelectorAll("#alert-list li").length`); v != "desk 2" {
		t.Fatalf("while the server is down: view and rows %q, want the board with both alerts", v)
	}
	shoot(t, browser, shots, "disconnected")

	// Work arrives while the page is away.
	s.raise(ctx, "A3", "hall-counter", alerts.Minor, alerts.Motion)
	s.restart()
	run(t, browser, shots, "resumed",
		chromedp.WaitVisible(chromedp.CSS(row("A3"))),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#banner`)),
	)
	ids := eval[[]string](t, browser, `[...document.querySelectorAll("#alert-list li")].map(li => li.dataset.id).sort()`)
	if !slices.Equal(ids, []string{"A1", "A2", "A3"}) {
		t.Fatalf("rows after the restart %v, want A1 A2 A3 once each", ids)
	}
	if n := eval[int](t, browser, `Number(document.body.dataset.hellos)`); n != 2 {
		t.Errorf("streams opened: %d, want 2 (the first and one after the restart)", n)
	}
	if n := eval[string](t, browser, `document.getElementById("count-new").textContent`); n != "3" {
		t.Errorf("待受理 counter %s after the restart, want 3", n)
	}
	shoot(t, browser, shots, "resumed")

	// A 401, and only a 401, returns to the login view.
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
	s.hub.DisconnectAll()
	run(t, browser, shots, "session ended", chromedp.WaitVisible(chromedp.CSS(`#login-token`)))
}

// TestViewsByRole: an investigator lands on the footage workspace, an
// admin on the cameras view; neither sees the desk's board.
func TestViewsByRole(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	s.mux.HandleFunc("GET /api/v1/settings", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"timezone":"Asia/Shanghai","segment_s":60,"pre_roll_s":10,"post_roll_s":30}`)
	})

	t.Run("investigator", func(t *testing.T) {
		browser := newBrowser(t, ctx, 390, 844)
		run(t, browser, shots, "login", append(login(s.URL(), "investigator-secret-token"),
			chromedp.WaitVisible(chromedp.CSS(`#footage-cameras li[data-id="key-gate"]`)),
		)...)
		if v := eval[string](t, browser, `document.body.dataset.view + " " + document.getElementById("app-title").textContent`); v != "footage 录像调阅" {
			t.Errorf("investigator lands on %q", v)
		}
		if vis := eval[bool](t, browser, `getComputedStyle(document.getElementById("desk")).display !== "none" || getComputedStyle(document.querySelector(".counters")).display !== "none"`); vis {
			t.Error("the investigator sees the desk board")
		}
		run(t, browser, shots, "recordings",
			chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="key-gate"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`#footage-segments li.gap`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-gap`)),
		)
		if n := eval[int](t, browser, `document.querySelectorAll("#footage-segments li[data-id]").length`); n != 3 {
			t.Errorf("%d segments listed, want 3", n)
		}
		if sw, iw := eval[int](t, browser, `document.scrollingElement.scrollWidth`), eval[int](t, browser, `innerWidth`); sw > iw {
			t.Errorf("footage view %d px wide in %d", sw, iw)
		}
		shoot(t, browser, shots, "footage-390x844")
	})
	t.Run("admin", func(t *testing.T) {
		browser := newBrowser(t, ctx, 1366, 768)
		run(t, browser, shots, "login", append(login(s.URL(), "admin-secret-token"),
			chromedp.WaitVisible(chromedp.CSS(`#admin-camera-list li[data-id="hall-entrance"][data-status="offline"]`)),
		)...)
		if v := eval[string](t, browser, `document.body.dataset.view + " " + document.body.dataset.tab`); v != "admin cameras" {
			t.Errorf("admin lands on %q", v)
		}
		run(t, browser, shots, "audit",
			chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="audit"]`)),
			poll(`document.getElementById("audit-list").children.length === 2`),
		)
		if got := eval[string](t, browser, `document.getElementById("audit-list").textContent`); !strings.Contains(got, "导出录像") || !strings.Contains(got, "受理") {
			t.Errorf("audit list %q", got)
		}
		// In the configured zone (Asia/Shanghai), like every other view:
		// 09:05Z is 17:05, whatever the browser's own zone.
		if got := eval[string](t, browser, `document.getElementById("audit-list").textContent`); !strings.Contains(got, "17:05:00") {
			t.Errorf("audit times not in the configured zone: %q", got)
		}
		// The footage workspace is open to admins from the same menu.
		run(t, browser, shots, "footage",
			chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="footage"]`)),
			chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="key-gate"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-gap`)),
			chromedp.WaitVisible(chromedp.CSS(`#admin-nav`)),
		)
		shoot(t, browser, shots, "admin-footage-1366x768")
		run(t, browser, shots, "cameras again", chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="cameras"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#admin-camera-list`)))
		shoot(t, browser, shots, "admin-1366x768")
		// What happened meanwhile is in the log when it is opened again,
		// once, newest first (it showed the first visit's records only).
		s.addAudit(map[string]any{"at": "2026-11-26T09:10:00Z", "by": "investigator-1", "action": "downloaded", "object": "key-gate 09:00"})
		run(t, browser, shots, "audit again",
			chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="audit"]`)),
			chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="audit"]`)),
			poll(`document.getElementById("audit-list").children.length === 3`),
		)
		if got := eval[string](t, browser, `document.querySelector("#audit-list li").textContent`); !strings.Contains(got, "下载录像") {
			t.Errorf("newest audit record %q, want the download", got)
		}
		if n := eval[int](t, browser, `document.getElementById("audit-list").children.length`); n != 3 {
			t.Errorf("%d audit records listed, want 3", n)
		}
	})
}

// TestSearchPages: resolved alerts of a month ago are not on the board;
// a search by status and date range finds them a page at a time with the
// API's cursor, and the critical alert waiting for 受理 keeps sounding.
func TestSearchPages(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	browser := newBrowser(t, ctx, 1366, 768)
	old := time.Now().AddDate(0, 0, -30).Truncate(time.Hour).UTC()
	for i := range 55 {
		at := old.Add(time.Duration(i) * time.Minute)
		_, err := s.j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, At: at, Alert: alerts.Alert{
			ID: fmt.Sprintf("OLD%02d", i), Camera: "hall-entrance", CameraName: "服务大厅入口", Site: "hall", Type: alerts.Motion,
			Severity: alerts.Minor, Signal: alerts.SignalEnded, Status: alerts.StatusResolved, RaisedAt: at, LastSeenAt: at, ResolvedAt: &at,
			Count: 1, Feedback: "已处置", History: []alerts.HistoryEntry{{At: at, By: "system", Action: "raised"}},
		}}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	s.raise(ctx, "C1", "key-gate", alerts.Critical, alerts.Intrusion)
	rows := func() int { return eval[int](t, browser, `document.querySelectorAll("#alert-list li").length`) }
	run(t, browser, shots, "login", append(login(s.URL(), "desk-secret-token"),
		chromedp.WaitVisible(chromedp.CSS(`#alert-list li[data-id="C1"]`)),
	)...)
	if n := rows(); n != 1 {
		t.Fatalf("%d rows on the board, want only the open alert", n)
	}
	day := old.Local().Format("2006-01-02")
	run(t, browser, shots, "search",
		choose(`#filter-status`, "resolved"),
		choose(`#filter-site`, "hall"),
		chromedp.SetValue(chromedp.CSS(`#filter-from`), day),
		chromedp.SetValue(chromedp.CSS(`#filter-to`), day),
		chromedp.Click(chromedp.CSS(`#btn-search`)),
		chromedp.WaitVisible(chromedp.CSS(`#btn-more`)),
	)
	if n := rows(); n != 50 {
		t.Fatalf("%d rows after the first page, want 50", n)
	}
	run(t, browser, shots, "next page",
		chromedp.Click(chromedp.CSS(`#btn-more`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#btn-more`)),
	)
	ids := eval[[]string](t, browser, `[...document.querySelectorAll("#alert-list li")].map(li => li.dataset.id)`)
	if len(ids) != 55 || slices.Contains(ids, "C1") || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 55 {
		t.Fatalf("rows after the second page: %d %v", len(ids), ids)
	}
	shoot(t, browser, shots, "search")
	// C1 is critical and waits for 受理: its sound repeats until someone
	// acknowledges or mutes it.
	run(t, browser, shots, "repeat", poll(`Number(document.body.dataset.repeats ?? 0) >= 1`))
}
