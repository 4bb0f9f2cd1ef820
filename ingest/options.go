package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Transports a camera can be pulled with.
const (
	TransportAuto = "auto" // UDP first, TCP when UDP fails or brings nothing
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
)

// idPattern is the camera ID pattern of the design contract.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidID reports whether id is a valid camera ID.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Camera is the registration of one camera, as ingest needs it. The app maps
// configured cameras to it. Apply restarts a camera only when its stream
// changed (every field but Name, Site and Grid, see sameStream, so a new
// AuthRetry restarts it too); a new name, site or grid is taken over by the
// running camera.
type Camera struct {
	ID       string
	Name     string
	Site     string
	Grid     string
	URL      string // rtsp:// or rtsps:// URL without userinfo
	Username string
	Password string
	// Transport is "auto" (the default when empty), "tcp" or "udp".
	Transport     string
	ONVIFMetadata bool
	Enabled       bool
	// AuthRetry is the pause between tries after 3 refused logins (401)
	// in a row; Options.AuthRetry when 0.
	AuthRetry time.Duration
}

// sameStream reports whether c and o pull the same stream the same way: a
// camera going from o to c keeps its session. Name, Site and Grid only label
// the camera.
func (c Camera) sameStream(o Camera) bool {
	c.Name, c.Site, c.Grid = o.Name, o.Site, o.Grid
	return c == o
}

func (c Camera) validate() error {
	var errs []error
	if !ValidID(c.ID) {
		errs = append(errs, fmt.Errorf("camera %q: id must match %s", c.ID, idPattern))
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("camera %s: url: %w", c.ID, redactError(err, c)))
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		errs = append(errs, fmt.Errorf("camera %s: url: scheme must be rtsp or rtsps", c.ID))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("camera %s: url: credentials belong in username and password, not the url", c.ID))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("camera %s: url: no host", c.ID))
	}
	switch c.Transport {
	case "", TransportAuto, TransportTCP, TransportUDP:
	default:
		errs = append(errs, fmt.Errorf("camera %s: transport must be auto, tcp or udp", c.ID))
	}
	return errors.Join(errs...)
}

// Backoff configures the pause between reconnect attempts: it starts at Min,
// doubles up to Max, varies by ±Jitter (a fraction) and goes back to Min once
// a session stayed healthy for ResetAfter.
type Backoff struct {
	Min        time.Duration // 500ms
	Max        time.Duration // 10s
	Jitter     float64       // 0.2
	ResetAfter time.Duration // 30s
}

// CameraState is a health transition reported through Options.OnState: a
// camera offline for longer than Options.OfflineAfter (Online false), the
// same camera back online afterwards (Online true), and the first session
// of a camera since Streams started it (Online and First true).
type CameraState struct {
	Camera string
	Name   string
	Site   string
	Grid   string
	Online bool
	// First marks the camera's first session here. An outage reported
	// before that was reported elsewhere: by the node that recorded the
	// camera before this one, or by this process before a restart; the
	// first session ends it as a return after an outage here does.
	First bool
	Since time.Time // when the camera went offline or came back
	// Reason is why it went offline, one of the Reason constants
	// ("unauthorized", "connect", "timeout", "not_rtsp", "codec", ...);
	// Message says it for people (LastError.Message).
	Reason  string
	Message string
}

// Options configure Streams. Zero values take the documented defaults.
type Options struct {
	Registerer prometheus.Registerer // required; never the global registry
	Logger     *slog.Logger          // default: discard
	// OfflineAfter is how long a camera stays connecting (after it started
	// or lost its session) before it is offline and OnState reports it.
	// Default 30s.
	OfflineAfter time.Duration
	// AuthRetry is the pause between tries once a camera refused the
	// credentials 3 times in a row, for cameras that set none. Default 5m.
	AuthRetry time.Duration
	// StallAfter is how long a session may go without a video frame before it
	// is torn down and reconnected. Default 5s.
	StallAfter time.Duration
	Backoff    Backoff
	// ReadTimeout bounds RTSP requests and the TCP read deadline. Default 10s.
	ReadTimeout time.Duration
	// LostLogInterval bounds how often lost packets are logged per camera.
	// Default 10s.
	LostLogInterval time.Duration
	// MaxMetadataSize caps one ONVIF metadata document. Default 1 MiB.
	MaxMetadataSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// After waits for a duration (backoff pauses); default time.After.
	After func(time.Duration) <-chan time.Time
	// OnState, when set, receives health transitions. It is called from a
	// camera's own goroutine and must not block for long.
	OnState func(CameraState)
}

func (o *Options) validate() error {
	if o.Registerer == nil {
		return errors.New("ingest: options: Registerer is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.OfflineAfter, 30*time.Second)
	def(&o.StallAfter, 5*time.Second)
	def(&o.Backoff.Min, 500*time.Millisecond)
	def(&o.Backoff.Max, 10*time.Second)
	def(&o.Backoff.ResetAfter, 30*time.Second)
	def(&o.ReadTimeout, 10*time.Second)
	def(&o.AuthRetry, 5*time.Minute)
	def(&o.LostLogInterval, 10*time.Second)
	if o.Backoff.Jitter < 0 || o.Backoff.Jitter >= 1 {
		return fmt.Errorf("ingest: options: backoff jitter %v must be in [0, 1)", o.Backoff.Jitter)
	}
	if o.Backoff.Jitter == 0 {
		o.Backoff.Jitter = 0.2
	}
	if o.Backoff.Max < o.Backoff.Min {
		return fmt.Errorf("ingest: options: backoff max %v below min %v", o.Backoff.Max, o.Backoff.Min)
	}
	if o.MaxMetadataSize <= 0 {
		o.MaxMetadataSize = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return nil
}
