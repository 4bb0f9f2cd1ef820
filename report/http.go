package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
)

// Handler serves GET /api/v1/reports?from=T&to=T&format=xlsx|csv|html.
// Authentication and roles are the app's middleware.
type Handler struct {
	Source Source
	Opts   Options
	Log    *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var errs []string
	parse := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			errs = append(errs, name+" is required (RFC 3339)")
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q: want RFC 3339", name, s))
		}
		return t
	}
	from, to := parse("from"), parse("to")
	format := q.Get("format")
	if format == "" {
		format = FormatXLSX
	}
	if ContentType(format) == "" {
		errs = append(errs, fmt.Sprintf("format %q: want xlsx, csv or html", format))
	}
	if len(errs) > 0 {
		h.fail(w, r, &alerts.Error{Code: alerts.CodeBadRequest, Message: fmt.Sprint(errs)})
		return
	}
	rep, err := Build(r.Context(), h.Source, from, to, h.Opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		h.fail(w, r, err)
		return
	}
	loc := h.Opts.Location
	if loc == nil {
		loc = time.UTC
	}
	name := fmt.Sprintf("vigil-report-%s-%s.%s", from.In(loc).Format("20060102"), to.In(loc).Format("20060102"), format)
	w.Header().Set("Content-Type", ContentType(format))
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == FormatHTML {
		w.Header().Set("Content-Disposition", `inline; filename="`+name+`"`)
	}
	w.Write(buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := alerts.ErrorCode(err)
	if code == alerts.CodeInternal || code == alerts.CodeUnavailable {
		if h.Log != nil {
			h.Log.Error("report request", "path", r.URL.Path, "err", err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(alertsapi.HTTPStatus(code))
	json.NewEncoder(w).Encode(map[string]string{"error": alerts.ErrorMessage(err), "code": string(code)})
}
