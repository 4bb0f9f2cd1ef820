package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Evidence holds by hand through the node: investigators and admins place,
// list and release them, the desk and anonymous callers cannot, a camera
// outside the registry is refused, and both changes reach the audit log
// with the case number.
func TestManualHoldsEndToEnd(t *testing.T) {
	a := startApp(t, writeConfig(t, ""), io.Discard)
	url := a.URL() + "/api/v1/holds"
	body := `{"camera":"hall-entrance","start":"2026-12-06T10:00:00+08:00","end":"2026-12-06T10:30:00+08:00","case":"2026-治-117","reason":"dispute at the counter"}`

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"anonymous place", "POST", "", "", body, http.StatusUnauthorized},
		{"desk place", "POST", "", deskToken, body, http.StatusForbidden},
		{"desk list", "GET", "", deskToken, "", http.StatusForbidden},
		{"desk release", "DELETE", "/m-01JD0000000000000000000000", deskToken, "", http.StatusForbidden},
		{"unknown camera", "POST", "", invToken, strings.Replace(body, "hall-entrance", "hall-entrnce", 1), http.StatusBadRequest},
		{"release unknown", "DELETE", "/m-01JD0000000000000000000000", invToken, "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, got := call(t, tc.method, url+tc.path, tc.token, tc.body); code != tc.status {
				t.Fatalf("%d %s, want %d", code, got, tc.status)
			}
		})
	}

	var placed []string
	for _, tok := range []string{invToken, adminToken} {
		code, got := call(t, "POST", url, tok, body)
		var h struct{ ID, By, Kind string }
		if err := json.Unmarshal([]byte(got), &h); code != http.StatusCreated || err != nil || h.Kind != "manual" {
			t.Fatalf("place: %d %s", code, got)
		}
		if want := map[string]string{invToken: "inv-1", adminToken: "ops"}[tok]; h.By != want {
			t.Fatalf("by %q, want %q", h.By, want)
		}
		placed = append(placed, h.ID)
	}
	code, got := call(t, "GET", url+"?camera=hall-entrance&start=2026-12-06T02:10:00Z&end=2026-12-06T02:11:00Z", invToken, "")
	if code != 200 || !strings.Contains(got, placed[0]) || !strings.Contains(got, placed[1]) {
		t.Fatalf("list: %d %s", code, got)
	}
	if code, got := call(t, "DELETE", url+"/"+placed[0], invToken, ""); code != http.StatusNoContent {
		t.Fatalf("release: %d %s", code, got)
	}
	code, got = call(t, "GET", url, invToken, "")
	if code != 200 || strings.Contains(got, placed[0]) || !strings.Contains(got, placed[1]) {
		t.Fatalf("list after release: %d %s", code, got)
	}

	var audit struct {
		Records []struct {
			By, Action, Object string
			Detail             map[string]string
		}
	}
	waitFor(t, 10*time.Second, "the hold audit records", func() bool {
		_, b := call(t, "GET", a.URL()+"/api/v1/audit?limit=1000", adminToken, "")
		json.Unmarshal([]byte(b), &audit)
		return len(audit.Records) >= 3
	})
	var seen []string
	for _, r := range audit.Records {
		if r.Detail["case"] != "2026-治-117" || r.Detail["camera"] != "hall-entrance" {
			t.Errorf("audit record %+v", r)
		}
		seen = append(seen, r.By+" "+r.Action+" "+r.Object)
	}
	want := []string{"inv-1 hold_placed hold/" + placed[0], "ops hold_placed hold/" + placed[1], "inv-1 hold_released hold/" + placed[0]}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}
