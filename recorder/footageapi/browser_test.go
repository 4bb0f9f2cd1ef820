package footageapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"vigil/recorder"

	"github.com/chromedp/chromedp"
)

// TestExportPlaysInChromium loads exports in a <video> element of headless
// Chromium: the browser must reach HAVE_CURRENT_DATA and report the
// expected duration.
func TestExportPlaysInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is required: %v", err)
	}
	rec := recordWithGap(t)
	api, err := New(Options{Catalog: rec.catalog})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	start, end := t0.Add(5*time.Second), t0.Add(17*time.Second)
	mux.HandleFunc("GET /player", func(w http.ResponseWriter, r *http.Request) {
		src := "/api/v1/cameras/hall-entrance/export?start=" + recorder.FormatTime(start) + "&end=" + recorder.FormatTime(end) + "&format=" + r.URL.Query().Get("format")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><video id="v" muted preload="auto" src="%s"></video>`, src)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	want := end.Sub(t0.Add(4 * time.Second)).Seconds() // from the keyframe at 4 s, the 1 s gap held: wall-clock time
	for _, format := range []string{recorder.FormatMP4, recorder.FormatFMP4} {
		if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/player?format="+format)); err != nil {
			t.Fatalf("%s: navigate: %v", format, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const v = document.getElementById("v"); return v.readyState >= 2 || v.error !== null })()`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("%s: waiting for the video: %v", format, err)
		}
		errCode, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("v").error ? document.getElementById("v").error.code : 0`))
		if err != nil {
			t.Fatal(err)
		}
		state, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("v").readyState`))
		if err != nil {
			t.Fatal(err)
		}
		duration, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("v").duration`))
		if err != nil {
			t.Fatal(err)
		}
		if errCode != 0 || state < 2 {
			t.Fatalf("%s: media error %d, readyState %d", format, errCode, state)
		}
		if math.Abs(duration-want) > 0.1 {
			t.Errorf("%s: duration %.3f s in Chromium, want %.3f s", format, duration, want)
		}
		t.Logf("%s: readyState %d, duration %.3f s", format, state, duration)
	}
}
