package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/httpx"
	"vigil/internal/media"
)

// ICEServer is a STUN or TURN server offered to pion for gathering.
type ICEServer struct {
	URL        string
	Username   string
	Credential string
}

// ViewersOptions configure Viewers. Zero values take the documented defaults.
type ViewersOptions struct {
	// Feeds are the cameras' live feeds; required.
	Feeds *Feeds
	// Known reports whether camera is registered; required. Offers for
	// others get 404.
	Known func(camera string) bool
	// UDPAddr is the one UDP socket all viewers' media use, host:port;
	// port 0 picks a free one. Default ":8189".
	UDPAddr string
	// MaxViewers caps concurrent viewers; more get 503. Default 32.
	MaxViewers int
	// ICEServers are STUN/TURN servers for gathering.
	ICEServers []ICEServer
	// NATIPs replace the host candidates' addresses (1:1 NAT).
	NATIPs []string
	// LocationPrefix is what a session's Location starts with, followed
	// by "{camera}/whep/{session}". Default "/api/v1/cameras/".
	LocationPrefix string
	// ConnectTimeout closes a viewer that has not connected this long
	// after its answer. Default 15s.
	ConnectTimeout time.Duration
	// DisconnectedTimeout and FailedTimeout are ICE's consent timers: a
	// viewer silent for their sum is closed. Defaults 5s and 10s, so a
	// vanished viewer is gone within 15 s.
	DisconnectedTimeout, FailedTimeout time.Duration
	Registerer                         prometheus.Registerer
	Logger                             *slog.Logger
}

func (o *ViewersOptions) validate() error {
	var errs []error
	if o.Feeds == nil {
		errs = append(errs, errors.New("live: no feeds"))
	}
	if o.Known == nil {
		errs = append(errs, errors.New("live: no camera registry"))
	}
	if o.UDPAddr == "" {
		o.UDPAddr = ":8189"
	}
	if o.MaxViewers <= 0 {
		o.MaxViewers = 32
	}
	if o.LocationPrefix == "" {
		o.LocationPrefix = "/api/v1/cameras/"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
	if o.DisconnectedTimeout <= 0 {
		o.DisconnectedTimeout = 5 * time.Second
	}
	if o.FailedTimeout <= 0 {
		o.FailedTimeout = 10 * time.Second
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, ip := range o.NATIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("live: nat ip %q: not an IP address", ip))
		}
	}
	return errors.Join(errs...)
}

// Viewers serves WHEP live viewers: it answers offers with a peer
// connection that follows the camera's feed, and ends sessions on DELETE,
// on ICE failure or when Run ends. Create it with NewViewers (which binds
// the UDP port) and call Run once.
type Viewers struct {
	opts ViewersOptions
	log  *slog.Logger
	m    *metrics
	conn *sendBatch
	mux  ice.UDPMux
	api  *webrtc.API

	mu       sync.Mutex
	sessions map[string]*viewer
	reserved int // slots taken by offers being answered
	closed   bool
	wg       sync.WaitGroup // viewer goroutines and RTCP readers

	closeOnce sync.Once
	closeErr  error
}

// NewViewers binds the UDP port and prepares the WebRTC stack; it starts
// nothing.
func NewViewers(opts ViewersOptions) (*Viewers, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", opts.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("live: udp %s: %w", opts.UDPAddr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("live: udp %s: %w", opts.UDPAddr, err)
	}
	vs := &Viewers{opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer), conn: newSendBatch(conn), sessions: map[string]*viewer{}}
	registerSendErrors(opts.Registerer, vs.conn)
	vs.mux = webrtc.NewICEUDPMux(pionLogs{vs.log}.NewLogger("udpmux"), vs.conn)
	vs.api, err = vs.newAPI()
	if err != nil {
		vs.Close()
		return nil, err
	}
	return vs, nil
}

// UDPAddr is the address of the UDP socket all viewers share.
func (vs *Viewers) UDPAddr() net.Addr { return vs.conn.LocalAddr() }

// h264Profiles are the H.264 variants answered: the camera's stream passes
// through whatever its profile, and browsers decode it under any of these.
var h264Profiles = []string{"42001f", "42e01f", "4d001f", "64001f"}

func (vs *Viewers) newAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}} // ConfigureNack adds nack and nack pli
	for i, p := range h264Profiles {
		err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p, RTCPFeedback: fb},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, fmt.Errorf("live: register H.264: %w", err)
		}
	}
	for _, c := range []struct {
		mime string
		pt   webrtc.PayloadType
	}{{webrtc.MimeTypePCMU, 0}, {webrtc.MimeTypePCMA, 8}} {
		err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: c.mime, ClockRate: 8000, Channels: 1},
			PayloadType:        c.pt,
		}, webrtc.RTPCodecTypeAudio)
		if err != nil {
			return nil, fmt.Errorf("live: register G.711: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	// The responder keeps the packets it may resend without copying them:
	// their payloads are the feed's, never modified, and their headers
	// are allocated for each frame (viewer.writeVideo).
	if err := webrtc.ConfigureNackWithOptions(me, ir, nil, nack.DisableCopy()); err != nil {
		return nil, fmt.Errorf("live: nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("live: rtcp reports: %w", err)
	}
	se := webrtc.SettingEngine{LoggerFactory: pionLogs{vs.log}}
	se.SetICEUDPMux(vs.mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(vs.opts.DisconnectedTimeout, vs.opts.FailedTimeout, time.Second)
	if ua, ok := vs.conn.LocalAddr().(*net.UDPAddr); ok && ua.IP.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(vs.opts.NATIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: vs.opts.NATIPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace})
		if err != nil {
			return nil, fmt.Errorf("live: nat_ips: %w", err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// Run waits for ctx to end, then closes every session and the UDP port and
// returns once no goroutine of a viewer is left.
func (vs *Viewers) Run(ctx context.Context) error {
	<-ctx.Done()
	vs.mu.Lock()
	vs.closed = true
	all := make([]*viewer, 0, len(vs.sessions))
	for _, v := range vs.sessions {
		all = append(all, v)
	}
	vs.mu.Unlock()
	for _, v := range all {
		vs.end(v, "shutdown")
	}
	vs.wg.Wait()
	return vs.Close()
}

// Close releases the UDP port. Run calls it; call it only for Viewers
// whose Run never started.
func (vs *Viewers) Close() error {
	vs.closeOnce.Do(func() { vs.closeErr = vs.mux.Close() })
	return vs.closeErr
}

// EndCamera ends every session of camera: it was removed or disabled.
func (vs *Viewers) EndCamera(camera string) {
	vs.mu.Lock()
	var of []*viewer
	for _, v := range vs.sessions {
		if v.camera == camera {
			of = append(of, v)
		}
	}
	vs.mu.Unlock()
	for _, v := range of {
		vs.end(v, "camera removed")
	}
}

// Count is the number of live sessions.
func (vs *Viewers) Count() int {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return len(vs.sessions)
}

// maxOffer bounds an SDP offer; browsers send a few KiB.
const maxOffer = 64 << 10

var cameraIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ServeOffer answers POST {prefix}{id}/whep: an SDP offer in, 201 with the
// SDP answer and the session's Location out.
func (vs *Viewers) ServeOffer(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	camera := r.PathValue("id")
	if !cameraIDPattern.MatchString(camera) || !vs.opts.Known(camera) {
		httpx.Error(w, http.StatusNotFound, "not_found", "no camera "+camera)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			httpx.Error(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "content type "+ct+": want application/sdp")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOffer))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.Error(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("offer larger than %d bytes", maxOffer))
			return
		}
		// The body did not arrive in time (the router's deadline) or the
		// client went away.
		httpx.Error(w, http.StatusRequestTimeout, "timeout", "reading the offer: "+err.Error())
		return
	}
	offer, err := parseOffer(body)
	if err != nil {
		vs.m.refused.WithLabelValues("bad_offer").Inc()
		httpx.Error(w, http.StatusBadRequest, "bad_offer", "malformed SDP offer: "+err.Error())
		return
	}
	if !offer.h264 {
		vs.m.refused.WithLabelValues("no_h264").Inc()
		httpx.Error(w, http.StatusNotAcceptable, "no_h264", "the offer has no H.264 video; Vigil passes the camera's H.264 through and cannot offer another codec")
		return
	}
	feed := vs.opts.Feeds.Feed(camera)
	stream, online := feed.Online()
	if !online || stream.Video == nil {
		vs.m.refused.WithLabelValues("camera_offline").Inc()
		httpx.Error(w, http.StatusConflict, "camera_offline", "camera "+camera+" is not streaming")
		return
	}
	if stream.Video.Codec != media.H264 {
		vs.m.refused.WithLabelValues("h265").Inc()
		httpx.Error(w, http.StatusNotAcceptable, "h265_not_supported",
			"camera "+camera+" streams H.265, which WebRTC in browsers on Linux cannot play; use the snapshot (GET /api/v1/cameras/"+camera+"/snapshot) instead")
		return
	}
	if ok, closed := vs.reserve(); !ok {
		if closed {
			httpx.Error(w, http.StatusServiceUnavailable, "shutting_down", "this node is shutting down")
			return
		}
		vs.m.refused.WithLabelValues("max_viewers").Inc()
		httpx.Error(w, http.StatusServiceUnavailable, "max_viewers", fmt.Sprintf("this node already serves %d live viewers", vs.opts.MaxViewers))
		return
	}
	v, answer, err := vs.open(r.Context(), camera, string(body), stream, offer, started)
	if err != nil {
		vs.release() // an answered offer's slot passed to its session in open
		var oe *offerError
		if errors.As(err, &oe) {
			vs.m.refused.WithLabelValues("bad_offer").Inc()
			httpx.Error(w, oe.status, oe.code, oe.msg)
			return
		}
		vs.log.Error("live: answering an offer", "camera", camera, "err", err)
		httpx.Error(w, http.StatusInternalServerError, "internal", "could not answer the offer")
		return
	}
	vs.log.Info("live viewer started", "camera", camera, "session", v.id)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", vs.opts.LocationPrefix+camera+"/whep/"+v.id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// ServeEnd answers DELETE {prefix}{id}/whep/{session}: 204, or 404 for a
// session that does not exist (any more).
func (vs *Viewers) ServeEnd(w http.ResponseWriter, r *http.Request) {
	camera, id := r.PathValue("id"), r.PathValue("session")
	vs.mu.Lock()
	v := vs.sessions[id]
	vs.mu.Unlock()
	if v == nil || v.camera != camera {
		httpx.Error(w, http.StatusNotFound, "not_found", "no live session "+id)
		return
	}
	vs.end(v, "deleted")
	w.WriteHeader(http.StatusNoContent)
}

// ServePatch answers PATCH on a session: Vigil answers with every
// candidate gathered and takes no trickled ones (RFC 9725 §4.3.1).
func (vs *Viewers) ServePatch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "DELETE")
	httpx.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", "trickle ICE is not supported; the answer carries every candidate")
}

// reserve takes a viewer slot for an offer being answered.
func (vs *Viewers) reserve() (ok, closed bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return false, true
	}
	if len(vs.sessions)+vs.reserved >= vs.opts.MaxViewers {
		return false, false
	}
	vs.reserved++
	return true, false
}

func (vs *Viewers) release() {
	vs.mu.Lock()
	vs.reserved--
	vs.mu.Unlock()
}

// offer is what the handler needs to know of an SDP offer.
type offer struct {
	h264       bool
	pcmu, pcma bool
}

// offerError is an offer pion refused: the client's fault.
type offerError struct {
	status    int
	code, msg string
}

func (e *offerError) Error() string { return e.msg }

// parseOffer checks that body is an SDP offer with at least one media
// section and says which of Vigil's codecs it takes.
func parseOffer(body []byte) (offer, error) {
	var o offer
	var sd sdp.SessionDescription
	if len(body) == 0 {
		return o, errors.New("empty body")
	}
	if err := sd.Unmarshal(body); err != nil {
		return o, err
	}
	if len(sd.MediaDescriptions) == 0 {
		return o, errors.New("no media sections")
	}
	for _, md := range sd.MediaDescriptions {
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			_, enc, _ := strings.Cut(a.Value, " ")
			enc = strings.ToUpper(enc)
			switch md.MediaName.Media {
			case "video":
				o.h264 = o.h264 || strings.HasPrefix(enc, "H264/90000")
			case "audio":
				o.pcmu = o.pcmu || strings.HasPrefix(enc, "PCMU/8000")
				o.pcma = o.pcma || strings.HasPrefix(enc, "PCMA/8000")
			}
		}
	}
	return o, nil
}

// gatherTimeout bounds gathering: host candidates on the mux are
// immediate, STUN and TURN take a round trip.
const gatherTimeout = 3 * time.Second

// open builds the peer connection of a new viewer, answers its offer and
// starts it following the feed.
func (vs *Viewers) open(ctx context.Context, camera, sdpOffer string, stream media.Stream, o offer, started time.Time) (*viewer, string, error) {
	cfg := webrtc.Configuration{}
	for _, s := range vs.opts.ICEServers {
		is := webrtc.ICEServer{URLs: []string{s.URL}, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
		}
		cfg.ICEServers = append(cfg.ICEServers, is)
	}
	pc, err := vs.api.NewPeerConnection(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("camera %s: peer connection: %w", camera, err)
	}
	fail := func(err error) (*viewer, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdpOffer}); err != nil {
		return fail(&offerError{http.StatusBadRequest, "bad_offer", "the SDP offer was refused: " + err.Error()})
	}
	id := newSessionID()
	v := &viewer{id: id, camera: camera, pc: pc, m: vs.m, out: vs.conn,
		queue: make(chan item, viewerQueue), quit: make(chan struct{}), done: make(chan struct{})}
	v.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "vigil-"+camera)
	if err != nil {
		return fail(err)
	}
	senders := []*webrtc.RTPSender{}
	sender, err := pc.AddTrack(v.video)
	if err != nil {
		return fail(fmt.Errorf("camera %s: video track: %w", camera, err))
	}
	senders = append(senders, sender)
	if a := stream.Audio; a != nil && a.Codec == media.G711 && a.ChannelCount <= 1 && ((a.MULaw && o.pcmu) || (!a.MULaw && o.pcma)) {
		mt := webrtc.MimeTypePCMA
		if a.MULaw {
			mt = webrtc.MimeTypePCMU
		}
		v.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mt, ClockRate: 8000, Channels: 1}, "audio", "vigil-"+camera)
		if err != nil {
			return fail(err)
		}
		v.mulaw = a.MULaw
		sender, err := pc.AddTrack(v.audio)
		if err != nil {
			return fail(fmt.Errorf("camera %s: audio track: %w", camera, err))
		}
		senders = append(senders, sender)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(&offerError{http.StatusNotAcceptable, "no_h264", "no H.264 format of the offer can be answered: " + err.Error()})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("camera %s: local description: %w", camera, err))
	}
	if len(senders[0].GetParameters().Codecs) == 0 {
		return fail(&offerError{http.StatusNotAcceptable, "no_h264", "no H.264 format of the offer can be answered (packetization-mode 1 is required)"})
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	var once sync.Once
	v.firstSent = func() {
		once.Do(func() { vs.m.firstKey.Observe(time.Since(started).Seconds()) })
	}
	vs.mu.Lock()
	if vs.closed {
		vs.mu.Unlock()
		return fail(errors.New("live: shutting down"))
	}
	vs.sessions[id] = v
	vs.reserved-- // the offer's slot is the session's now: counted once
	vs.wg.Add(1 + len(senders))
	vs.mu.Unlock()
	vs.m.viewers.Inc()

	for _, s := range senders {
		go func() {
			defer vs.wg.Done()
			buf := make([]byte, 1500)
			for {
				// Reading RTCP drives the NACK responder and reports;
				// it fails once the connection closes.
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	connected := make(chan struct{})
	var connOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go vs.end(v, s.String())
		}
	})
	// The viewer joins the feed once connected: what is written before
	// DTLS is up never arrives, and the GOP must.
	go func() {
		defer vs.wg.Done()
		t := time.NewTimer(vs.opts.ConnectTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			close(v.done)
			vs.end(v, "not connected in time")
			return
		case <-v.quit:
			close(v.done)
			return
		case <-connected:
		}
		feed := vs.opts.Feeds.Feed(camera)
		st, gop := feed.join(v)
		v.run(feed, st, gop)
		feed.leave(v) // in case end ran between connected and join
	}()
	return v, pc.LocalDescription().SDP, nil
}

// end closes a session once, whoever asks first, and waits for its writer
// to stop.
func (vs *Viewers) end(v *viewer, reason string) {
	vs.mu.Lock()
	if vs.sessions[v.id] != v {
		vs.mu.Unlock()
		return
	}
	delete(vs.sessions, v.id)
	vs.mu.Unlock()
	vs.m.viewers.Dec()
	if f := vs.opts.Feeds.lookup(v.camera); f != nil {
		f.leave(v)
	}
	v.stop()
	<-v.done
	if err := v.pc.Close(); err != nil {
		vs.log.Debug("live: closing a peer connection", "camera", v.camera, "session", v.id, "err", err)
	}
	vs.log.Info("live viewer ended", "camera", v.camera, "session", v.id, "reason", reason)
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
