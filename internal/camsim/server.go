package camsim

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"golang.org/x/sync/errgroup"

	"vigil/alerts/pull/pulltest"
)

//go:embed testdata/hall.h264
var hallH264 []byte

//go:embed testdata/small.h264
var smallH264 []byte

// DefaultClip returns the built-in clip: 10 s of 640x360 at 25 fps, GOP 50.
func DefaultClip() *Clip {
	c, err := ParseClip(hallH264, 25)
	if err != nil {
		panic("camsim: embedded clip: " + err.Error()) // a broken build, not a runtime condition
	}
	return c
}

// AltClip returns the built-in clip the sps fault switches to: 320x180.
func AltClip() *Clip {
	c, err := ParseClip(smallH264, 25)
	if err != nil {
		panic("camsim: embedded clip: " + err.Error())
	}
	return c
}

// Faults a camera can be put in.
const (
	FaultStop    = "stop"    // close its sessions and refuse new ones until restart
	FaultStall   = "stall"   // keep sessions open and send nothing
	FaultRestart = "restart" // accept and send again, starting with an IDR; ends stall and garbage, keeps the clip
	FaultSPS     = "sps"     // switch to the other clip (and back on the next sps): new SPS/PPS in-band
	FaultGarbage = "garbage" // random bytes as video RTP payloads for GarbageFor
)

// Errors of Trigger and Fault; the control endpoint maps them to 404 / 400.
var (
	ErrUnknownCamera = errors.New("unknown camera")
	ErrBadRequest    = errors.New("bad request")
)

// CameraSpec describes one simulated camera.
type CameraSpec struct {
	// Path is the RTSP path without leading slash, e.g. "cam/0" or
	// "cam/hall-entrance".
	Path string
	// Events adds the ONVIF metadata track.
	Events bool
	// Clip overrides Options.Clip for this camera.
	Clip *Clip
	// Vendor, VendorHikvision or VendorDahua, sends the camera's events
	// to a vendor event stream served at VendorURL (digest auth with
	// Options.VendorUser and VendorPassword) instead of the metadata
	// track. Needs Options.VendorListen.
	Vendor string
}

// Cameras returns n specs at cam/0 … cam/{n-1}.
func Cameras(n int, events bool) []CameraSpec {
	out := make([]CameraSpec, n)
	for i := range out {
		out[i] = CameraSpec{Path: "cam/" + strconv.Itoa(i), Events: events}
	}
	return out
}

// Options configure a Server.
type Options struct {
	// Listen is the RTSP (TCP) address, e.g. 127.0.0.1:8554 or 127.0.0.1:0.
	Listen string
	// UDPRTPAddress is the RTP port for the UDP transport (even; RTCP uses
	// the next one). Empty picks a free pair on Listen's host.
	UDPRTPAddress string
	// NoUDP turns the UDP transport off.
	NoUDP bool
	// Control is the loopback address of the HTTP control endpoint; empty
	// for none. Non-loopback addresses are refused.
	Control string
	// Cameras to serve; at least one.
	Cameras []CameraSpec
	// Clip is looped by every camera without its own; nil means DefaultClip.
	Clip *Clip
	// AltClip is what the sps fault switches to; nil means AltClip().
	AltClip *Clip
	// Speed scales the pace of the stream (frames, schedule, sync) against
	// the wall clock; 0 means 1 (real time). Tests use 5–20.
	Speed float64
	// SyncEvery is the stream-time period of sync documents, which repeat
	// every property's state as PropertyOperation="Initialized". 0 means
	// 10 s; negative turns them off.
	SyncEvery time.Duration
	// Schedule lists scripted events.
	Schedule []ScheduledEvent
	// MetadataChunk is the payload size of metadata RTP packets; 0 means
	// DefaultMetadataChunk.
	MetadataChunk int
	// GarbageFor is how long (stream time) the garbage fault lasts; 0 means 2 s.
	GarbageFor time.Duration
	// VendorListen is the loopback HTTP address of the vendor event
	// streams (CameraSpec.Vendor); VendorUser and VendorPassword their
	// account (default admin / admin).
	VendorListen               string
	VendorUser, VendorPassword string
	// Logger; nil discards.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	var errs []error
	if o.Listen == "" {
		errs = append(errs, errors.New("listen address is empty"))
	}
	if len(o.Cameras) == 0 {
		errs = append(errs, errors.New("no cameras"))
	}
	seen := map[string]bool{}
	for i, c := range o.Cameras {
		switch {
		case c.Path == "" || strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/"):
			errs = append(errs, fmt.Errorf("cameras[%d]: bad path %q", i, c.Path))
		case seen[c.Path]:
			errs = append(errs, fmt.Errorf("cameras[%d]: duplicate path %q", i, c.Path))
		}
		seen[c.Path] = true
		switch c.Vendor {
		case "":
		case VendorHikvision, VendorDahua:
			if o.VendorListen == "" {
				errs = append(errs, fmt.Errorf("cameras[%d]: vendor %s needs VendorListen", i, c.Vendor))
			}
		default:
			errs = append(errs, fmt.Errorf("cameras[%d]: vendor %q: want hikvision or dahua", i, c.Vendor))
		}
	}
	if o.VendorListen != "" {
		if err := checkLoopback(o.VendorListen); err != nil {
			errs = append(errs, fmt.Errorf("vendor events: %w", err))
		}
	}
	if o.Speed < 0 {
		errs = append(errs, errors.New("speed is negative"))
	}
	if o.MetadataChunk < 0 || o.MetadataChunk > 1400 {
		errs = append(errs, errors.New("metadata chunk must be in 1..1400"))
	}
	if o.Control != "" {
		if err := checkLoopback(o.Control); err != nil {
			errs = append(errs, fmt.Errorf("control: %w", err))
		}
	}
	for i, ev := range o.Schedule {
		if !seen[ev.Camera] {
			errs = append(errs, fmt.Errorf("schedule[%d]: unknown camera %q", i, ev.Camera))
		}
	}
	return errors.Join(errs...)
}

// checkLoopback refuses addresses whose host is not a loopback IP or
// localhost: the control endpoint has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

// Server serves simulated cameras over RTSP and takes triggers and faults
// from its Go API and its HTTP control endpoint.
type Server struct {
	opts    Options
	log     *slog.Logger
	speed   float64
	rtsp    *gortsplib.Server
	control net.Listener
	// vendorLn serves the vendor event streams; nil without any.
	vendorLn net.Listener
	t0       time.Time // start of stream time
	cams     map[string]*camera
	order    []*camera
}

// New validates opts and binds the RTSP, UDP and control listeners, so Addr
// and ControlAddr are known at once. Run serves and releases them.
func New(opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, speed: opts.Speed, cams: map[string]*camera{}}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "camsim")
	if s.speed == 0 {
		s.speed = 1
	}
	if s.opts.SyncEvery == 0 {
		s.opts.SyncEvery = 10 * time.Second
	}
	if s.opts.MetadataChunk == 0 {
		s.opts.MetadataChunk = DefaultMetadataChunk
	}
	if s.opts.GarbageFor == 0 {
		s.opts.GarbageFor = 2 * time.Second
	}
	if s.opts.Clip == nil {
		s.opts.Clip = DefaultClip()
	}
	if s.opts.AltClip == nil {
		s.opts.AltClip = AltClip()
	}
	main, alt := prepare(s.opts.Clip), prepare(s.opts.AltClip)

	s.rtsp = &gortsplib.Server{
		Handler:     &handler{s: s},
		RTSPAddress: opts.Listen,
	}
	if !opts.NoUDP {
		rtpConn, rtcpConn, err := udpPair(opts.Listen, opts.UDPRTPAddress)
		if err != nil {
			return nil, fmt.Errorf("camsim: udp: %w", err)
		}
		s.rtsp.UDPRTPAddress = rtpConn.LocalAddr().String()
		s.rtsp.UDPRTCPAddress = rtcpConn.LocalAddr().String()
		conns := map[string]net.PacketConn{s.rtsp.UDPRTPAddress: rtpConn, s.rtsp.UDPRTCPAddress: rtcpConn}
		s.rtsp.ListenPacket = func(network, addr string) (net.PacketConn, error) {
			if c, ok := conns[addr]; ok {
				delete(conns, addr)
				return c, nil
			}
			return net.ListenPacket(network, addr)
		}
		defer func() {
			for _, c := range conns { // not taken by a failed Start
				c.Close()
			}
		}()
	}
	// The camera table is complete before the RTSP server runs: its
	// callbacks read it without a lock.
	for _, spec := range opts.Cameras {
		clip := main
		if spec.Clip != nil {
			clip = prepare(spec.Clip)
		}
		c, err := newCamera(s, spec, clip, alt)
		if err != nil {
			return nil, err
		}
		s.cams[spec.Path] = c
		s.order = append(s.order, c)
	}
	s.t0 = time.Now()
	if err := s.rtsp.Start(); err != nil {
		return nil, fmt.Errorf("camsim: rtsp: %w", err)
	}
	for _, c := range s.order {
		c.mu.Lock()
		err := c.openStream()
		c.mu.Unlock()
		if err != nil {
			s.rtsp.Close()
			return nil, err
		}
	}
	if opts.Control != "" {
		ln, err := net.Listen("tcp", opts.Control)
		if err != nil {
			s.rtsp.Close()
			return nil, fmt.Errorf("camsim: control: %w", err)
		}
		s.control = ln
	}
	if opts.VendorListen != "" {
		ln, err := net.Listen("tcp", opts.VendorListen)
		if err != nil {
			s.rtsp.Close()
			if s.control != nil {
				s.control.Close()
			}
			return nil, fmt.Errorf("camsim: vendor events: %w", err)
		}
		s.vendorLn = ln
	}
	return s, nil
}

// udpPair binds an even RTP port and the odd RTCP port after it.
func udpPair(listen, rtpAddr string) (rtp, rtcp net.PacketConn, err error) {
	if rtpAddr != "" {
		host, p, err := net.SplitHostPort(rtpAddr)
		if err != nil {
			return nil, nil, err
		}
		port, err := strconv.Atoi(p)
		if err != nil || port%2 != 0 {
			return nil, nil, fmt.Errorf("rtp port %q must be an even number", p)
		}
		return bindPair(host, port)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, nil, err
	}
	for range 50 {
		port := 20000 + 2*rand.IntN(20000)
		if rtp, rtcp, err = bindPair(host, port); err == nil {
			return rtp, rtcp, nil
		}
	}
	return nil, nil, fmt.Errorf("no free port pair: %w", err)
}

func bindPair(host string, port int) (net.PacketConn, net.PacketConn, error) {
	a, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, nil, err
	}
	b, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// Addr is the bound RTSP address, host:port.
func (s *Server) Addr() string { return s.rtsp.NetListener().Addr().String() }

// URL is the RTSP URL of a camera path.
func (s *Server) URL(path string) string { return "rtsp://" + s.Addr() + "/" + path }

// ControlAddr is the bound control address, or "" without one.
func (s *Server) ControlAddr() string {
	if s.control == nil {
		return ""
	}
	return s.control.Addr().String()
}

// Paths lists the camera paths in the order of Options.Cameras.
func (s *Server) Paths() []string {
	out := make([]string, len(s.order))
	for i, c := range s.order {
		out[i] = c.path
	}
	return out
}

// Run paces every camera from one goroutine, runs the schedule and the
// control endpoint, and closes everything when ctx ends. It returns nil
// after ctx ends, or the error that stopped it.
func (s *Server) Run(ctx context.Context) error {
	defer s.rtsp.Close()
	g, ctx := errgroup.WithContext(ctx)
	if s.control != nil {
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := hs.Serve(s.control); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("camsim: control: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			return hs.Close()
		})
	}
	if s.vendorLn != nil {
		vs := &http.Server{Handler: s.vendorHandler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := vs.Serve(s.vendorLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("camsim: vendor events: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			t := time.NewTicker(vendorHeartbeat)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return vs.Close()
				case <-t.C:
					s.sendHeartbeats()
				}
			}
		})
	}
	g.Go(func() error {
		s.pace(ctx)
		return nil
	})
	for _, c := range s.order {
		s.log.Info("camera ready", "camera", c.path, "url", s.URL(c.path), "events", c.events)
	}
	return g.Wait()
}

// streamTime is the stream clock: wall time since start, scaled by Speed.
func (s *Server) streamTime(now time.Time) time.Duration {
	return time.Duration(float64(now.Sub(s.t0)) * s.speed)
}

// pace is the one goroutine that sends every camera's frames: a ticker at
// the frame period, and on each tick every frame that has become due.
func (s *Server) pace(ctx context.Context) {
	period := time.Duration(float64(s.opts.Clip.FrameDuration()) / s.speed)
	period = max(period, time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	type sched struct {
		ev   ScheduledEvent
		next time.Duration
		off  time.Duration // pending inactive of a held event; 0 for none
	}
	var plan []*sched
	for _, ev := range s.opts.Schedule {
		plan = append(plan, &sched{ev: ev, next: ev.After, off: -1})
	}
	nextSync := s.opts.SyncEvery
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			st := s.streamTime(now)
			sync := s.opts.SyncEvery > 0 && st >= nextSync
			if sync {
				nextSync = st + s.opts.SyncEvery
			}
			for _, c := range s.order {
				c.step(st, now, sync)
			}
			for _, p := range plan {
				if p.off >= 0 && st >= p.off {
					p.off = -1
					s.send(p.ev.Camera, p.ev.Type, Inactive, p.ev.Key, now)
				}
				if p.next < 0 || st < p.next {
					continue
				}
				s.send(p.ev.Camera, p.ev.Type, p.ev.State, p.ev.Key, now)
				if p.ev.Hold > 0 && topics[p.ev.Type].property {
					p.off = st + p.ev.Hold
				}
				p.next = -1
				if p.ev.Every > 0 {
					p.next = st + p.ev.Every
				}
			}
		}
	}
}

func (s *Server) send(cam, typ, state, key string, now time.Time) {
	c := s.cams[cam]
	if _, err := c.trigger(typ, state, key, now); err != nil {
		s.log.Warn("scheduled event", "camera", cam, "err", err)
	}
}

// Sent reports a triggered event.
type Sent struct {
	Camera    string
	Topic     string
	Key       string
	Value     bool
	Operation string    // Changed, or "" for a pulse
	At        time.Time // UtcTime of the document; also in SentAtItem
	Delivered bool      // false while the camera is stopped or stalled, or has no metadata track
}

// Trigger raises an event on a camera: typ is one of the event type
// constants, state active, inactive or pulse. The document is written
// before Trigger returns.
func (s *Server) Trigger(camera, typ, state string) (Sent, error) {
	return s.TriggerKey(camera, typ, state, "")
}

// TriggerKey is Trigger with a key: the ObjectId of intrusion and line
// crossing events.
func (s *Server) TriggerKey(camera, typ, state, key string) (Sent, error) {
	c, ok := s.cams[camera]
	if !ok {
		return Sent{}, fmt.Errorf("camera %s: %w", camera, ErrUnknownCamera)
	}
	return c.trigger(typ, state, key, time.Now())
}

// Fault puts a camera into a fault, or out of it with FaultRestart.
func (s *Server) Fault(camera, fault string) error {
	c, ok := s.cams[camera]
	if !ok {
		return fmt.Errorf("camera %s: %w", camera, ErrUnknownCamera)
	}
	return c.fault(fault)
}

// handler answers RTSP requests.
type handler struct{ s *Server }

func (h *handler) camera(path string) *camera {
	return h.s.cams[strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/")]
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c := h.camera(ctx.Path)
	if c == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	st := c.currentStream()
	if st == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c := h.camera(ctx.Path)
	if c == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	st := c.currentStream()
	if st == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c := h.camera(ctx.Path)
	if c == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	c.addReader(ctx.Session)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// preparedClip is a clip whose keyframes all carry SPS and PPS in-band.
type preparedClip struct {
	*Clip
	aus [][][]byte
}

func prepare(c *Clip) *preparedClip {
	p := &preparedClip{Clip: c, aus: make([][][]byte, len(c.Frames))}
	for i, f := range c.Frames {
		au := f.NALUs
		if f.Key {
			var hasSPS, hasPPS bool
			for _, n := range au {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					hasSPS = true
				case h264.NALUTypePPS:
					hasPPS = true
				}
			}
			if !hasSPS || !hasPPS {
				au = append([][]byte{c.SPS, c.PPS}, au...)
			}
		}
		p.aus[i] = au
	}
	return p
}

// camera is one simulated camera. mu guards everything below it; the pacer,
// triggers, faults and RTSP callbacks all take it.
type camera struct {
	s          *Server
	path       string
	events     bool
	vendor     *pulltest.Stream // nil without a vendor stream
	vendorKind string
	log        *slog.Logger
	clips      [2]*preparedClip
	video      *description.Media
	h264       *format.H264
	meta       *description.Media
	desc       *description.Session
	enc        *rtph264.Encoder

	mu        sync.Mutex
	stream    *gortsplib.ServerStream // nil while stopped
	stalled   bool
	clip      int // index in clips
	idx       int // next frame of the clip
	pts       time.Duration
	ts0       uint32
	vseq      uint16
	mseq      uint16
	needIDR   bool
	garbageTo time.Duration
	pending   []pendingReader
	props     map[propKey]bool
	lineObj   int
	rnd       *rand.Rand
}

type pendingReader struct {
	ss    *gortsplib.ServerSession
	seen  bool
	added time.Time
}

type propKey struct{ typ, key string }

func newCamera(s *Server, spec CameraSpec, main, alt *preparedClip) (*camera, error) {
	c := &camera{
		s: s, path: spec.Path, events: spec.Events, vendorKind: spec.Vendor,
		log:   s.log.With("camera", spec.Path),
		clips: [2]*preparedClip{main, alt},
		rnd:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		props: map[propKey]bool{},
	}
	if spec.Vendor != "" {
		user, pass := s.opts.VendorUser, s.opts.VendorPassword
		if user == "" {
			user, pass = "admin", "admin"
		}
		c.vendor = pulltest.NewStream(user, pass)
		if spec.Vendor == VendorDahua {
			c.vendor.Boundary = "myboundary"
		}
	}
	c.ts0 = c.rnd.Uint32()
	c.vseq = uint16(c.rnd.Uint32())
	c.mseq = uint16(c.rnd.Uint32())
	c.h264 = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: main.SPS, PPS: main.PPS}
	c.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{c.h264}}
	c.desc = &description.Session{Title: "Vigil simulated camera " + spec.Path, Medias: []*description.Media{c.video}}
	if spec.Events {
		g := &format.Generic{PayloadTyp: MetadataPayloadType, RTPMa: MetadataRTPMap}
		if err := g.Init(); err != nil {
			return nil, fmt.Errorf("camera %s: metadata format: %w", spec.Path, err)
		}
		c.meta = &description.Media{Type: description.MediaTypeApplication, Formats: []format.Format{g}}
		c.desc.Medias = append(c.desc.Medias, c.meta)
		for t, tp := range topics {
			if tp.property {
				c.props[propKey{t, tp.defKey}] = false
			}
		}
	}
	enc, err := c.h264.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("camera %s: encoder: %w", spec.Path, err)
	}
	c.enc = enc
	return c, nil
}

// openStream creates the gortsplib stream; c.mu held.
func (c *camera) openStream() error {
	st := &gortsplib.ServerStream{Server: c.s.rtsp, Desc: c.desc}
	if err := st.Initialize(); err != nil {
		return fmt.Errorf("camera %s: stream: %w", c.path, err)
	}
	c.stream = st
	return nil
}

func (c *camera) currentStream() *gortsplib.ServerStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stream
}

func (c *camera) addReader(ss *gortsplib.ServerSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, pendingReader{ss: ss, added: time.Now()})
}

// rtpTime converts stream time to the video and metadata RTP clock.
func (c *camera) rtpTime(st time.Duration) uint32 {
	return c.ts0 + uint32(int64(st)*9/100000) // 90 kHz
}

// step sends every frame due at stream time st.
func (c *camera) step(st time.Duration, now time.Time, sync bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A reader gets an IDR and the full state once its PLAY has completed:
	// its session is seen playing on two ticks in a row. Until then the
	// camera holds its frames (and catches up after), so that the first
	// frame the reader gets is the IDR.
	newReader, hold := false, false
	keep := c.pending[:0]
	for _, p := range c.pending {
		switch {
		case now.Sub(p.added) > time.Second: // never got to play
		case p.ss.State() != gortsplib.ServerSessionStatePlay:
			keep = append(keep, p)
			hold = true
		case !p.seen:
			p.seen = true
			keep = append(keep, p)
			hold = true
		default:
			newReader = true
		}
	}
	clear(c.pending[len(keep):])
	c.pending = keep
	if newReader {
		c.needIDR = true
	}
	if hold {
		return
	}
	clip := c.clips[c.clip]
	fd := clip.FrameDuration()
	// A process starved for more than two seconds skips the frames it
	// missed (the RTP clock jumps, as a real camera's would) rather than
	// bursting them.
	if st-c.pts > time.Duration(2*float64(time.Second)*c.s.speed) {
		for c.pts+fd <= st {
			c.pts += fd
			c.idx = (c.idx + 1) % len(clip.Frames)
		}
		c.needIDR = true
	}
	sending := c.stream != nil && !c.stalled
	for c.pts <= st {
		if sending {
			c.sendFrame(clip, now)
		} else {
			c.needIDR = true
		}
		c.pts += fd
		c.idx = (c.idx + 1) % len(clip.Frames)
	}
	if sending && c.events && (newReader || sync) {
		c.sendState(now)
	}
}

// sendFrame sends frame c.idx (or the next keyframe when a decoder must
// resync) at RTP time c.pts; c.mu held.
func (c *camera) sendFrame(clip *preparedClip, now time.Time) {
	ts := c.rtpTime(c.pts)
	if c.pts < c.garbageTo {
		n := 1 + c.rnd.IntN(3)
		for i := range n {
			payload := make([]byte, 100+c.rnd.IntN(1200))
			for j := range payload {
				payload[j] = byte(c.rnd.Uint32())
			}
			c.writeVideo(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: i == n-1}, Payload: payload}, ts, now)
		}
		c.needIDR = true
		return
	}
	if c.needIDR && !clip.Frames[c.idx].Key {
		next := c.idx
		for !clip.Frames[next].Key {
			next = (next + 1) % len(clip.Frames)
		}
		c.idx = next
	}
	c.needIDR = false
	pkts, err := c.enc.Encode(clip.aus[c.idx])
	if err != nil {
		c.log.Error("encode frame", "err", err)
		return
	}
	for _, p := range pkts {
		c.writeVideo(p, ts, now)
	}
}

// writeVideo numbers and sends one video packet; c.mu held. A closed stream
// (a stop racing a frame) is not an error worth reporting.
func (c *camera) writeVideo(p *rtp.Packet, ts uint32, now time.Time) {
	p.SequenceNumber = c.vseq
	c.vseq++
	p.Timestamp = ts
	_ = c.stream.WritePacketRTPWithNTP(c.video, p, now)
}

// writeDoc sends one metadata document at stream time st; c.mu held.
func (c *camera) writeDoc(ns []notification, st time.Duration, now time.Time) {
	var b strings.Builder
	metadataDocument(&b, c.s.URL(c.path), ns)
	for _, p := range packetizeMetadata([]byte(b.String()), c.s.opts.MetadataChunk, &c.mseq, c.rtpTime(st)) {
		_ = c.stream.WritePacketRTPWithNTP(c.meta, p, now)
	}
}

// sendState sends every property as PropertyOperation="Initialized"; c.mu held.
func (c *camera) sendState(now time.Time) {
	ns := make([]notification, 0, len(c.props))
	for k, on := range c.props {
		ns = append(ns, notification{typ: k.typ, key: k.key, on: on, op: "Initialized", utc: now})
	}
	sortNotifications(ns)
	c.writeDoc(ns, c.s.streamTime(now), now)
}

func sortNotifications(ns []notification) {
	slices.SortFunc(ns, func(a, b notification) int {
		if a.typ != b.typ {
			return strings.Compare(a.typ, b.typ)
		}
		return strings.Compare(a.key, b.key)
	})
}

func (c *camera) trigger(typ, state, key string, now time.Time) (Sent, error) {
	on, err := parseState(typ, state)
	if err != nil {
		return Sent{}, fmt.Errorf("camera %s: %w: %v", c.path, ErrBadRequest, err)
	}
	tp := topics[typ]
	if c.vendor != nil {
		c.vendorSend(typ, on, key, now)
		return Sent{Camera: c.path, Topic: c.vendorKind + ":" + typ, Key: key, Value: on, At: now, Delivered: true}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.events {
		return Sent{}, fmt.Errorf("camera %s: %w: no metadata track", c.path, ErrBadRequest)
	}
	n := notification{typ: typ, on: on, utc: now, trigger: true}
	switch {
	case tp.key != "" && key == "":
		n.key = tp.defKey
	case tp.key != "":
		n.key = key
	case !tp.property && key == "":
		c.lineObj++
		n.key = strconv.Itoa(c.lineObj)
	case !tp.property:
		n.key = key
	}
	if tp.property {
		n.op = "Changed"
		c.props[propKey{typ, n.key}] = on
	}
	sent := Sent{Camera: c.path, Topic: tp.topic, Key: n.key, Value: on, Operation: n.op, At: now}
	if c.stream == nil || c.stalled {
		return sent, nil
	}
	c.writeDoc([]notification{n}, c.s.streamTime(now), now)
	sent.Delivered = true
	return sent, nil
}

func (c *camera) fault(f string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f {
	case FaultStop:
		if c.stream != nil {
			c.stream.Close()
			c.stream = nil
			c.pending = nil
		}
	case FaultStall:
		c.stalled = true
	case FaultRestart:
		c.stalled = false
		c.garbageTo = 0
		c.needIDR = true
		if c.stream == nil {
			if err := c.openStream(); err != nil {
				return err
			}
		}
	case FaultSPS:
		c.clip = 1 - c.clip
		clip := c.clips[c.clip]
		c.idx = 0
		c.needIDR = true
		if c.stream != nil {
			// New DESCRIBEs announce the new parameter sets; current readers
			// get them in-band with the next IDR.
			c.h264.SPS, c.h264.PPS = clip.SPS, clip.PPS
			c.stream.ReloadDesc()
		} else {
			c.h264.SPS, c.h264.PPS = clip.SPS, clip.PPS
		}
	case FaultGarbage:
		c.garbageTo = c.pts + c.s.opts.GarbageFor
	default:
		return fmt.Errorf("camera %s: %w: unknown fault %q (want stop, stall, restart, sps or garbage)", c.path, ErrBadRequest, f)
	}
	c.log.Info("fault", "fault", f)
	return nil
}
