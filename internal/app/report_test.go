package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET /api/v1/reports is the desk's (and admin's), in each format.
func TestReportsEndpoint(t *testing.T) {
	a := startApp(t, writeConfig(t, ""), io.Discard)
	q := "/api/v1/reports?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00&format="
	for _, c := range []struct {
		token, format string
		code          int
		ct            string
	}{
		{deskToken, "xlsx", 200, "spreadsheetml"},
		{adminToken, "html", 200, "text/html"},
		{deskToken, "csv", 200, "text/csv"},
		{invToken, "xlsx", 403, ""},
		{"", "xlsx", 401, ""},
		{deskToken, "doc", 400, ""},
	} {
		req, _ := http.NewRequest("GET", a.URL()+q+c.format, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(resp.Header.Get("Content-Type"), c.ct) {
			t.Errorf("%s as %s: %d %q, want %d %q", c.format, c.token, resp.StatusCode, resp.Header.Get("Content-Type"), c.code, c.ct)
		}
	}
}
