// Package web owns Vigil's one web app: plain HTML, CSS and JS modules
// embedded in the binary, no build step. After login the app shows the
// views of the caller's role: the response desk's board (应急值守台) for
// desk (with each alert's snapshot, the camera's live view over WHEP and
// the clip at the alert's moment), the footage workspace (a camera-day as a
// timeline, playback, export, evidence holds) for investigator, and
// cameras, nodes, audit and the footage workspace for admin. It serves
// files only; the page talks to the API (/api/v1/session, /settings,
// /alerts, /alerts/stream, /units, /sites, /cameras, snapshots, whep,
// recordings, export, /holds, /audit) that internal/app mounts beside it.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the app at "/", its assets under "/assets/" and the
// vendored libraries (ECharts) under "/vendor/".
// Mount it at the root of the app's mux; any other path is 404.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(root)
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
				"img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
			w.Write(index)
		case (strings.HasPrefix(r.URL.Path, "/assets/") || strings.HasPrefix(r.URL.Path, "/vendor/")) && !strings.HasSuffix(r.URL.Path, "/"):
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
