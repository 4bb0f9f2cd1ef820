package web_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDeskSaysWhenNoAlertSnapshotCame: while an alert's own snapshot may
// still come (seconds after its raise), the detail shows the camera's
// picture as such (告警抓拍生成中); when it did not come (ten minutes on,
// the camera's keyframe lost, or resolved), the caption says there is none
// and that the picture is the camera's current one, not the alert's scene.
// The camera panel shows its times in the node's zone from the first
// answer of /settings, not in the browser's until the next poll.
func TestDeskSaysWhenNoAlertSnapshotCame(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	var pic bytes.Buffer
	jpeg.Encode(&pic, image.NewGray(image.Rect(0, 0, 64, 36)), nil)
	s.mux.HandleFunc("GET /api/v1/cameras/{id}/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(pic.Bytes())
	})
	// /settings answers once the camera panel is drawn: the zone arrives
	// after the cameras, as it may over a slow link.
	settingsGo := make(chan struct{})
	s.mux.HandleFunc("GET /api/v1/settings", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-settingsGo:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"timezone":"Asia/Shanghai","segment_s":60,"pre_roll_s":10,"post_roll_s":30}`)
	})
	old := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	s.raiseAt(ctx, "01JDOLDNOSNAP", "hall-counter", old)
	s.raise(ctx, "01JDFRESHSNAP", "key-gate", "minor", "motion")

	browser := newBrowser(t, ctx, 1366, 768)
	run(t, browser, shots, "login", append(login(s.URL(), deskToken),
		chromedp.WaitVisible(chromedp.CSS(`#camera-list li[data-id="key-gate"] .cam-since`)),
		chromedp.WaitVisible(chromedp.CSS(`#alert-list li[data-id="01JDOLDNOSNAP"]`)),
	)...)
	close(settingsGo)
	shanghai := old.In(time.FixedZone("CST", 8*3600)).Format("15:04:05")
	run(t, browser, shots, "the zone applied",
		poll(fmt.Sprintf(`document.querySelector('#alert-list li[data-id="01JDOLDNOSNAP"] .meta').textContent.includes(%q)`, shanghai)))
	// key-gate is online since 2026-11-26T08:00:00Z: 16:00 in Shanghai.
	if got := eval[string](t, browser, `document.querySelector('#camera-list li[data-id="key-gate"] .cam-since').textContent`); !strings.Contains(got, "16:00:00") {
		t.Errorf("camera panel after /settings: %q, want the node's zone (16:00:00)", got)
	}

	caption := func(id string) string {
		t.Helper()
		run(t, browser, shots, "open "+id,
			chromedp.Click(chromedp.CSS(`#alert-list li[data-id="`+id+`"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`#detail-body[data-id="`+id+`"]`)),
			poll(`(i => i.complete && i.naturalWidth > 0)(document.getElementById("d-snapshot"))`),
		)
		return eval[string](t, browser, `document.getElementById("d-snapshot-cap").textContent`)
	}
	if got := caption("01JDFRESHSNAP"); got != "摄像机当前画面（告警抓拍生成中）" {
		t.Errorf("fresh alert without its snapshot yet: %q", got)
	}
	if got := caption("01JDOLDNOSNAP"); got != "无告警抓拍，此为摄像机当前画面" {
		t.Errorf("alert whose snapshot never came: %q", got)
	}
	shoot(t, browser, shots, "desk-no-alert-snapshot-1366x768")
	run(t, browser, shots, "english", chromedp.Click(chromedp.CSS(`#btn-lang`)),
		poll(`document.getElementById("d-snapshot-cap").textContent === "No alert snapshot: this is the camera's current picture"`))
}
