package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/httpx"
)

// maxHeaderBytes bounds a request's header block; net/http's default is
// 1 MiB, enough for an 800 KB Range header. Tokens, cookies and the desk's
// requests need a few hundred bytes.
const maxHeaderBytes = 64 << 10

// registerConnMetrics exports the connection limiter's counts.
func (a *App) registerConnMetrics() {
	for _, state := range []string{"authenticated", "unauthenticated"} {
		a.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vigil_http_connections",
			Help:        "API connections open, by whether a request on them has presented valid credentials.",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			s := a.conns.Stats()
			if state == "unauthenticated" {
				return float64(s.Unauthenticated)
			}
			return float64(s.Open - s.Unauthenticated)
		}))
	}
	a.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vigil_http_connections_shed_total",
		Help: "Unauthenticated API connections closed to make room under http.max_conns.",
	}, func() float64 { return float64(a.conns.Stats().Shed) }))
}

// hookAuthenticates marks a webhook's connection authenticated when the
// camera's secret matched: the hooks answer 401 for a wrong or missing key
// and 404 for an unknown vendor before looking at it, and any other status
// after. Cameras keep their connections open; they must not be shed as
// anonymous ones.
func hookAuthenticates(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status != http.StatusUnauthorized && sw.status != http.StatusNotFound {
			httpx.Authenticated(r.Context())
		}
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
