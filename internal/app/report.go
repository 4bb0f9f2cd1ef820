package app

import (
	"net/http"

	"vigil/configs"
	"vigil/report"
)

// ReportOptions are the report's names and zone from the configuration;
// the API and `vigil report` use them alike.
func ReportOptions(cfg *configs.Config) report.Options {
	return report.Options{
		Location: cfg.Location,
		SiteName: func(id string) string { return siteName(cfg, id) },
		UnitName: func(id string) string {
			if u, ok := cfg.Unit(id); ok {
				return u.Name
			}
			return id
		},
	}
}

// siteName is the display name of a site from vigil.yaml's sites, else
// its ID.
func siteName(cfg *configs.Config, id string) string {
	for _, s := range cfg.Sites {
		if s.ID == id && s.Name != "" {
			return s.Name
		}
	}
	return id
}

// reportHandler serves GET /api/v1/reports.
func (a *App) reportHandler() http.Handler {
	return &report.Handler{Source: report.Engine(a.engine), Opts: ReportOptions(a.opts.Config), Log: a.log.With("component", "report")}
}
