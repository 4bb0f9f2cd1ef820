package app

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/httpx"
	"vigil/web"
)

// routes is the whole HTTP surface of a node, in one table.
func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	any := []auth.Role{auth.Desk, auth.Investigator}
	need := func(h http.HandlerFunc, roles ...auth.Role) http.Handler { return a.auth.Require(h, roles...) }
	// Request bodies must arrive within a deadline, so a trickling client
	// cannot hold a connection; requests without a body (websocket,
	// downloads, exports) get none, and it ends with the body, so long
	// responses are never cut. Camera webhooks carry up to 1 MiB from
	// devices on slow links and get longer.
	body := func(d time.Duration, h http.Handler) http.Handler { return httpx.BodyDeadline(d, h) }
	short, long := a.opts.BodyTimeout, 3*a.opts.BodyTimeout

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	metrics := promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry})
	if a.opts.Config.MetricsPublic {
		mux.Handle("GET /metrics", metrics)
	} else {
		mux.Handle("GET /metrics", a.auth.Require(metrics, auth.Admin))
	}
	mux.Handle("/api/v1/session", body(short, a.auth.SessionHandler()))

	mux.Handle("GET /api/v1/cameras", a.requireOrPeer(http.HandlerFunc(a.serveCameras), any...))
	mux.Handle("GET /api/v1/cameras/{id}", a.requireOrPeer(http.HandlerFunc(a.serveCamera), any...))
	mux.Handle("GET /api/v1/cameras/{id}/snapshot", a.requireOrPeer(http.HandlerFunc(a.serveSnapshotAnyNode), any...))
	mux.Handle("POST /api/v1/cameras/{id}/whep", body(short, a.requireOrPeer(http.HandlerFunc(a.serveWHEPOffer), any...)))
	mux.Handle("DELETE /api/v1/cameras/{id}/whep/{session}", a.requireOrPeer(a.whepSession(a.viewers.ServeEnd), any...))
	mux.Handle("PATCH /api/v1/cameras/{id}/whep/{session}", body(short, a.requireOrPeer(a.whepSession(a.viewers.ServePatch), any...)))
	mux.Handle("GET /api/v1/units", need(a.listUnits, any...))
	mux.Handle("GET /api/v1/sites", need(a.listSites, any...))
	mux.Handle("GET /api/v1/settings", need(a.serveSettings, any...))
	mux.Handle("POST /api/v1/admin/reload", body(short, need(a.reload, auth.Admin)))
	mux.Handle("GET /api/v1/audit", need(a.listAudit, auth.Admin))
	mux.Handle("GET /api/v1/nodes", need(a.listNodes, auth.Admin))

	mux.Handle("GET /api/v1/alerts", need(a.alertAPI.ServeHTTP, auth.Desk, auth.Investigator))
	mux.Handle("GET /api/v1/alerts/{id}", need(a.alertAPI.ServeHTTP, auth.Desk, auth.Investigator))
	mux.Handle("GET /api/v1/alerts/stats", need(a.alertAPI.ServeHTTP, auth.Desk))
	mux.Handle("GET /api/v1/reports", need(a.reportHandler().ServeHTTP, auth.Desk))
	for _, action := range []string{"ack", "dispatch", "resolve", "follow-up", "supervise"} {
		mux.Handle("POST /api/v1/alerts/{id}/"+action, body(short, need(a.alertAPI.ServeHTTP, auth.Desk)))
	}
	mux.Handle("GET /api/v1/alerts/stream", need(a.hub.ServeHTTP, auth.Desk))
	mux.Handle("GET /api/v1/alerts/{id}/clip", need(a.serveClip, auth.Desk, auth.Investigator))
	mux.Handle("GET /api/v1/alerts/{id}/snapshot", a.requireOrPeer(a.alertSnaps.serve(a.journal, a.alertSnapshotElsewhere), auth.Desk, auth.Investigator))
	a.footage.Register(mux, func(h http.Handler) http.Handler { return body(short, a.requireOrPeer(h, auth.Investigator)) })
	a.holdAPI.Register(mux, func(h http.Handler) http.Handler { return body(short, a.auth.Require(h, auth.Investigator)) })
	mux.Handle("POST /api/v1/hooks/{camera}/{vendor}", body(long, hookAuthenticates(a.hooks)))
	mux.Handle("/", web.Handler())

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return jsonMethodErrors(mux)
}

// jsonMethodErrors answers a request whose path exists with another method
// with a JSON 405 (and Allow), where ServeMux would answer in plain text.
func jsonMethodErrors(mux *http.ServeMux) http.Handler {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" || pattern == "/api/" {
			var allow []string
			for _, m := range methods {
				probe := r.Clone(r.Context())
				probe.Method = m
				if _, p := mux.Handler(probe); p != "" && p != "/api/" && p != "/" {
					allow = append(allow, m)
				}
			}
			if len(allow) > 0 {
				w.Header().Set("Allow", strings.Join(allow, ", "))
				httpx.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// readyz is ready only when the storage directory is writable; later
// components add their checks.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{Ready: true, Checks: map[string]string{}}
	check := func(name string, err error) {
		if err != nil {
			res.Ready = false
			res.Checks[name] = err.Error()
			return
		}
		res.Checks[name] = "ok"
	}
	if degraded, err := a.journalCheck(r.Context()); err != nil || degraded == "" {
		check("journal", err)
	} else {
		res.Checks["journal"] = degraded
	}
	check("storage", a.recorder.Ready())
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	httpx.WriteJSON(w, status, res)
}

func (a *App) listUnits(w http.ResponseWriter, r *http.Request) {
	units := a.config().Alerts.Units
	if units == nil {
		units = []configs.Unit{}
	}
	httpx.WriteJSON(w, http.StatusOK, units)
}

// listSites returns the configured display names of sites, for the web
// app to show 公共服务大厅 rather than hall.
func (a *App) listSites(w http.ResponseWriter, r *http.Request) {
	sites := a.config().Sites
	if sites == nil {
		sites = []configs.Site{}
	}
	httpx.WriteJSON(w, http.StatusOK, sites)
}

func (a *App) reload(w http.ResponseWriter, r *http.Request) {
	if a.watcher == nil {
		httpx.Error(w, http.StatusConflict, "no_config_file", "this node was started without a configuration file")
		return
	}
	ch, err := a.watcher.Reload()
	if err != nil {
		errs := []string{}
		for _, e := range configs.Errors(err) {
			errs = append(errs, e.Error())
		}
		if len(errs) == 0 {
			errs = append(errs, err.Error())
		}
		httpx.WriteJSON(w, http.StatusBadRequest, map[string]any{"error": "configuration invalid; running configuration kept", "code": "invalid_config", "errors": errs})
		return
	}
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]string{"added": nz(ch.Added), "removed": nz(ch.Removed), "changed": nz(ch.Changed)})
}
