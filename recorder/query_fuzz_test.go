package recorder

import (
	"net/url"
	"testing"
	"time"
)

func FuzzParseExportQuery(f *testing.F) {
	for _, s := range []string{
		"start=2026-11-26T21:05:00Z&end=2026-11-26T21:06:00Z",
		"start=2026-11-26T21:05:00%2B08:00&end=2026-11-26T23:05:00%2B08:00&format=fmp4",
		"start=2026-11-26T21:05:00Z&end=2026-11-26T21:05:00Z",
		"start=9999-12-31T23:59:59.999999999Z&end=0000-01-01T00:00:00Z",
		"start=2026-11-26T21:05:00Z&end=2026-11-26T21:06:00Z&format=../../x",
		"start=&end=&format=",
		"start=2026-11-26T21:05:00Z;end=x",
		"%zz",
	} {
		f.Add("hall-entrance", s)
	}
	now := time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, camera, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if req, err := ParseExportQuery(camera, v, time.Hour); err == nil {
			if !ValidCameraID(req.Camera) || !req.End.After(req.Start) || req.End.Sub(req.Start) > time.Hour {
				t.Fatalf("accepted %+v", req)
			}
			if req.Format != FormatMP4 && req.Format != FormatFMP4 {
				t.Fatalf("accepted format %q", req.Format)
			}
		}
		if start, end, err := ParseTimeRange(v, now, time.Hour, 31*24*time.Hour); err == nil {
			if end.Before(start) || end.Sub(start) > 31*24*time.Hour {
				t.Fatalf("accepted %v – %v", start, end)
			}
		}
	})
}
