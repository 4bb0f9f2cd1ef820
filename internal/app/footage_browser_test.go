package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

// TestFootageViewInBrowser drives the investigator's footage view against
// the whole service: a camsim camera recorded, stopped for a few seconds
// and restarted shows on the timeline as footage, a gap and an alert
// marker; a click on the timeline plays from that moment; a 20-s range
// dragged on the timeline and exported downloads an MP4 that ffprobe reads
// with the range's duration.
func TestFootageViewInBrowser(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required (Debian package ffmpeg): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 170*time.Second)
	defer cancel()
	sim := startCamsim(t, "cam/gate")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site"}), &testutil.Buffer{})
	waitFor(t, 15*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	if _, err := sim.Trigger("cam/gate", camsim.Motion, camsim.Active); err != nil {
		t.Fatal(err)
	}
	al := alertOf(t, a, "gate", "motion")

	// 24 s of footage, then the camera stops for at least 4 s.
	var first time.Time
	waitFor(t, 60*time.Second, "24 s recorded", func() bool {
		segs, _, _ := a.recorder.Catalog().List("gate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if len(segs) == 0 {
			return false
		}
		first = segs[0].Start
		return segs[len(segs)-1].End.Sub(first) >= 24*time.Second
	})
	if err := sim.Fault("cam/gate", camsim.FaultStop); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitFor(t, 20*time.Second, "camera not online", func() bool { return cameraStatus(t, a, "gate") != "online" })
	waitFor(t, 10*time.Second, "an outage of 4 s", func() bool { return time.Since(stopped) >= 4*time.Second })
	// The alert's moment, as a link from an alert opens it.
	at := first.Add(12 * time.Second).UTC()
	link := a.URL() + "/?" + url.Values{"camera": {"gate"}, "at": {at.Format(time.RFC3339Nano)}}.Encode()
	t.Run("390x844 during the outage", func(t *testing.T) {
		p := pageDriver{t: t, browser: sceneBrowser(t, ctx, 390, 844), shots: t.TempDir()}
		p.do("login to the alert's moment",
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
			chromedp.SendKeys(chromedp.CSS(`#login-token`), invToken),
			chromedp.Click(chromedp.CSS(`#login-submit`)),
			// While the camera is down, its outage is a gap up to now.
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-gap.ongoing`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-alert`)),
			pollFor(`(v => !v.hidden && !v.paused && v.currentTime > 0.3)(document.getElementById("footage-player"))`, 15*time.Second),
		)
		if sw, iw := evalIn[int](p, `document.scrollingElement.scrollWidth`), evalIn[int](p, `innerWidth`); sw > iw {
			t.Errorf("footage view %d px wide in %d", sw, iw)
		}
		p.shot("footage-390x844")
	})
	if err := sim.Fault("cam/gate", camsim.FaultRestart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a segment recorded after the restart", func() bool {
		segs, _, _ := a.recorder.Catalog().List("gate", stopped, time.Now().Add(time.Hour))
		return len(segs) > 0 && segs[len(segs)-1].Start.After(stopped)
	})

	t.Run("1366x768", func(t *testing.T) {
		p := pageDriver{t: t, browser: sceneBrowser(t, ctx, 1366, 768), shots: t.TempDir()}
		downloads := t.TempDir()
		p.do("login to the alert's moment",
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
			chromedp.SendKeys(chromedp.CSS(`#login-token`), invToken),
			chromedp.Click(chromedp.CSS(`#login-submit`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-rec`)),
			chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
					Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
				})
				return err
			}),
		)
		if v := evalIn[string](p, `document.body.dataset.view + " " + document.querySelector("#footage-cameras li[data-id=gate] button").getAttribute("aria-current")`); v != "footage true" {
			t.Errorf("view and camera after the link: %q", v)
		}
		// Footage, the gap where the camera was stopped, the alert marker.
		p.do("gap and alert marker",
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-gap`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-alert[data-id="`+al.ID+`"][data-severity="minor"]`)),
		)
		var gaps []struct{ Start, End time.Time }
		if err := json.Unmarshal([]byte(evalIn[string](p, `JSON.stringify([...document.querySelectorAll("#timeline .tl-gap")].map(g => ({start: g.dataset.start, end: g.dataset.end})))`)), &gaps); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range gaps {
			if !g.Start.After(stopped.Add(2*time.Second)) && g.End.After(stopped.Add(3*time.Second)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no gap around the stop at %v in %+v", stopped.UTC(), gaps)
		}
		// The link plays from pre_roll before its moment.
		p.do("the link plays", pollFor(`(v => !v.hidden && !v.paused && v.currentTime > 0.3)(document.getElementById("footage-player"))`, 15*time.Second))
		p.shot("footage-1366x768")

		// Zoom in twice (10 → 5 → 2 minutes) and click 5 s into the footage.
		p.do("zoom", chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)),
			pollFor(`document.getElementById("tl-span").textContent === "2 分钟"`, 5*time.Second))
		xy := func(ms int64) (float64, float64) {
			x := evalIn[float64](p, fmt.Sprintf(`window.vigilTimeline.xOf(%d)`, ms))
			y := evalIn[float64](p, `(r => r.top + r.height / 2)(document.getElementById("tl-track").getBoundingClientRect())`)
			return x, y
		}
		clickAt := first.Add(5 * time.Second)
		x, y := xy(clickAt.UnixMilli())
		p.do("click plays", chromedp.MouseClickXY(x, y),
			pollFor(fmt.Sprintf(`(s => s.playing && Math.abs(s.playAt - %d) < 1500)(window.vigilTimeline.state)`, clickAt.UnixMilli()), 5*time.Second))
		t0 := evalIn[float64](p, `document.getElementById("footage-player").currentTime`)
		p.do("playing", pollFor(fmt.Sprintf(`(v => !v.paused && v.currentTime > %f + 0.5)(document.getElementById("footage-player"))`, t0), 10*time.Second))

		// Drag 20 s, from 2 s into the footage.
		selStart := first.Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		x1, y := xy(selStart.UnixMilli())
		x2, _ := xy(selStart.Add(20 * time.Second).UnixMilli())
		p.do("drag a range",
			chromedp.MouseEvent(chromedp.MousePressed, x1, y, chromedp.ButtonLeft),
			chromedp.MouseEvent(chromedp.MouseMoved, (x1+x2)/2, y, chromedp.ButtonLeft),
			chromedp.MouseEvent(chromedp.MouseMoved, x2, y, chromedp.ButtonLeft),
			chromedp.MouseEvent(chromedp.MouseReleased, x2, y, chromedp.ButtonLeft),
			chromedp.WaitVisible(chromedp.CSS(`#tl-sel`)),
		)
		var sel struct{ Start, End time.Time }
		if err := json.Unmarshal([]byte(evalIn[string](p, `JSON.stringify({start: document.getElementById("tl-sel").dataset.start, end: document.getElementById("tl-sel").dataset.end})`)), &sel); err != nil {
			t.Fatal(err)
		}
		if d := sel.End.Sub(sel.Start); d != 20*time.Second {
			t.Fatalf("selected %v – %v (%v), want 20 s", sel.Start, sel.End, d)
		}
		p.shot("footage-selected-1366x768")

		// The range held by hand (POST /holds) shows on the timeline
		// beside the alert's own hold; releasing it takes two clicks.
		p.do("hold the range",
			chromedp.Click(chromedp.CSS(`#hold-box summary`)),
			chromedp.SendKeys(chromedp.CSS(`#hold-case`), "2026-刑-0042"),
			chromedp.SendKeys(chromedp.CSS(`#hold-reason`), "打架斗殴取证"),
			chromedp.Click(chromedp.CSS(`#btn-hold`)),
			pollFor(`document.getElementById("hold-msg").textContent === "已保全"`, 10*time.Second),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-hold[data-kind="manual"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-hold[data-kind="alert"]`)),
		)
		_, holds := call(t, "GET", a.URL()+"/api/v1/holds?camera=gate", invToken, "")
		if !strings.Contains(holds, `"case":"2026-刑-0042"`) || !strings.Contains(holds, `"by":"inv-1"`) {
			t.Errorf("holds after placing one: %s", holds)
		}
		p.do("release the hold",
			chromedp.Click(chromedp.CSS(`#footage-holds li[data-kind="manual"] button`)),
			chromedp.Click(chromedp.CSS(`#footage-holds li[data-kind="manual"] button`)),
			chromedp.WaitNotPresent(chromedp.CSS(`#footage-holds li[data-kind="manual"]`)),
		)
		if n := evalIn[int](p, `document.querySelectorAll('#footage-holds li[data-kind="alert"] button').length`); n != 0 {
			t.Errorf("an alert's hold offers %d release buttons", n)
		}
		// Its reason reads in Chinese (the engine's "alert raised" and the like).
		if got := evalIn[string](p, `document.querySelector('#footage-holds li[data-kind="alert"]').textContent`); !strings.Contains(got, "告警保全 · 告警登记") {
			t.Errorf("an alert's hold reads %q", got)
		}

		// The manifest of the selection, read as the page links it.
		var man struct {
			From, Until time.Time
			Frames      int
		}
		if err := json.Unmarshal([]byte(evalIn[string](p, `fetch(document.getElementById("btn-manifest").href).then(r => r.text())`)), &man); err != nil || man.From.IsZero() {
			t.Fatalf("manifest: %v %+v", err, man)
		}
		// The export's size, asked with HEAD (not audited, same bytes as
		// the download: an export is laid out before it is sent).
		size, err := strconv.ParseInt(evalIn[string](p, `fetch(document.getElementById("btn-export").href, {method: "HEAD"}).then(r => r.headers.get("Content-Length"))`), 10, 64)
		if err != nil || size == 0 {
			t.Fatalf("export Content-Length: %v", err)
		}
		p.do("export", chromedp.Click(chromedp.CSS(`#btn-export`)))
		// Downloads are named by their GUID in the download directory.
		var file string
		waitFor(t, 30*time.Second, "the export downloaded", func() bool {
			ents, _ := os.ReadDir(downloads)
			for _, e := range ents {
				if fi, err := e.Info(); err == nil && fi.Size() == size && !strings.HasSuffix(e.Name(), ".crdownload") {
					file = filepath.Join(downloads, e.Name())
					return true
				}
			}
			return false
		})
		out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", file).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe %s: %v %s", file, err, out)
		}
		got, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("ffprobe duration %q", out)
		}
		// The file starts at the keyframe at or before the range (from)
		// and keeps wall-clock time to its end.
		want := man.Until.Sub(man.From).Seconds()
		if math.Abs(got-want) > 0.1 || want < 20-0.1 || want > 20+3 {
			t.Errorf("exported file lasts %.3f s; manifest %v – %v (%.3f s) for the 20-s selection %v – %v", got, man.From, man.Until, want, sel.Start, sel.End)
		}
		t.Logf("export of %v – %v: %.3f s in ffprobe, from %v", sel.Start, sel.End, got, man.From)
		if sw, iw := evalIn[int](p, `document.scrollingElement.scrollWidth`), evalIn[int](p, `innerWidth`); sw > iw {
			t.Errorf("footage view %d px wide in %d", sw, iw)
		}
	})
}
