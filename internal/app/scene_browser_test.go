package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

// sceneBrowser starts headless Debian chromium with a fresh profile at
// w×h, allowed to play media without a gesture (the live view autoplays
// muted; the test clicks nothing to start playback). A missing chromium
// fails the test.
func sceneBrowser(t *testing.T, ctx context.Context, w, h int) context.Context {
	t.Helper()
	return testutil.Chromium(t, ctx, w, h, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

// pageDriver runs bounded steps against one browser tab, saving a
// screenshot of the page when a step fails.
type pageDriver struct {
	t       *testing.T
	browser context.Context
	shots   string
}

func (p pageDriver) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	actx, cancel := context.WithTimeout(p.browser, 30*time.Second)
	defer cancel()
	for i, act := range actions {
		if err := chromedp.Do(actx, act); err != nil {
			if png, serr := chromedp.Run(p.browser, chromedp.CaptureScreenshot()); serr == nil {
				os.WriteFile(filepath.Join(p.shots, "failed.png"), png, 0o644)
				os.WriteFile("/tmp/scene-failed.png", png, 0o644)
			}
			p.t.Fatalf("%s: step %d: %v", what, i+1, err)
		}
	}
}

func evalIn[T any](p pageDriver, expr string) T {
	p.t.Helper()
	actx, cancel := context.WithTimeout(p.browser, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(actx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shot saves the page (full height) under the test's dir and at
// /tmp/scene-NAME.png for a person to look at.
func (p pageDriver) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.browser, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644)
	os.WriteFile("/tmp/scene-"+name+".png", png, 0o644) // best effort, for a person
}

func pollFor(expr string, within time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(within))
}

// framesDecoded reads the live view's inbound video stats from the page's
// RTCPeerConnection (exposed as window.vigilLive).
const framesDecoded = `(async () => {
  const pc = window.vigilLive;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") n = s.framesDecoded || 0; });
  return n;
})()`

// TestDeskSceneInBrowser: the desk sees the scene of an alert — the row's
// snapshot thumbnail loads, the 实时画面 button plays the camsim camera
// over WHEP (frames decoded within 5 s, the video's clock advancing), and
// closing it ends the session on the node.
func TestDeskSceneInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	sim := startCamsim(t, "cam/gate")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site"}), &testutil.Buffer{})
	if !a.Snapshots().Available() {
		t.Fatal("ffmpeg is required (Debian package ffmpeg)")
	}
	waitFor(t, 15*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })

	for _, vp := range []struct{ w, h int }{{1366, 768}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", vp.w, vp.h), func(t *testing.T) {
			p := pageDriver{t: t, browser: sceneBrowser(t, ctx, vp.w, vp.h), shots: t.TempDir()}
			if _, err := sim.Trigger("cam/gate", camsim.Motion, camsim.Active); err != nil {
				t.Fatal(err)
			}
			al := alertOf(t, a, "gate", "motion")
			row := fmt.Sprintf(`#alert-list li[data-id=%q]`, al.ID)
			p.do("login",
				chromedp.Navigate(a.URL()+"/"),
				chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
				chromedp.SendKeys(chromedp.CSS(`#login-token`), deskToken),
				chromedp.Click(chromedp.CSS(`#login-submit`)),
				chromedp.WaitVisible(chromedp.CSS(row)),
			)
			// The row's thumbnail is a lazy image that loads: a decoded JPEG.
			if lazy := evalIn[string](p, `document.querySelector(`+jsString(row+` img.thumb`)+`).loading`); lazy != "lazy" {
				t.Errorf("row thumbnail loading=%q, want lazy", lazy)
			}
			p.do("thumbnail", pollFor(`(i => i.complete && i.naturalWidth > 0)(document.querySelector(`+jsString(row+` img.thumb`)+`))`, 15*time.Second))
			// The alert's own snapshot arrives as an update (reason
			// snapshot) and replaces the camera's picture in the row.
			p.do("alert snapshot in the row", pollFor(`(i => i && i.getAttribute("src") === `+jsString("/api/v1/alerts/"+al.ID+"/snapshot")+` && i.complete && i.naturalWidth > 0)(document.querySelector(`+jsString(row+` img.thumb`)+`))`, 15*time.Second))

			p.do("detail",
				chromedp.Click(chromedp.CSS(row+` button`)),
				chromedp.WaitVisible(chromedp.CSS(`#detail-body[data-id="`+al.ID+`"]`)),
				pollFor(`(i => i.complete && i.naturalWidth > 0)(document.getElementById("d-snapshot"))`, 15*time.Second),
				chromedp.Click(chromedp.CSS(`#btn-live`)),
				chromedp.WaitVisible(chromedp.CSS(`#live`)),
			)
			start := time.Now()
			p.do("frames decoded", pollFor(framesDecoded+`.then((n) => n > 0)`, 5*time.Second))
			t.Logf("first frame decoded %v after the click", time.Since(start).Round(time.Millisecond))
			t0 := evalIn[float64](p, `document.getElementById("live").currentTime`)
			p.do("video clock advances", pollFor(fmt.Sprintf(`document.getElementById("live").currentTime > %f + 0.5`, t0), 5*time.Second))
			if n := a.viewers.Count(); n != 1 {
				t.Errorf("%d viewers on the node with the live view open", n)
			}
			p.shot(fmt.Sprintf("desk-live-%dx%d", vp.w, vp.h))
			if sw, iw := evalIn[int](p, `document.scrollingElement.scrollWidth`), evalIn[int](p, `innerWidth`); sw > iw {
				t.Errorf("desk %d px wide in %d", sw, iw)
			}

			// Closing the live view ends the session on the node (DELETE).
			p.do("close live", chromedp.Click(chromedp.CSS(`#btn-live`)), chromedp.WaitNotVisible(chromedp.CSS(`#live-box`)))
			if b := evalIn[string](p, `document.getElementById("btn-live").textContent + " " + document.getElementById("btn-live").getAttribute("aria-pressed")`); b != "实时画面 false" {
				t.Errorf("live button after closing: %q", b)
			}
			waitFor(t, 5*time.Second, "the viewer ended", func() bool { return a.viewers.Count() == 0 })

			// The clip player, or why there is none: never a black player.
			p.do("clip or reason", pollFor(`!document.getElementById("clip").hidden || !document.getElementById("clip-why").hidden`, 10*time.Second))
			// With 2-s segments the footage is there within seconds; the
			// player starts at the alert's moment, pre_roll into the clip
			// (from the keyframe the file starts at).
			p.do("clip at the alert's moment",
				pollFor(`!document.getElementById("clip").hidden`, 15*time.Second),
				chromedp.Evaluate[chromedp.Void](`(v => { v.preload = "metadata"; v.load(); })(document.getElementById("clip"))`),
				pollFor(`(v => v.readyState >= 1 && Number(v.dataset.offset) > 0 && Math.abs(v.currentTime - Number(v.dataset.offset)) < 0.25)(document.getElementById("clip"))`, 15*time.Second),
			)
			t.Logf("clip positioned at %.2f s", evalIn[float64](p, `document.getElementById("clip").currentTime`))
			p.shot(fmt.Sprintf("desk-detail-%dx%d", vp.w, vp.h))
		})
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return fmt.Sprintf("%q", s) }
