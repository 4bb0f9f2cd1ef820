package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"vigil/internal/testutil"
)

// Every log line names its component once: a component that adds its own
// attribute must not get a second one from the wiring (issue 18, item 13).
func TestLogLinesNameOneComponent(t *testing.T) {
	check := func(t *testing.T, logs string, want ...string) {
		t.Helper()
		for _, line := range strings.Split(logs, "\n") {
			if n := strings.Count(line, " component="); n > 1 {
				t.Errorf("component %d times: %s", n, line)
			}
			if strings.Contains(line, "camera registered") && strings.Count(line, "rtsp://") != 1 {
				t.Errorf("camera registered names the URL %d times: %s", strings.Count(line, "rtsp://"), line)
			}
		}
		for _, w := range want {
			if !strings.Contains(logs, w) {
				t.Errorf("logs lack %q", w)
			}
		}
	}
	t.Run("service", func(t *testing.T) {
		logs := &testutil.Buffer{}
		startApp(t, writeConfig(t, ""), logs)
		waitFor(t, 10*time.Second, "ingest and app logs", func() bool {
			s := logs.String()
			return strings.Contains(s, "component=ingest") && strings.Contains(s, "camera registered")
		})
		check(t, logs.String(), "component=ingest", "camera registered")
	})
	t.Run("demo", func(t *testing.T) {
		logs := &testutil.Buffer{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- Demo(ctx, DemoOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0", Out: io.Discard, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		}()
		waitFor(t, 20*time.Second, "camsim and ingest logs", func() bool {
			s := logs.String()
			return strings.Contains(s, "component=camsim") && strings.Contains(s, "component=ingest")
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Demo: %v", err)
		}
		check(t, logs.String(), "component=camsim", "component=ingest")
	})
}
