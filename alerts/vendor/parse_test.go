package vendor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/alerts"
)

// parseTestNow is the receive time the parser tests pass in.
var parseTestNow = time.Date(2026, 11, 26, 13, 59, 59, 0, time.UTC)

// parseWant is what a parser test checks of an Event; Detail lists only the
// entries the case cares about.
type parseWant struct {
	Type   alerts.Type
	State  alerts.State
	Key    string
	At     string // RFC 3339; "" means parseTestNow
	Sync   bool
	Detail map[string]string
}

func parseReadTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseAddSeeds adds every file under testdata/dir to the fuzz corpus.
func parseAddSeeds(f *testing.F, dir string, add func(name string, b []byte)) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		add(filepath.Base(n), b)
	}
}

func parseCheckEvents(t *testing.T, camera string, src alerts.Source, got []alerts.Event, want []parseWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		at := parseTestNow
		if w.At != "" {
			var err error
			if at, err = time.Parse(time.RFC3339Nano, w.At); err != nil {
				t.Fatal(err)
			}
		}
		if g.Camera != camera || g.Source != src || g.Type != w.Type || g.State != w.State ||
			g.Key != w.Key || !g.At.Equal(at) || g.Sync != w.Sync {
			t.Errorf("event %d:\n got {camera %q source %q type %q state %q key %q at %s sync %v}\nwant {camera %q source %q type %q state %q key %q at %s sync %v}",
				i, g.Camera, g.Source, g.Type, g.State, g.Key, g.At.Format(time.RFC3339Nano), g.Sync,
				camera, src, w.Type, w.State, w.Key, at.Format(time.RFC3339Nano), w.Sync)
		}
		for k, v := range w.Detail {
			if g.Detail[k] != v {
				t.Errorf("event %d: detail[%q] = %q, want %q (detail %v)", i, k, g.Detail[k], v, g.Detail)
			}
		}
	}
}

// parseCheckInvariants is what fuzzing asserts of any successful parse.
func parseCheckInvariants(t *testing.T, camera string, src alerts.Source, evs []alerts.Event) {
	t.Helper()
	for i, e := range evs {
		switch e.Type {
		case alerts.Motion, alerts.Tamper, alerts.VideoLoss, alerts.LineCrossing, alerts.Intrusion, alerts.IOAlarm, alerts.Other:
		default:
			t.Fatalf("event %d: type %q", i, e.Type)
		}
		switch e.State {
		case alerts.Active, alerts.Inactive, alerts.Pulse:
		default:
			t.Fatalf("event %d: state %q", i, e.State)
		}
		if e.Camera != camera || e.Source != src || e.At.IsZero() || e.Detail == nil {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
}

func parseCheckErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func TestParseCameraTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = not ok
	}{
		{"2026-11-26T13:05:00Z", "2026-11-26T13:05:00Z"},
		{"2026-11-26T13:05:00.123456Z", "2026-11-26T13:05:00.123456Z"},
		{"2026-11-26T13:05:00", "2026-11-26T13:05:00Z"},
		{"2026-11-26T13:05:00.5", "2026-11-26T13:05:00.5Z"},
		{"2026-11-26T21:05:00+08:00", "2026-11-26T13:05:00Z"},
		{"2026-11-26T21:05:00+0800", "2026-11-26T13:05:00Z"},
		{"2026-11-26 13:05:00z", "2026-11-26T13:05:00Z"},
		{"1970-01-01T00:00:00Z", ""},
		{"0001-01-01T00:00:00Z", ""},
		{"", ""},
		{"yesterday", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseCameraTime(tc.in)
			if tc.want == "" {
				if ok {
					t.Fatalf("got %v, want not ok", got)
				}
				return
			}
			want, _ := time.Parse(time.RFC3339Nano, tc.want)
			if !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("got %v %v, want %v", got, ok, want)
			}
		})
	}
}

func TestParseSignalValue(t *testing.T) {
	for in, want := range map[string]alerts.State{
		"true": alerts.Active, "TRUE": alerts.Active, "1": alerts.Active, "active": alerts.Active, " Active ": alerts.Active,
		"false": alerts.Inactive, "False": alerts.Inactive, "0": alerts.Inactive, "inactive": alerts.Inactive, "INACTIVE": alerts.Inactive,
		"maybe": "", "": "", "2": "",
	} {
		got, ok := parseSignalValue(in)
		if got != want || ok != (want != "") {
			t.Errorf("parseSignalValue(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
