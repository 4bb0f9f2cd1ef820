package app

import (
	"fmt"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/alerts/redisjournal"
	"vigil/configs"
	"vigil/notify"
)

// buildNotify creates the notifier on the journal's outbox; with no
// receivers configured there is none.
func (a *App) buildNotify(cfg *configs.Config) error {
	var ob notify.Outbox
	switch j := a.journal.(type) {
	case *boltjournal.Journal:
		o, err := j.Outbox()
		if err != nil {
			return err
		}
		ob = o
	case *redisjournal.Journal:
		ob = j.Outbox()
	default:
		return fmt.Errorf("notify: journal %T has no outbox", a.journal)
	}
	var receivers []notify.Receiver
	for _, rc := range cfg.Notify.Receivers {
		r, err := notify.NewReceiver(notify.ReceiverConfig{ID: rc.ID, Kind: rc.Kind, URL: rc.URL.Reveal(), Secret: rc.Secret.Reveal()}, nil, nil)
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		receivers = append(receivers, r)
	}
	routes := make([]notify.Route, 0, len(cfg.Notify.Routes))
	for _, r := range cfg.Notify.Routes {
		m := r.Match
		routes = append(routes, notify.Route{
			Match: notify.Match{Kind: alerts.ChangeKind(m.Kind), Severity: alerts.Severity(m.Severity), Site: m.Site, Type: alerts.Type(m.Type)},
			To:    r.To,
		})
	}
	var err error
	a.notifier, err = notify.New(notify.Options{
		Journal: a.journal, Outbox: ob, Receivers: receivers, Routes: routes,
		BaseURL: cfg.Notify.BaseURL, Location: cfg.Location, MaxAge: cfg.Notify.MaxAge,
		RateLimit:  int(cfg.Notify.RatePerMinute),
		SiteName:   func(id string) string { return siteName(a.config(), id) },
		Registerer: a.metrics,
		Logger:     a.log,
	})
	return err
}
