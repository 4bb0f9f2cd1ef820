package live

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	viewers  prometheus.Gauge
	refused  *prometheus.CounterVec
	frames   prometheus.Counter
	dropped  prometheus.Counter
	delay    prometheus.Histogram
	firstKey prometheus.Histogram
}

// registerSendErrors exports the datagrams the kernel refused on the
// viewers' socket (an address gone unreachable, a full buffer).
func registerSendErrors(reg prometheus.Registerer, b *sendBatch) {
	promauto.With(reg).NewCounterFunc(prometheus.CounterOpts{
		Name: "vigil_live_send_errors_total",
		Help: "Datagrams to live viewers that the kernel refused to send.",
	}, func() float64 { return float64(b.errs.Load()) })
}

type snapshotMetrics struct {
	snapshots *prometheus.CounterVec
	snapTime  prometheus.Histogram
	processes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		viewers: f.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_live_viewers",
			Help: "WHEP live viewers connected to this node.",
		}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_live_refused_total",
			Help: "WHEP offers refused, by reason.",
		}, []string{"reason"}),
		frames: f.NewCounter(prometheus.CounterOpts{
			Name: "vigil_live_frames_total",
			Help: "Video frames written to live viewers.",
		}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "vigil_live_dropped_total",
			Help: "Access units dropped for a live viewer whose queue was full; it resumes at the next keyframe.",
		}),
		delay: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_live_delay_seconds",
			Help: "Time from the arrival at ingest of a video unit's last RTP packet to its last RTP packet written to a live viewer: the delay live view adds.",
			// Fine between 1 and 25 ms, where the 5 ms goal and its misses lie.
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .003, .004, .005, .006, .0075, .01, .0125, .015, .02, .025, .05, .1, .25, .5, 1},
		}),
		firstKey: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_live_first_keyframe_seconds",
			Help:    "Time from a WHEP offer to the first keyframe written to the new viewer.",
			Buckets: []float64{.01, .025, .05, .1, .2, .3, .5, 1, 2, 5},
		}),
	}
	for _, r := range []string{"max_viewers", "camera_offline", "h265", "no_h264", "bad_offer"} {
		m.refused.WithLabelValues(r)
	}
	return m
}

func newSnapshotMetrics(reg prometheus.Registerer) *snapshotMetrics {
	f := promauto.With(reg)
	m := &snapshotMetrics{
		snapshots: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_snapshots_total",
			Help: "Snapshots decoded with ffmpeg, by result.",
		}, []string{"result"}),
		snapTime: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_snapshot_seconds",
			Help:    "Time to decode one snapshot with ffmpeg.",
			Buckets: []float64{.025, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 5},
		}),
		processes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_snapshot_processes_total",
			Help: "ffmpeg processes given a snapshot, by how: spare (started ahead, waiting) or started (for it).",
		}, []string{"start"}),
	}
	for _, r := range []string{"ok", "error"} {
		m.snapshots.WithLabelValues(r)
	}
	for _, r := range []string{"spare", "started"} {
		m.processes.WithLabelValues(r)
	}
	return m
}
