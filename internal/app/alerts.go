package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/alerts/boltjournal"
	"vigil/alerts/hooks"
	"vigil/alerts/redisjournal"
	"vigil/alerts/stream"
	"vigil/alerts/vendor"
	"vigil/configs"
	"vigil/internal/auth"
)

// openJournal opens the configured journal backend.
func (a *App) openJournal(cfg *configs.Config) (alerts.Journal, error) {
	switch cfg.Journal.Backend {
	case configs.BackendEmbedded, "":
		j, err := boltjournal.Open(boltjournal.Options{Path: cfg.Journal.Path, KeepChanges: 1_000_000, Registerer: a.metrics})
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		return j, nil
	case configs.BackendRedis:
		r := cfg.Journal.Redis
		var tlsCfg *tls.Config
		if r.TLS {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		j, err := redisjournal.New(redisjournal.Options{
			Addr:         r.Addr,
			Username:     r.Username,
			Password:     r.Password.Reveal(),
			DB:           r.DB,
			TLS:          tlsCfg,
			StreamMaxLen: r.StreamMaxLen,
			SpoolPath:    filepath.Join(filepath.Dir(cfg.Journal.Path), "redis-spool.db"),
			Registerer:   a.metrics,
			Logger:       a.log.With("component", "journal"),
			OnSpoolFull: func() {
				a.submitHealth(a.nodeID, alerts.RecordingFailure, true, "journal spool full: the oldest spooled alert changes are being dropped")
			},
		})
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		return j, nil
	}
	return nil, fmt.Errorf("journal: unknown backend %q", cfg.Journal.Backend)
}

// alertRules maps the configured rules onto the engine's.
func alertRules(cfg *configs.Config) ([]alerts.Rule, []alerts.Unit) {
	rules := make([]alerts.Rule, 0, len(cfg.Alerts.Rules))
	for _, r := range cfg.Alerts.Rules {
		rules = append(rules, alerts.Rule{
			Match:         alerts.Match{Type: alerts.Type(r.Match.Type), Site: r.Match.Site, Camera: r.Match.Camera, Grid: r.Match.Grid},
			Severity:      alerts.Severity(r.Severity),
			AckWithin:     r.AckWithin,
			ResolveWithin: r.ResolveWithin,
			DispatchTo:    r.DispatchTo,
			Cooldown:      r.Cooldown,
			EscalateTo:    r.EscalateTo,
			EscalateAfter: r.EscalateAfter,
		})
	}
	units := make([]alerts.Unit, 0, len(cfg.Alerts.Units))
	for _, u := range cfg.Alerts.Units {
		units = append(units, alerts.Unit{ID: u.ID, Name: u.Name})
	}
	return rules, units
}

// cameraLookup answers the engine from the running camera registry.
func (a *App) cameraLookup(id string) (name, site, grid string, ok bool) {
	c, ok := a.config().Camera(id)
	if !ok {
		return "", "", "", false
	}
	return c.Name, c.Site, c.Grid, true
}

// hookSecret gives the webhook secret of a camera or device of the running
// registry.
func (a *App) hookSecret(id string) (string, bool) {
	if d, ok := a.config().Device(id); ok {
		if d.WebhookSecret == "" {
			return "", false
		}
		return d.WebhookSecret.Reveal(), true
	}
	c, ok := a.config().Camera(id)
	if !ok || c.Events.WebhookSecret == "" {
		return "", false
	}
	return c.Events.WebhookSecret.Reveal(), true
}

// hookParsers adapts each vendor parser to the webhook handler. route
// applies a camera's or device's channel mapping and events.map/ignore to
// the events of one push (see vendorRoute).
func hookParsers(route func(camera string, evs []alerts.Event) []alerts.Event) map[string]hooks.Parser {
	return map[string]hooks.Parser{
		"hikvision": func(camera, ct string, body io.Reader, now time.Time) ([]alerts.Event, error) {
			res, err := vendor.ParseHikvision(camera, ct, body, now)
			return route(camera, res.Events), err // a heartbeat is accepted and raises nothing
		},
		"dahua": func(camera, ct string, body io.Reader, now time.Time) ([]alerts.Event, error) {
			evs, rejected, err := vendor.ParseDahua(camera, ct, body, now)
			if err != nil {
				return nil, err
			}
			// Per-record answer: 202 {"accepted":N,"rejected":[…]}.
			return route(camera, evs), hooks.RejectedRecords(append([]alerts.RejectedRecord{}, rejected...))
		},
		"onvif": func(camera, _ string, body io.Reader, now time.Time) ([]alerts.Event, error) {
			doc, err := io.ReadAll(body) // body is already limited to 1 MiB
			if err != nil {
				return nil, err
			}
			evs, err := vendor.ParseONVIFNotify(camera, doc, now)
			return route(camera, evs), err
		},
		"events": func(camera, _ string, body io.Reader, now time.Time) ([]alerts.Event, error) {
			ev, err := vendor.ParseGeneric(camera, body, now)
			if err != nil {
				return nil, err
			}
			return []alerts.Event{ev}, nil
		},
	}
}

// buildAlerts creates the journal, the engine, its API, the desk hub and the
// webhook endpoints.
func (a *App) buildAlerts(cfg *configs.Config) error {
	var err error
	if a.journal, err = a.openJournal(cfg); err != nil {
		return err
	}
	rules, units := alertRules(cfg)
	a.engine, err = alerts.New(alerts.Options{
		Journal:          a.journal,
		Rules:            rules,
		Units:            units,
		Cameras:          a.cameraLookup,
		PreRoll:          cfg.Alerts.PreRoll,
		PostRoll:         cfg.Alerts.PostRoll,
		HoldAfterResolve: cfg.Alerts.HoldAfterResolve,
		StaleAfter:       cfg.Alerts.StaleAfter,
		MaxEventAge:      cfg.Alerts.MaxEventAge,
		Evidence:         recorderEvidence{a},
		// The snapshot of a raised alert, once the live view is built.
		OnRaised: func(al alerts.Alert) {
			if a.alertSnaps != nil {
				a.alertSnaps.raised(al)
			}
		},
		Registerer: a.metrics,
		Logger:     a.log.With("component", "alerts"),
	})
	if err != nil {
		return err
	}
	if a.alertAPI, err = alertsapi.New(alertsapi.Options{Engine: a.engine, Actor: auth.Actor, Location: cfg.Location, Logger: a.log.With("component", "alerts-api")}); err != nil {
		return err
	}
	if a.hub, err = stream.New(stream.Options{Journal: a.journal, Registerer: a.metrics, Logger: a.log.With("component", "desk-hub")}); err != nil {
		return err
	}
	a.events = newEventSources(a)
	a.hooks, err = hooks.New(hooks.Options{
		Secret: a.hookSecret,
		// 202 waits for the journal append; ONVIF metadata and health
		// signals keep the non-waiting Submit, as ingest never waits.
		SubmitAllWait: a.engine.SubmitAllWait,
		Parsers:       hookParsers(a.events.route),
		Registerer:    a.metrics,
		Logger:        a.log.With("component", "hooks"),
	})
	return err
}

// journalCheck is the readiness check of the journal: it must answer, or
// (Redis) spool locally while it cannot; a spooling journal is ready but
// reported degraded.
func (a *App) journalCheck(ctx context.Context) (degraded string, err error) {
	if d, ok := a.journal.(interface{ Degraded() bool }); ok && d.Degraded() {
		return "degraded: redis unreachable or spooled changes waiting; alerts are spooled locally", nil
	}
	_, err = a.journal.LastSeq(ctx)
	return "", err
}

// runEngine runs the alert engine, restarted when it stops with an error.
func (a *App) runEngine(ctx context.Context) error {
	return keepRunning(ctx, a.log, "alert engine", a.engine.Run)
}

// submitHealth raises or ends a health signal of Vigil itself.
func (a *App) submitHealth(camera string, typ alerts.Type, active bool, detail string) {
	a.submitHealthFrom(camera, typ, active, detail, time.Time{})
}

// submitHealthFrom is submitHealth for a condition whose footage begins at
// footageFrom, before it is reported (zero: at the report).
func (a *App) submitHealthFrom(camera string, typ alerts.Type, active bool, detail string, footageFrom time.Time) {
	st := alerts.Inactive
	if active {
		st = alerts.Active
	}
	ev := alerts.Event{Camera: camera, Type: typ, State: st, At: time.Now(), Source: alerts.SourceHealth,
		Detail: map[string]string{"detail": detail}, FootageFrom: footageFrom}
	if err := a.engine.Submit(ev); err != nil {
		a.log.Error("health signal lost", "component", "alerts", "camera", camera, "type", typ, "err", err)
	}
}
