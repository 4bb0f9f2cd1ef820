// Package hooks is the webhook intake of camera events: POST
// /api/v1/hooks/{camera}/{vendor}, authenticated by the camera's webhook
// secret, size- and rate-limited per camera, answering 202 only once the
// events are durable in the journal. It owns the HTTP side of a push and
// the per-record answer; the vendor parsers (alerts/vendor) and the
// pipeline that takes the events (alerts.Engine) are handed in.
package hooks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigil/alerts"
	"vigil/internal/httpx"
)

// Parser turns one webhook request body into events. contentType is the
// request's Content-Type; body is already limited in size.
type Parser func(camera, contentType string, body io.Reader, now time.Time) ([]alerts.Event, error)

// RejectedRecords is the error a Parser returns, beside the events it
// did accept, when it judges each record of a push on its own (Dahua). It
// may be empty: the answer then still lists no rejected records, so that
// the caller sees the per-record contract. When no event was accepted and
// a record was rejected the request fails with 400.
type RejectedRecords []alerts.RejectedRecord

func (r RejectedRecords) Error() string {
	if len(r) == 0 {
		return "no record rejected"
	}
	msgs := make([]string, 0, min(len(r), 5))
	for _, x := range r[:min(len(r), 5)] {
		msgs = append(msgs, x.Error)
	}
	if len(r) > 5 {
		msgs = append(msgs, fmt.Sprintf("and %d more", len(r)-5))
	}
	return strings.Join(msgs, "; ")
}

// Options configure the camera push endpoints.
type Options struct {
	// Secret returns the webhook secret of a camera; ok is false when the
	// camera is unknown or has no secret (its endpoints are then disabled).
	Secret func(camera string) (secret string, ok bool)
	// SubmitAllWait hands the events of one request to the pipeline, all or
	// none, and returns once they are durable in the journal
	// (Engine.SubmitAllWait), so that 202 means "in the journal". Its errors
	// decide the answer: alerts.ErrQueueFull (nothing queued) → 503 busy; an
	// invalid event → 400; anything else, including ctx ending first →
	// 503 unavailable, and the camera's retry is safe: events that did get
	// in raise the same alert's count (dedupe), not a second alert.
	SubmitAllWait func(ctx context.Context, evs []alerts.Event) error
	// Wait bounds how long a request waits for its events to become
	// durable; default 5s.
	Wait time.Duration
	// Parsers by vendor path segment: "hikvision", "dahua", "onvif", "events".
	Parsers map[string]Parser
	// RatePerSecond per camera; default 50. Burst equals the rate.
	RatePerSecond int
	// MaxBody in bytes; default 1 MiB.
	MaxBody    int64
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o *Options) validate() error {
	var errs []error
	if o.Secret == nil {
		errs = append(errs, errors.New("hooks: Secret is required"))
	}
	if o.SubmitAllWait == nil {
		errs = append(errs, errors.New("hooks: SubmitAllWait is required"))
	}
	if len(o.Parsers) == 0 {
		errs = append(errs, errors.New("hooks: no parsers"))
	}
	if o.RatePerSecond <= 0 {
		o.RatePerSecond = 50
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Intake serves POST /api/v1/hooks/{camera}/{vendor}: camera-pushed events,
// authenticated by the camera's webhook secret (?key= or the basic-auth
// password), size-limited and rate-limited per camera. It answers 202 only
// once the events are durable in the journal: a camera drops an event it
// got 202 for, so 202 before the append lost events on a crash.
type Intake struct {
	opts     Options
	requests *prometheus.CounterVec

	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket is a token bucket refilled at the configured rate.
type bucket struct {
	tokens float64
	last   time.Time
}

// New returns the push endpoint handler.
func New(opts Options) (*Intake, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Intake{
		opts: opts,
		requests: promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_hook_requests_total",
			Help: "Camera webhook requests by vendor and HTTP status code.",
		}, []string{"vendor", "code"}),
		buckets: map[string]*bucket{},
	}, nil
}

// ServeHTTP handles requests routed with the pattern
// "POST /api/v1/hooks/{camera}/{vendor}".
func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	camera, vendor := r.PathValue("camera"), r.PathValue("vendor")
	code := h.serve(w, r, camera, vendor)
	if _, known := h.opts.Parsers[vendor]; !known {
		vendor = "unknown" // keep the label set bounded
	}
	h.requests.WithLabelValues(vendor, strconv.Itoa(code)).Inc()
}

func (h *Intake) serve(w http.ResponseWriter, r *http.Request, camera, vendor string) int {
	fail := func(status int, code, msg string) int {
		httpx.Error(w, status, code, msg)
		return status
	}
	parse, ok := h.opts.Parsers[vendor]
	if !ok {
		return fail(http.StatusNotFound, "not_found", fmt.Sprintf("no webhook endpoint %q: want hikvision, dahua, onvif or events", vendor))
	}
	secret, ok := h.opts.Secret(camera)
	if !ok {
		// Unknown camera and camera without a secret look the same to a caller.
		return fail(http.StatusUnauthorized, "unauthorized", "webhooks are not enabled for this camera or the key is wrong")
	}
	if !secretMatches(r, secret) {
		return fail(http.StatusUnauthorized, "unauthorized", "webhooks are not enabled for this camera or the key is wrong")
	}
	if !h.allow(camera) {
		w.Header().Set("Retry-After", "1")
		return fail(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("more than %d requests per second for camera %s", h.opts.RatePerSecond, camera))
	}
	body := http.MaxBytesReader(w, r.Body, h.opts.MaxBody)
	events, err := parse(camera, r.Header.Get("Content-Type"), body, h.opts.Now())
	var rejected RejectedRecords
	if errors.As(err, &rejected) {
		err = nil
		if rejected == nil {
			rejected = RejectedRecords{}
		}
		if len(events) == 0 && len(rejected) > 0 {
			return fail(http.StatusBadRequest, "bad_request", rejected.Error())
		}
		if len(rejected) > 0 {
			h.opts.Logger.Warn("webhook records rejected", "camera", camera, "vendor", vendor, "accepted", len(events), "rejected", len(rejected), "first", rejected[0].Error)
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", h.opts.MaxBody))
		}
		return fail(http.StatusBadRequest, "bad_request", err.Error())
	}
	if len(events) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Wait)
		err := h.opts.SubmitAllWait(ctx, events)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, alerts.ErrQueueFull):
			h.opts.Logger.Warn("webhook events not accepted", "camera", camera, "vendor", vendor, "events", len(events), "err", err)
			return fail(http.StatusServiceUnavailable, "busy", "event queue is full; nothing was accepted, retry")
		case alerts.ErrorCode(err) == alerts.CodeBadRequest:
			return fail(http.StatusBadRequest, "bad_request", err.Error())
		default:
			// Queued but not confirmed: they stay queued (or part of them
			// was appended). A retry is safe: the same signal raises the
			// existing alert's count, not a new alert.
			h.opts.Logger.Warn("webhook events not confirmed durable", "camera", camera, "vendor", vendor, "events", len(events), "err", err)
			return fail(http.StatusServiceUnavailable, "unavailable", fmt.Sprintf(
				"events not confirmed in the journal within %s; they may still be applied, and a retry counts as a repeat of the same signal", h.opts.Wait))
		}
	}
	if rejected != nil {
		httpx.WriteJSON(w, http.StatusAccepted, struct {
			Accepted int             `json:"accepted"`
			Rejected RejectedRecords `json:"rejected"`
		}{len(events), rejected})
		return http.StatusAccepted
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(events)})
	return http.StatusAccepted
}

// secretMatches compares the presented key in constant time (by hashing both
// sides first, so lengths do not leak either).
func secretMatches(r *http.Request, secret string) bool {
	presented := r.URL.Query().Get("key")
	if presented == "" {
		if _, pass, ok := r.BasicAuth(); ok {
			presented = pass
		}
	}
	if presented == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (h *Intake) allow(camera string) bool {
	now := h.opts.Now()
	rate := float64(h.opts.RatePerSecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.buckets[camera]
	if !ok {
		b = &bucket{tokens: rate, last: now}
		h.buckets[camera] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(rate, b.tokens+el*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
