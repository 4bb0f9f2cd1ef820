package alerts

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	raised     *prometheus.CounterVec
	open       *prometheus.GaugeVec
	ackSeconds prometheus.Histogram
	overdue    *prometheus.CounterVec
	escalated  prometheus.Counter
	dropped    prometheus.Counter
	skew       *prometheus.HistogramVec

	effectsPending prometheus.Gauge
	effectFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		raised: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_raised_total", Help: "Alerts raised, by type, severity and site.",
		}, []string{"type", "severity", "site"}),
		open: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_alerts_open", Help: "Unresolved alerts by status.",
		}, []string{"status"}),
		ackSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_alert_ack_seconds", Help: "Time from raise to acknowledgement.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600},
		}),
		overdue: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_overdue_total", Help: "Deadlines passed (督办), by deadline: ack or resolve.",
		}, []string{"deadline"}),
		escalated: f.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerts_escalated_total", Help: "Overdue alerts escalated to their rule's escalate_to receivers (督办).",
		}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alert_events_dropped_total", Help: "Events dropped because the engine queue was full.",
		}),
		skew: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_event_clock_skew_seconds",
			Help:    "Difference between an event's own time and its receipt, by source (absolute, seconds).",
			Buckets: []float64{0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400},
		}, []string{"source"}),
		effectsPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_alert_effects_pending", Help: "Evidence holds and audit records of stored alert changes not yet carried out.",
		}),
		effectFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alert_effect_failures_total", Help: "Failed attempts at an alert change's side effect (retried until done), by effect.",
		}, []string{"effect"}),
	}
	for _, e := range []string{"hold", "audit"} {
		m.effectFailures.WithLabelValues(e)
	}
	// Series whose labels are known in advance exist from the start.
	for _, src := range []Source{SourceONVIF, SourceHikvision, SourceDahua, SourceGeneric} {
		m.skew.WithLabelValues(string(src))
	}
	return m
}
