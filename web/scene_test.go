package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// TestFootageHoldsOnTheTimeline: the footage view shows the camera's
// evidence holds on the timeline and in a list, puts a dragged range under
// a new hold with its case number and reason (POST /holds), and releases
// one (DELETE /holds/{id}).
func TestFootageHoldsOnTheTimeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	var mu sync.Mutex
	var posted []map[string]any
	var deleted []string
	need := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if p := s.principal(r); p[1] != "investigator" && p[1] != "admin" {
				http.Error(w, `{"error":"forbidden","code":"forbidden"}`, http.StatusForbidden)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			h(w, r)
		}
	}
	s.mux.HandleFunc("GET /api/v1/holds", need(func(w http.ResponseWriter, r *http.Request) {
		start, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
		h0 := start.Add(9*time.Hour + 30*time.Second)
		json.NewEncoder(w).Encode(map[string]any{"holds": []map[string]any{{
			"id": "h1", "camera": r.URL.Query().Get("camera"), "start": h0, "end": h0.Add(time.Minute),
			"case": "2026-刑-0042", "reason": "打架斗殴取证", "by": "investigator-1", "created_at": start,
		}}})
	}))
	s.mux.HandleFunc("POST /api/v1/holds", need(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		posted = append(posted, body)
		mu.Unlock()
		body["id"] = "h2"
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(body)
	}))
	s.mux.HandleFunc("DELETE /api/v1/holds/{id}", need(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deleted = append(deleted, r.PathValue("id"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))

	browser := newBrowser(t, ctx, 1366, 768)
	run(t, browser, shots, "footage", append(login(s.URL(), "investigator-secret-token"),
		chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="key-gate"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline .tl-hold[data-id="h1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#footage-holds li[data-id="h1"]`)),
		// Play the first segment (09:00) and zoom around it to an hour.
		chromedp.Click(chromedp.CSS(`#footage-segments li[data-id]:last-child button`)),
		chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)),
		chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)),
	)...)
	if got := eval[string](t, browser, `document.querySelector('#footage-holds li[data-id="h1"]').textContent`); !strings.Contains(got, "2026-刑-0042") || !strings.Contains(got, "打架斗殴取证") {
		t.Errorf("hold listed as %q", got)
	}
	dayStart := eval[float64](t, browser, `window.vigilTimeline.state.dayStart`)
	at := func(sec float64) float64 { return dayStart + (9*3600+sec)*1000 }
	x1 := eval[float64](t, browser, fmt.Sprintf(`window.vigilTimeline.xOf(%f)`, at(10)))
	x2 := eval[float64](t, browser, fmt.Sprintf(`window.vigilTimeline.xOf(%f)`, at(130)))
	y := eval[float64](t, browser, `(r => r.top + r.height / 2)(document.getElementById("tl-track").getBoundingClientRect())`)
	run(t, browser, shots, "select and hold",
		chromedp.MouseEvent(chromedp.MousePressed, x1, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x2, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, x2, y, chromedp.ButtonLeft),
		chromedp.WaitVisible(chromedp.CSS(`#tl-sel`)),
		chromedp.Click(chromedp.CSS(`#hold-box summary`)),
		chromedp.SendKeys(chromedp.CSS(`#hold-case`), "2026-刑-0043"),
		chromedp.SendKeys(chromedp.CSS(`#hold-reason`), "现场冲突"),
		chromedp.Click(chromedp.CSS(`#btn-hold`)),
		poll(`document.getElementById("hold-msg").textContent === "已保全"`),
	)
	shoot(t, browser, shots, "footage-hold-1366x768")
	mu.Lock()
	if len(posted) != 1 || posted[0]["camera"] != "key-gate" || posted[0]["case"] != "2026-刑-0043" || posted[0]["reason"] != "现场冲突" {
		t.Errorf("holds posted: %v", posted)
	} else {
		st, _ := time.Parse(time.RFC3339, posted[0]["start"].(string))
		en, _ := time.Parse(time.RFC3339, posted[0]["end"].(string))
		if d := en.Sub(st); d < 110*time.Second || d > 130*time.Second {
			t.Errorf("held %v – %v (%v), want the 2-minute selection", st, en, d)
		}
	}
	mu.Unlock()
	run(t, browser, shots, "release",
		chromedp.Click(chromedp.CSS(`#footage-holds li[data-id="h1"] button`)),
		poll(`document.querySelector('#footage-holds li[data-id="h1"] button').textContent === "确认解除保全"`),
	)
	mu.Lock()
	if len(deleted) != 0 {
		t.Errorf("released on the first click: %v", deleted)
	}
	mu.Unlock()
	run(t, browser, shots, "confirm release", chromedp.Click(chromedp.CSS(`#footage-holds li[data-id="h1"] button`)))
	waitOK := false
	for range 100 {
		mu.Lock()
		waitOK = len(deleted) == 1 && deleted[0] == "h1"
		mu.Unlock()
		if waitOK {
			break
		}
		eval[bool](t, browser, `new Promise(r => setTimeout(() => r(true), 50))`)
	}
	if !waitOK {
		t.Errorf("holds released: %v", deleted)
	}
	run(t, browser, shots, "english", chromedp.Click(chromedp.CSS(`#btn-lang`)),
		poll(`document.getElementById("tl-span").textContent === "1 h" && document.getElementById("tl-in").textContent === "Zoom in"`),
		poll(`document.getElementById("footage-title").textContent === "Footage · 重点部位大门" && document.getElementById("hold-msg").textContent === "Held"`))
	shoot(t, browser, shots, "footage-en-1366x768")
	run(t, browser, shots, "phone", chromedp.EmulateViewport(390, 844), poll(`innerWidth === 390`))
	if sw, iw := eval[int](t, browser, `document.scrollingElement.scrollWidth`), eval[int](t, browser, `innerWidth`); sw > iw {
		t.Errorf("footage view %d px wide in %d", sw, iw)
	}
	shoot(t, browser, shots, "footage-en-390x844")
}

// TestDeskLiveViewFallbacks: an H.265 camera's offer is refused with 406
// h265_not_supported and the live view shows the camera's snapshot,
// refreshed every second, instead; an offline camera's 409 reads as such.
func TestDeskLiveViewFallbacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	var pic bytes.Buffer
	jpeg.Encode(&pic, image.NewRGBA(image.Rect(0, 0, 64, 36)), nil)
	var snaps atomic.Int32
	s.mux.HandleFunc("GET /api/v1/cameras/{id}/snapshot", func(w http.ResponseWriter, r *http.Request) {
		snaps.Add(1)
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(pic.Bytes())
	})
	s.mux.HandleFunc("POST /api/v1/cameras/{id}/whep", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if ct := r.Header.Get("Content-Type"); ct != "application/sdp" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			fmt.Fprintf(w, `{"error":"content type %s","code":"unsupported_media_type"}`, ct)
			return
		}
		if r.PathValue("id") == "hall-entrance" {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":"camera offline","code":"camera_offline"}`)
			return
		}
		w.WriteHeader(http.StatusNotAcceptable)
		fmt.Fprint(w, `{"error":"the camera streams H.265","code":"h265_not_supported"}`)
	})
	s.raise(ctx, "01JDH265", "key-gate", alerts.Minor, alerts.Motion)
	s.raise(ctx, "01JDOFF", "hall-entrance", alerts.Minor, alerts.Motion)
	browser := newBrowser(t, ctx, 1366, 768)
	run(t, browser, shots, "h265", append(login(s.URL(), deskToken),
		chromedp.Click(chromedp.CSS(`#alert-list li[data-id="01JDH265"] button`)),
		chromedp.Click(chromedp.CSS(`#btn-live`)),
		poll(`document.getElementById("live-state").dataset.state === "live.h265"`),
		chromedp.WaitVisible(chromedp.CSS(`#live-snap`)),
		poll(`(i => i.complete && i.naturalWidth > 0)(document.getElementById("live-snap"))`),
	)...)
	first := eval[string](t, browser, `document.getElementById("live-snap").src`)
	run(t, browser, shots, "refreshed", poll(fmt.Sprintf(`document.getElementById("live-snap").src !== %q`, first)))
	shoot(t, browser, shots, "desk-h265-1366x768")
	run(t, browser, shots, "close", chromedp.Click(chromedp.CSS(`#btn-live`)), chromedp.WaitNotVisible(chromedp.CSS(`#live-box`)))
	n := snaps.Load()
	run(t, browser, shots, "offline",
		chromedp.Click(chromedp.CSS(`#alert-list li[data-id="01JDOFF"] button`)),
		chromedp.Click(chromedp.CSS(`#btn-live`)),
		poll(`document.getElementById("live-state").textContent === "摄像机离线，无实时画面"`),
	)
	// Closed means no more refreshes (the detail's own snapshot aside).
	if got := snaps.Load(); got > n+3 {
		t.Errorf("%d snapshot requests after the live view closed", got-n)
	}
}
