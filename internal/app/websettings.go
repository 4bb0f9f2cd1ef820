package app

import (
	"net/http"

	"vigil/internal/httpx"
)

// webSettings is what the web app needs to know of the node's
// configuration to show times and footage as an operator expects: the
// configured time zone (the API itself stays UTC), how long a segment is
// written before its footage can be played, and the alerts' clip rolls.
type webSettings struct {
	Timezone  string  `json:"timezone"`
	SegmentS  float64 `json:"segment_s"`
	PreRollS  float64 `json:"pre_roll_s"`
	PostRollS float64 `json:"post_roll_s"`
}

// serveSettings answers GET /api/v1/settings (any role).
func (a *App) serveSettings(w http.ResponseWriter, r *http.Request) {
	cfg := a.config()
	httpx.WriteJSON(w, http.StatusOK, webSettings{
		Timezone:  cfg.Timezone,
		SegmentS:  cfg.Storage.Segment.Seconds(),
		PreRollS:  cfg.Alerts.PreRoll.Seconds(),
		PostRollS: cfg.Alerts.PostRoll.Seconds(),
	})
}
