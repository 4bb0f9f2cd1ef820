package web_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/alerts"
)

// raiseAt appends a new alert raised at a given time, as the engine would.
func (s *stack) raiseAt(ctx context.Context, id, camera string, at time.Time) {
	s.t.Helper()
	name, site, grid, _ := cameraLookup(camera)
	ack, res := at.Add(15*time.Minute), at.Add(24*time.Hour)
	_, err := s.j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, At: at, Alert: alerts.Alert{
		ID: id, Camera: camera, CameraName: name, Site: site, Grid: grid, Type: alerts.Motion,
		Severity: alerts.Minor, Source: "onvif", Signal: alerts.SignalActive, Status: alerts.StatusNew,
		RaisedAt: at, LastSeenAt: at, Count: 1, AckDeadline: &ack, ResolveDeadline: &res,
		History: []alerts.HistoryEntry{{At: at, By: "system", Action: "raised"}},
	}}, 0)
	if err != nil {
		s.t.Fatalf("append %s: %v", id, err)
	}
}

// TestDeskSaysWhyThereIsNoFootage: where an alert's clip is 404
// no_footage, the player's place says why — the camera is offline, the
// footage is still being written (with the seconds left, from the
// segment length in /settings), or there is none — and never shows a
// black player. Rows show the camera's picture until the alert has its
// own snapshot.
func TestDeskSaysWhyThereIsNoFootage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	var pic bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 64, 36))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	img.Set(1, 1, color.White)
	jpeg.Encode(&pic, img, nil)
	s.mux.HandleFunc("GET /api/v1/cameras/{id}/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if s.principal(r)[0] == "" {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if r.PathValue("id") == "hall-entrance" { // offline: no live keyframe
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":"camera offline","code":"camera_offline"}`)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(pic.Bytes())
	})
	s.mux.HandleFunc("GET /api/v1/alerts/{id}/clip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"nothing recorded in the range","code":"no_footage"}`)
	})
	s.mux.HandleFunc("GET /api/v1/settings", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"timezone":"Asia/Shanghai","segment_s":60,"pre_roll_s":10,"post_roll_s":30}`)
	})
	now := time.Now().UTC()
	s.raiseAt(ctx, "01JDOFFLINE", "hall-entrance", now.Add(-time.Minute))
	s.raiseAt(ctx, "01JDWRITING", "key-gate", now)
	s.raiseAt(ctx, "01JDNONE", "hall-counter", now.Add(-10*time.Minute))

	for _, vp := range []struct{ w, h int }{{1366, 768}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", vp.w, vp.h), func(t *testing.T) {
			browser := newBrowser(t, ctx, vp.w, vp.h)
			run(t, browser, shots, "login", append(login(s.URL(), deskToken),
				chromedp.WaitVisible(chromedp.CSS(`#alert-list li[data-id="01JDNONE"]`)),
				poll(`(i => i.complete && i.naturalWidth > 0)(document.querySelector('#alert-list li[data-id="01JDWRITING"] img.thumb'))`),
				// The offline camera has no picture: a placeholder, not a broken image.
				chromedp.WaitVisible(chromedp.CSS(`#alert-list li[data-id="01JDOFFLINE"] .thumb.none`)),
			)...)
			if src := eval[string](t, browser, `document.querySelector('#alert-list li[data-id="01JDWRITING"] img.thumb').getAttribute("src")`); src != "/api/v1/cameras/key-gate/snapshot" {
				t.Errorf("thumbnail without an alert snapshot: %q, want the camera's", src)
			}
			why := func(id, want string) string {
				t.Helper()
				back := chromedp.Action[chromedp.Void](chromedp.Evaluate[chromedp.Void](`document.body.dataset.pane === "detail" && document.getElementById("btn-back").click()`))
				run(t, browser, shots, "open "+id, back,
					chromedp.Click(chromedp.CSS(`#alert-list li[data-id="`+id+`"] button`)),
					chromedp.WaitVisible(chromedp.CSS(`#detail-body[data-id="`+id+`"]`)),
					poll(fmt.Sprintf(`document.getElementById("clip-why").dataset.why === %q`, want)),
				)
				if eval[bool](t, browser, `!document.getElementById("clip").hidden`) {
					t.Errorf("%s: the player shows without footage", id)
				}
				return eval[string](t, browser, `document.getElementById("clip-why").textContent`)
			}
			if got := why("01JDOFFLINE", "clip.offline"); got != "摄像机离线，无录像" {
				t.Errorf("offline camera: %q", got)
			}
			if got := why("01JDNONE", "clip.none"); got != "无录像" {
				t.Errorf("no footage: %q", got)
			}
			got := why("01JDWRITING", "clip.writing")
			m := regexp.MustCompile(`^录像写入中，约 (\d+) 秒后可看$`).FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("fresh alert: %q", got)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > 63 {
				t.Errorf("fresh alert: %d s to wait, want within one 60-s segment and a keyframe interval", n)
			}
			shoot(t, browser, shots, fmt.Sprintf("desk-no-footage-%dx%d", vp.w, vp.h))
			if sw, iw := eval[int](t, browser, `document.scrollingElement.scrollWidth`), eval[int](t, browser, `innerWidth`); sw > iw {
				t.Errorf("desk %d px wide in %d", sw, iw)
			}
			run(t, browser, shots, "english", chromedp.Click(chromedp.CSS(`#btn-lang`)),
				poll(`/^Footage being written; playable in about \d+ s$/.test(document.getElementById("clip-why").textContent)`),
				poll(`document.getElementById("btn-live").textContent === "Live view"`))
			shoot(t, browser, shots, fmt.Sprintf("desk-no-footage-en-%dx%d", vp.w, vp.h))
			run(t, browser, shots, "chinese", chromedp.Click(chromedp.CSS(`#btn-lang`)))
		})
	}
}
