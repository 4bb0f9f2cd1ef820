package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestFootageShowsSubSecondBreaks: a break of 0.7 s between two segments
// is listed as a gap with tenths of a second and its length, never as
// "09:19:18 – 09:19:18"; a 0.12-s segment (the last frames before a camera
// stopped) reads 0.1 秒, not 0 s. Both at a phone's and a desk's size.
func TestFootageShowsSubSecondBreaks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	s := newStack(t, ctx)
	s.mux.HandleFunc("GET /api/v1/cameras/hall-counter/recordings", func(w http.ResponseWriter, r *http.Request) {
		if p := s.principal(r); p[1] != "investigator" && p[1] != "admin" {
			http.Error(w, `{"error":"forbidden","code":"forbidden"}`, http.StatusForbidden)
			return
		}
		start, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
		at := func(sec float64) time.Time { return start.Add(9*time.Hour + time.Duration(sec*float64(time.Second))) }
		seg := func(from, to float64) map[string]any {
			id := at(from).UTC().Format("2006-01-02T15-04-05.000") + "Z"
			return map[string]any{"id": id, "start": at(from), "end": at(to), "duration_s": to - from, "bytes": 500_000,
				"url": "/api/v1/cameras/hall-counter/recordings/" + id}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"camera": "hall-counter",
			"segments": []any{seg(1148.0, 1158.2), seg(1158.9, 1168.9), seg(1168.9, 1169.02)},
			"gaps":     []any{map[string]any{"start": at(1158.2), "end": at(1158.9)}, map[string]any{"start": at(1169.02), "end": at(1229.02)}},
		})
	})
	for _, vp := range []struct {
		name string
		w, h int
	}{{"390x844", 390, 844}, {"1366x768", 1366, 768}} {
		t.Run(vp.name, func(t *testing.T) {
			shots := t.TempDir()
			browser := newBrowser(t, ctx, vp.w, vp.h)
			run(t, browser, shots, "footage", append(login(s.URL(), "investigator-secret-token"),
				chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="hall-counter"] button`)),
				chromedp.WaitVisible(chromedp.CSS(`#footage-segments li.gap`)),
			)...)
			var rows []string
			if err := json.Unmarshal([]byte(eval[string](t, browser, `JSON.stringify([...document.querySelectorAll("#footage-segments li")].map(li => li.textContent))`)), &rows); err != nil {
				t.Fatal(err)
			}
			same := regexp.MustCompile(`(\d\d:\d\d:\d\d(?:\.\d)?) – (\d\d:\d\d:\d\d(?:\.\d)?)`)
			var subSecond, short string
			for _, row := range rows {
				if m := same.FindStringSubmatch(row); m != nil && m[1] == m[2] {
					t.Errorf("%q shows a span of no time", row)
				}
				if strings.Contains(row, "录像中断") && strings.Contains(row, "0.7 秒") {
					subSecond = row
				}
				if strings.Contains(row, "0.1 秒") {
					short = row
				}
			}
			if !regexp.MustCompile(`:18\.2 – \d\d:\d\d:18\.9 · 录像中断 · 0\.7 秒$`).MatchString(subSecond) {
				t.Errorf("the 0.7-s break is not listed with tenths and its length: %q in %q", subSecond, rows)
			}
			if sizes := eval[string](t, browser, `[...document.querySelectorAll("#footage-segments .seg-size")].map(e => e.textContent).join("|")`); regexp.MustCompile(`(^|\|)0 (s|秒)`).MatchString(sizes) {
				t.Errorf("a segment's length reads as nothing: %q", sizes)
			}
			if short == "" {
				t.Errorf("the 0.12-s segment: %q in %q", short, rows)
			}
			if title := eval[string](t, browser, `[...document.querySelectorAll("#timeline .tl-gap")].map(g => g.title).join("|")`); !strings.Contains(title, "0.7 秒") || !strings.Contains(title, "1 分 0 秒") {
				t.Errorf("gap titles on the timeline: %q", title)
			}
			if sw, iw := eval[int](t, browser, `document.scrollingElement.scrollWidth`), eval[int](t, browser, `innerWidth`); sw > iw {
				t.Errorf("footage view %d px wide in %d", sw, iw)
			}
			shoot(t, browser, shots, "footage-subsecond-"+vp.name)
		})
	}
}

// TestFootageEmptyWindowIsNotAnEmptyDay: zoomed in where nothing was
// recorded, the segment list says there is nothing in this window, not
// 该日无录像 (no recordings that day) while the day has some.
func TestFootageEmptyWindowIsNotAnEmptyDay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	shots := t.TempDir()
	s := newStack(t, ctx)
	browser := newBrowser(t, ctx, 1366, 768)
	// The stack's key-gate has segments from 09:00 to 09:04; zoomed to 10
	// minutes around noon, the window has none.
	run(t, browser, shots, "footage", append(login(s.URL(), "investigator-secret-token"),
		chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="key-gate"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#footage-segments li[data-id]`)),
		chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)),
		chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)), chromedp.Click(chromedp.CSS(`#tl-in`)),
		poll(`document.getElementById("tl-span").textContent === "10 分钟"`),
	)...)
	if got := eval[string](t, browser, `document.getElementById("footage-segments").textContent`); got != "此时段无录像：缩小或前后移动时间轴查看当日录像" {
		t.Errorf("zoomed to a window without footage: %q", got)
	}
	run(t, browser, shots, "whole day", chromedp.Click(chromedp.CSS(`#tl-day`)), chromedp.WaitVisible(chromedp.CSS(`#footage-segments li[data-id]`)))
}

// TestFootagePlayFromListShowsThePlayer: 播放 on a segment far down the
// list starts the player above it and brings it into view; the footage
// played out of sight on a phone.
func TestFootagePlayFromListShowsThePlayer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	s := newStack(t, ctx)
	s.mux.HandleFunc("GET /api/v1/cameras/hall-entrance/recordings", func(w http.ResponseWriter, r *http.Request) {
		start, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
		var segs []any
		for i := range 40 {
			st := start.Add(9*time.Hour + time.Duration(i)*time.Minute)
			id := st.UTC().Format("2006-01-02T15-04-05.000") + "Z"
			segs = append(segs, map[string]any{"id": id, "start": st, "end": st.Add(time.Minute), "duration_s": 60, "bytes": 30_000_000,
				"url": "/api/v1/cameras/hall-entrance/recordings/" + id})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"camera": "hall-entrance", "segments": segs, "gaps": []any{}})
	})
	for _, vp := range []struct {
		name string
		w, h int
	}{{"390x844", 390, 844}, {"1366x768", 1366, 768}} {
		t.Run(vp.name, func(t *testing.T) {
			shots := t.TempDir()
			browser := newBrowser(t, ctx, vp.w, vp.h)
			run(t, browser, shots, "play the oldest segment", append(login(s.URL(), "investigator-secret-token"),
				chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="hall-entrance"] button`)),
				chromedp.WaitVisible(chromedp.CSS(`#footage-segments li[data-id]`)),
				chromedp.Click(chromedp.CSS(`#footage-segments li[data-id]:last-child button`)),
				poll(`!document.getElementById("footage-player").hidden`),
			)...)
			in := `["footage-player", "play-info"].every(id => (r => r.top >= -1 && r.bottom <= innerHeight + 1)(document.getElementById(id).getBoundingClientRect()))`
			run(t, browser, shots, "the player and what it plays in view", poll(in))
			shoot(t, browser, shots, "footage-play-from-list-"+vp.name)
		})
	}
}
