package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"no jitter", 0.5, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"jitter low", 0, []time.Duration{400 * time.Millisecond, 800 * time.Millisecond}},
		{"jitter high", 0.999999, []time.Duration{600 * time.Millisecond, 1200 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2})
			b.rand = func() float64 { return tc.rand }
			for i, w := range tc.want {
				if got := b.Pause(); got.Round(time.Millisecond) != w {
					t.Fatalf("pause %d = %v, want %v", i, got, w)
				}
			}
			b.Reset()
			if got := b.Pause().Round(time.Millisecond); got != tc.want[0] {
				t.Fatalf("after reset %v", got)
			}
		})
	}
}

func TestRateWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := rateWindow{span: 5 * time.Second}
	w.reset(t0)
	for i := range 250 { // 10 s at 25 fps, 5000 bytes per frame
		w.add(t0.Add(time.Duration(i)*40*time.Millisecond), 5000, true)
	}
	bps, fps := w.rates(t0.Add(10 * time.Second))
	if fps < 24 || fps > 26 || bps < 960_000 || bps > 1_040_000 {
		t.Fatalf("bps %d fps %v", bps, fps)
	}
	if bps, fps := w.rates(t0.Add(30 * time.Second)); bps != 0 || fps != 0 {
		t.Fatalf("stale window: %d %v", bps, fps)
	}
}

func TestRedact(t *testing.T) {
	c := Camera{ID: "cam", URL: "rtsp://192.0.2.1/x", Username: "admin", Password: "p@ss/w0rd"}
	u, err := pullURL(c)
	if err != nil {
		t.Fatal(err)
	}
	err = redactError(errors.New("describe "+u.String()+": p@ss/w0rd"), c)
	if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "w0rd") {
		t.Fatalf("not redacted: %v", err)
	}
	if !strings.Contains(err.Error(), "admin:***@192.0.2.1") {
		t.Fatalf("unexpected form: %v", err)
	}
}

func TestApplyValidates(t *testing.T) {
	s, err := New(Options{Registerer: newTestRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply([]Camera{
		{ID: "Bad", URL: "rtsp://h/x"},
		{ID: "ok", URL: "http://h/x"},
		{ID: "ok2", URL: "rtsp://admin:pw@h/x"},
		{ID: "ok3", URL: "rtsp://h/x", Transport: "sctp"},
		{ID: "ok4", URL: "rtsp://h/x"},
		{ID: "ok4", URL: "rtsp://h/x"},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"Bad"`, "scheme", "credentials", "transport", "duplicate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("password in error: %v", err)
	}
	if len(s.Statuses()) != 0 {
		t.Fatal("invalid list applied")
	}
}
