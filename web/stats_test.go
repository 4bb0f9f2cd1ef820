package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/alerts"
)

// canvasDrawn is true when every chart of the 统计 view has a canvas with
// pixels drawn on it.
const canvasDrawn = `["chart-site", "chart-unit", "chart-trend"].every((id) => {
	const c = document.querySelector("#" + id + " canvas");
	if (!c || c.width === 0 || c.height === 0) return false;
	const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
	for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
	return false;
})`

// TestStatsView: the desk opens 统计, and ECharts (vendored) draws the
// rates per site and unit and the trend per day for the alerts raised;
// the admin has the view too, the investigator not.
func TestStatsView(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	s.raise(ctx, "01STATSVIEW1", "key-gate", alerts.Critical, alerts.Intrusion)
	s.raise(ctx, "01STATSVIEW2", "hall-entrance", alerts.Minor, alerts.Motion)
	s.raise(ctx, "01STATSVIEW3", "hall-entrance", alerts.Minor, alerts.Tamper)
	a, err := s.j.Get(ctx, "01STATSVIEW1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Dispatch(ctx, a.ID, "desk-1", "police", "", a.Version); err != nil {
		t.Fatal(err)
	}

	browser := newBrowser(t, ctx, 1366, 900)
	run(t, browser, shots, "login", append(login(s.URL(), "desk-secret-token"),
		chromedp.WaitVisible(chromedp.CSS(`#btn-stats`)),
	)...)
	run(t, browser, shots, "open stats",
		chromedp.Click(chromedp.CSS(`#btn-stats`)),
		poll(`document.body.dataset.view === "stats" && !!document.body.dataset.statsLoaded`),
		poll(canvasDrawn),
	)
	if got := eval[string](t, browser, `document.getElementById("stats-summary").textContent`); got == "" || got == "统计加载失败" {
		t.Errorf("summary %q", got)
	}
	if n := eval[int](t, browser, `document.querySelectorAll("#stats canvas").length`); n < 3 {
		t.Errorf("%d canvases, want one per chart", n)
	}
	// Units by name, as everywhere else on the page, not by ID.
	if got := eval[string](t, browser, `document.getElementById("chart-unit").dataset.categories`); !strings.Contains(got, "派出所") || strings.Contains(got, "police") {
		t.Errorf("unit chart's categories %q, want 派出所", got)
	}
	// No follow-up made: its rate is none (—), not 0 %.
	if got := eval[string](t, browser, `document.getElementById("stats-summary").textContent`); !strings.Contains(got, "回访满意率 —") || strings.Contains(got, "回访满意率 0") {
		t.Errorf("summary without follow-ups: %q", got)
	}
	// The period's report for the meeting, as the charts show it.
	for _, f := range []string{"xlsx", "html"} {
		href := eval[string](t, browser, `document.getElementById("stats-`+f+`").href`)
		u, err := url.Parse(href)
		if err != nil || u.Path != "/api/v1/reports" || u.Query().Get("format") != f {
			t.Errorf("%s report link %q", f, href)
			continue
		}
		from, err1 := time.Parse(time.RFC3339, u.Query().Get("from"))
		to, err2 := time.Parse(time.RFC3339, u.Query().Get("to"))
		if err1 != nil || err2 != nil || to.Sub(from) < 23*time.Hour || to.Sub(from) > 25*time.Hour || time.Now().Before(from) || !time.Now().Before(to) {
			t.Errorf("%s report of today: %q", f, href)
		}
	}
	// The two charts share the width: each about half of it.
	if f := eval[float64](t, browser, `document.getElementById("chart-unit").clientWidth / document.querySelector("#stats .stats-charts").clientWidth`); f < 0.45 {
		t.Errorf("the unit chart takes %.2f of the width, want about half", f)
	}
	shoot(t, browser, shots, "stats-1366x900")
	run(t, browser, shots, "this week",
		choose(`#stats-period`, "week"),
		poll(`document.body.dataset.statsLoaded === "2"`),
		poll(canvasDrawn),
	)
	run(t, browser, shots, "back to the board",
		chromedp.Click(chromedp.CSS(`#btn-stats`)),
		poll(`document.body.dataset.view === "desk"`),
	)

	inv := newBrowser(t, ctx, 1024, 768)
	run(t, inv, shots, "investigator", append(login(s.URL(), "investigator-secret-token"),
		poll(`document.body.dataset.view === "footage"`),
	)...)
	if vis := eval[bool](t, inv, `getComputedStyle(document.getElementById("btn-stats")).display !== "none"`); vis {
		t.Error("the investigator has the 统计 button")
	}
}

// A supervised alert (挂牌督办) is counted in the header and shows its due
// time, who set it and the note in the detail.
func TestSupervisionOnBoard(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	s.raise(ctx, "01SUPERVISED", "key-gate", alerts.Critical, alerts.Intrusion)
	s.raise(ctx, "01PLAIN", "hall-entrance", alerts.Minor, alerts.Motion)
	a, err := s.j.Get(ctx, "01SUPERVISED")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Supervise(ctx, a.ID, "leader-1", time.Now().Add(48*time.Hour), "镇领导挂牌", false, a.Version); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t, ctx, 1366, 900)
	run(t, browser, shots, "board", append(login(s.URL(), "desk-secret-token"),
		chromedp.WaitVisible(chromedp.CSS(`#alert-list li[data-id="01SUPERVISED"]`)),
		poll(`document.getElementById("count-supervised").textContent === "1"`),
		chromedp.Click(chromedp.CSS(`#alert-list li[data-id="01SUPERVISED"]`)),
		poll(`document.getElementById("d-supervision").textContent.includes("镇领导挂牌")`),
	)...)
	if got := eval[string](t, browser, `document.getElementById("d-supervision").textContent`); !strings.Contains(got, "限期") || !strings.Contains(got, "leader-1") {
		t.Errorf("supervision shown as %q", got)
	}
	shoot(t, browser, shots, "supervised-1366x900")
}
