package app

import (
	"net/http"
	"strconv"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/internal/httpx"
)

// listAudit serves GET /api/v1/audit?since&limit: who acknowledged,
// dispatched, resolved, downloaded and exported what, oldest first.
func (a *App) listAudit(w http.ResponseWriter, r *http.Request) {
	log, ok := a.journal.(alerts.AuditLog)
	if !ok {
		httpx.Error(w, http.StatusNotImplemented, "not_implemented", "this journal keeps no audit log")
		return
	}
	q := r.URL.Query()
	var since uint64
	if s := q.Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			httpx.Error(w, http.StatusBadRequest, "bad_request", "since must be an audit sequence number")
			return
		}
		since = v
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1000 {
			httpx.Error(w, http.StatusBadRequest, "bad_request", "limit must be between 1 and 1000")
			return
		}
		limit = v
	}
	recs, err := log.AuditSince(r.Context(), since, limit)
	if err != nil {
		status, code := alertsapi.HTTPStatus(alerts.ErrorCode(err)), alerts.ErrorCode(err)
		httpx.Error(w, status, string(code), alerts.ErrorMessage(err))
		return
	}
	if recs == nil {
		recs = []alerts.AuditRecord{}
	}
	next := since
	if len(recs) > 0 {
		next = recs[len(recs)-1].Seq
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"records": recs, "next_since": next})
}
