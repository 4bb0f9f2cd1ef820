package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	up           *prometheus.GaugeVec
	reconnects   *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	frames       *prometheus.CounterVec
	lost         *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
	metaDropped  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		up: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_camera_up",
			Help: "1 while the camera's stream delivers frames."}, []string{"camera", "site"}),
		reconnects: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_camera_reconnects_total",
			Help: "Sessions of the camera that came online again after an earlier one (successful reconnections)."}, []string{"camera"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_bytes_total",
			Help: "RTP payload bytes received."}, []string{"camera"}),
		frames: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_frames_total",
			Help: "Video access units received."}, []string{"camera"}),
		lost: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_packets_lost_total",
			Help: "RTP packets lost on the way from the camera."}, []string{"camera"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_dropped_total",
			Help: "Units dropped because a subscriber's queue was full."}, []string{"camera", "subscriber"}),
		decodeErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_decode_errors_total",
			Help: "RTP packets or access units that could not be decoded."}, []string{"camera"}),
		metaDropped: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ingest_metadata_dropped_total",
			Help: "ONVIF metadata documents dropped: sequence gap, too large, or a full subscriber queue."}, []string{"camera"}),
	}
}

// forget deletes every series of a removed camera.
func (m *metrics) forget(camera string) {
	l := prometheus.Labels{"camera": camera}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.up, m.reconnects, m.bytes, m.frames, m.lost, m.dropped, m.decodeErrors, m.metaDropped,
	} {
		v.DeletePartialMatch(l)
	}
}
