package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"vigil/internal/media"
)

// pull runs one RTSP session of the camera: DESCRIBE, SETUP, PLAY, then
// reads until the session fails, stalls or ctx ends. It always returns a
// non-nil error free of credentials.
func (c *camera) pull(ctx context.Context) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.mu.Lock()
	c.cancelSession = cancel
	c.mu.Unlock()

	u, err := pullURL(c.spec)
	if err != nil {
		return fmt.Errorf("camera %s: url: %w", c.spec.ID, redactError(err, c.spec))
	}
	first := c.newFirstBytes()
	dialer := &net.Dialer{}
	client := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: c.s.opts.ReadTimeout,
		// What the server sent first tells an administrator what answered
		// when it was not RTSP ("HTTP/1.1 400 Bad Request").
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil || u.Scheme != "rtsp" {
				return conn, err // over TLS the first bytes are a handshake
			}
			return &recordingConn{Conn: conn, first: first}, nil
		},
		// "auto" must give up on UDP before the stall detector gives up on
		// the session.
		InitialUDPReadTimeout: min(3*time.Second, c.s.opts.StallAfter/2),
		OnPacketsLost:         c.onLost,
		OnDecodeError:         c.onDecodeError,
		OnTransportSwitch: func(err error) {
			c.log.Debug("transport switched", "why", redact(err.Error(), c.spec))
		},
	}
	switch c.spec.Transport {
	case TransportTCP:
		client.Protocol = ptr(gortsplib.ProtocolTCP)
	case TransportUDP:
		client.Protocol = ptr(gortsplib.ProtocolUDP)
	}
	if err := client.Start(); err != nil {
		return c.wrap("start", err)
	}
	// Close the client when the session is cancelled (stall, stop).
	over := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-sctx.Done():
			client.Close()
		case <-over:
		}
	}()
	defer func() {
		close(over)
		<-closed
		client.Close()
	}()

	err = c.session(client, (*base.URL)(u))
	if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil {
		return c.wrap("read", cause)
	}
	return err
}

func ptr[T any](v T) *T { return &v }

func (c *camera) wrap(op string, err error) error {
	return fmt.Errorf("camera %s: %s: %w", c.spec.ID, op, redactError(err, c.spec))
}

func (c *camera) session(client *gortsplib.Client, u *base.URL) error {
	desc, _, err := client.Describe(u)
	if err != nil {
		return c.wrap("describe", err)
	}
	p := &puller{cam: c, client: client, maxMeta: c.s.opts.MaxMetadataSize}
	if err := p.pick(desc); err != nil {
		return c.wrap("describe", err)
	}
	for _, m := range p.medias() {
		if _, err := client.Setup(desc.BaseURL, m, 0, 0); err != nil {
			return c.wrap("setup", err)
		}
	}
	p.register()
	if _, err := client.Play(nil); err != nil {
		return c.wrap("play", err)
	}
	now := c.s.opts.Now()
	c.mu.Lock()
	c.playing = now
	c.mu.Unlock()
	if t := client.Transport(); t != nil && t.Session != nil {
		c.log.Debug("playing", "transport", t.Session.Protocol)
	}
	return c.wrap("read", client.Wait())
}

// puller depacketizes the tracks of one session. Callbacks of different
// tracks may run on different goroutines (UDP); mu serializes them.
type puller struct {
	cam     *camera
	client  *gortsplib.Client
	maxMeta int

	mu sync.Mutex

	videoMedia *description.Media
	videoFmt   format.Format
	codec      media.Codec
	dec264     *rtph264.Decoder
	dec265     *rtph265.Decoder
	dts264     *h264.DTSExtractor
	dts265     *h265.DTSExtractor
	vps        []byte
	sps, pps   []byte
	width      int
	height     int
	stream     *media.VideoTrack // announced parameters; nil before the first keyframe
	base       time.Duration     // DTS of the stream's first unit
	// videoPTS and videoNTP time a video packet: the client's PacketPTS
	// and PacketNTP for the video media, set by register (benchmarks set
	// their own).
	videoPTS func(*rtp.Packet) (int64, bool)
	videoNTP func(*rtp.Packet) (time.Time, bool)

	audioMedia *description.Media
	audioFmt   format.Format
	audioTrack *media.AudioTrack
	decAAC     *rtpmpeg4audio.Decoder
	decLPCM    *rtplpcm.Decoder

	metaMedia *description.Media
	metaFmt   format.Format
	meta      MetadataDepacketizer
	metaLost  int
}

// pick chooses the tracks to set up: the first H.264 or H.265 video, the
// first AAC or G.711 audio and, when enabled, the ONVIF metadata track.
func (p *puller) pick(desc *description.Session) error {
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.H264:
				if p.videoMedia == nil {
					d, err := f.CreateDecoder()
					if err != nil {
						continue
					}
					p.videoMedia, p.videoFmt, p.codec, p.dec264 = m, f, media.H264, d
					p.sps, p.pps = f.SafeParams()
					p.dts264 = h264.NewDTSExtractor()
				}
			case *format.H265:
				if p.videoMedia == nil {
					d, err := f.CreateDecoder()
					if err != nil {
						continue
					}
					p.videoMedia, p.videoFmt, p.codec, p.dec265 = m, f, media.H265, d
					p.vps, p.sps, p.pps = f.SafeParams()
					p.dts265 = h265.NewDTSExtractor()
				}
			case *format.MPEG4Audio:
				if p.audioMedia == nil && f.Config != nil {
					d, err := f.CreateDecoder()
					if err != nil {
						continue
					}
					cfg, _ := f.Config.Marshal()
					p.audioMedia, p.audioFmt, p.decAAC = m, f, d
					p.audioTrack = &media.AudioTrack{Codec: media.AAC, ClockRate: f.ClockRate(),
						ChannelCount: f.Config.ChannelCount, Config: cfg}
				}
			case *format.G711:
				if p.audioMedia == nil {
					d, err := f.CreateDecoder()
					if err != nil {
						continue
					}
					p.audioMedia, p.audioFmt, p.decLPCM = m, f, d
					p.audioTrack = &media.AudioTrack{Codec: media.G711, ClockRate: f.ClockRate(),
						ChannelCount: f.ChannelCount, MULaw: f.MULaw}
				}
			case *format.Generic:
				if p.metaMedia == nil && p.cam.spec.ONVIFMetadata &&
					strings.HasPrefix(strings.ToLower(f.RTPMap()), "vnd.onvif.metadata") {
					p.metaMedia, p.metaFmt = m, f
					p.meta.MaxSize = p.maxMeta
				}
			}
		}
	}
	if p.videoMedia == nil {
		var found []string
		for _, m := range desc.Medias {
			for _, f := range m.Formats {
				found = append(found, f.Codec())
			}
		}
		if len(found) == 0 {
			return fmt.Errorf("%w (the stream has no tracks)", errNoVideo)
		}
		return fmt.Errorf("%w (the stream has %s)", errNoVideo, strings.Join(found, ", "))
	}
	p.parseSPS()
	return nil
}

func (p *puller) medias() []*description.Media {
	out := []*description.Media{p.videoMedia}
	if p.audioMedia != nil {
		out = append(out, p.audioMedia)
	}
	if p.metaMedia != nil {
		out = append(out, p.metaMedia)
	}
	return out
}

func (p *puller) register() {
	p.videoPTS = func(pkt *rtp.Packet) (int64, bool) { return p.client.PacketPTS(p.videoMedia, pkt) }
	p.videoNTP = func(pkt *rtp.Packet) (time.Time, bool) { return p.client.PacketNTP(p.videoMedia, pkt) }
	p.client.OnPacketRTP(p.videoMedia, p.videoFmt, p.onVideo)
	if p.audioMedia != nil {
		p.client.OnPacketRTP(p.audioMedia, p.audioFmt, p.onAudio)
	}
	if p.metaMedia != nil {
		p.client.OnPacketRTP(p.metaMedia, p.metaFmt, p.onMetadata)
	}
}

func (p *puller) parseSPS() {
	if p.sps == nil {
		return
	}
	switch p.codec {
	case media.H264:
		var s h264.SPS
		if s.Unmarshal(p.sps) == nil {
			p.width, p.height = s.Width(), s.Height()
		}
	case media.H265:
		var s h265.SPS
		if s.Unmarshal(p.sps) == nil {
			p.width, p.height = s.Width(), s.Height()
		}
	}
}

func toDuration(v int64, clockRate int) time.Duration {
	return time.Duration(v) * time.Second / time.Duration(clockRate)
}

func (p *puller) wall(m *description.Media, pkt *rtp.Packet, now time.Time) time.Time {
	if t, ok := p.client.PacketNTP(m, pkt); ok {
		return t
	}
	return now
}

// updateParams keeps the in-band parameter sets and reports whether they
// differ from the announced ones.
func (p *puller) updateParams(au [][]byte) bool {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch p.codec {
		case media.H264:
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if !bytes.Equal(n, p.sps) {
					p.sps = bytes.Clone(n)
					p.parseSPS()
				}
			case h264.NALUTypePPS:
				if !bytes.Equal(n, p.pps) {
					p.pps = bytes.Clone(n)
				}
			}
		case media.H265:
			if len(n) < 2 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				if !bytes.Equal(n, p.vps) {
					p.vps = bytes.Clone(n)
				}
			case h265.NALUType_SPS_NUT:
				if !bytes.Equal(n, p.sps) {
					p.sps = bytes.Clone(n)
					p.parseSPS()
				}
			case h265.NALUType_PPS_NUT:
				if !bytes.Equal(n, p.pps) {
					p.pps = bytes.Clone(n)
				}
			}
		}
	}
	s := p.stream
	return s == nil || !bytes.Equal(s.SPS, p.sps) || !bytes.Equal(s.PPS, p.pps) || !bytes.Equal(s.VPS, p.vps)
}

func (p *puller) onVideo(pkt *rtp.Packet) {
	now := p.cam.s.opts.Now()
	p.cam.mBytes.Add(float64(len(pkt.Payload)))

	p.cam.alive(now)

	p.mu.Lock()
	defer p.mu.Unlock()
	pts, ok := p.videoPTS(pkt)
	if !ok {
		return
	}
	var au [][]byte
	var err error
	var key bool
	if p.codec == media.H264 {
		au, err = p.dec264.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				p.cam.onDecodeError(err)
			}
			return
		}
		key = h264.IsRandomAccess(au)
	} else {
		au, err = p.dec265.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph265.ErrMorePacketsNeeded) && !errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				p.cam.onDecodeError(err)
			}
			return
		}
		key = h265.IsRandomAccess(au)
	}
	// The camera is alive whether or not a keyframe came yet.
	size := 0
	for _, n := range au {
		size += len(n)
	}
	p.cam.mFrames.Inc()
	p.cam.frame(now, size)

	changed := p.updateParams(au)
	clock := p.videoFmt.ClockRate()
	complete := p.sps != nil && p.pps != nil && (p.codec == media.H264 || p.vps != nil)
	start := changed && key && complete
	if p.stream == nil && !start {
		return // wait for a keyframe with its parameter sets
	}
	// A change seen on a non-key unit is announced at the next keyframe.
	if start {
		if p.codec == media.H264 {
			p.dts264 = h264.NewDTSExtractor()
		} else {
			p.dts265 = h265.NewDTSExtractor()
		}
	}

	var dts int64
	if p.codec == media.H264 {
		dts, err = p.dts264.Extract(au, pts)
	} else {
		dts, err = p.dts265.Extract(au, pts)
	}
	if err != nil {
		p.cam.onDecodeError(fmt.Errorf("dts: %w", err))
		dts = pts
	}
	wall := now
	if t, ok := p.videoNTP(pkt); ok {
		wall = t
	}
	if start {
		p.announce(toDuration(dts, clock), clock, wall)
	}

	// One copy: the decoder may alias packet buffers gortsplib reuses.
	// bytes.Join allocates without zeroing what it then overwrites, and
	// the unit carries its NAL unit headers: one allocation for the data,
	// one for the rest.
	buf := bytes.Join(au, nil)
	var unit *media.AccessUnit
	var payload [][]byte
	if len(au) <= len(videoUnit{}.nalus) {
		vu := &videoUnit{}
		unit, payload = &vu.unit, vu.nalus[:len(au)]
	} else {
		unit, payload = &media.AccessUnit{}, make([][]byte, len(au))
	}
	off := 0
	for i, n := range au {
		payload[i] = buf[off : off+len(n) : off+len(n)]
		off += len(n)
	}
	*unit = media.AccessUnit{
		Kind:     media.Video,
		PTS:      toDuration(pts, clock) - p.base,
		DTS:      toDuration(dts, clock) - p.base,
		Key:      key,
		Payload:  payload,
		Wall:     wall,
		Received: now,
	}
	p.cam.feed.publish(unit)
}

// videoUnit is a video access unit with room for the NAL unit headers of
// a typical frame (AUD, SPS, PPS, SEI, slices) in the same allocation.
type videoUnit struct {
	unit  media.AccessUnit
	nalus [6][]byte
}

// announce starts a new media.Stream at a keyframe with the current
// parameter sets: the first of the session or after an SPS/PPS change.
func (p *puller) announce(base time.Duration, clock int, wall time.Time) {
	if p.stream != nil {
		p.cam.log.Info("parameter sets changed", "width", p.width, "height", p.height)
	}
	p.stream = &media.VideoTrack{Codec: p.codec, ClockRate: clock,
		VPS: bytes.Clone(p.vps), SPS: bytes.Clone(p.sps), PPS: bytes.Clone(p.pps),
		Width: p.width, Height: p.height}
	p.base = base
	v := *p.stream
	var a *media.AudioTrack
	if p.audioTrack != nil {
		at := *p.audioTrack
		a = &at
	}
	p.cam.mu.Lock()
	p.cam.codec, p.cam.width, p.cam.height = string(p.codec), p.width, p.height
	p.cam.mu.Unlock()
	p.cam.feed.announce(media.Stream{Camera: p.cam.spec.ID, Video: &v, Audio: a, Started: wall})
}

func (p *puller) onAudio(pkt *rtp.Packet) {
	now := p.cam.s.opts.Now()
	p.cam.mBytes.Add(float64(len(pkt.Payload)))

	p.mu.Lock()
	defer p.mu.Unlock()
	pts, ok := p.client.PacketPTS(p.audioMedia, pkt)
	if !ok {
		return
	}
	var frames [][]byte
	if p.decAAC != nil {
		aus, err := p.decAAC.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				p.cam.onDecodeError(err)
			}
			return
		}
		frames = aus
	} else {
		b, err := p.decLPCM.Decode(pkt)
		if err != nil {
			p.cam.onDecodeError(err)
			return
		}
		frames = [][]byte{b}
	}
	if p.stream == nil {
		return
	}
	size := 0
	payload := make([][]byte, len(frames))
	for i, f := range frames {
		payload[i] = bytes.Clone(f)
		size += len(f)
	}
	t := toDuration(pts, p.audioFmt.ClockRate()) - p.base
	p.cam.audio(now, size)
	p.cam.feed.publish(&media.AccessUnit{Kind: media.Audio, PTS: t, DTS: t, Payload: payload,
		Wall: p.wall(p.audioMedia, pkt, now), Received: now})
}

func (p *puller) onMetadata(pkt *rtp.Packet) {
	now := p.cam.s.opts.Now()
	p.cam.mBytes.Add(float64(len(pkt.Payload)))
	p.mu.Lock()
	doc := p.meta.Push(pkt)
	lost := p.meta.Gaps + p.meta.Oversize
	newLost := lost - p.metaLost
	p.metaLost = lost
	at := p.wall(p.metaMedia, pkt, now)
	p.mu.Unlock()
	if newLost > 0 {
		p.cam.s.m.metaDropped.WithLabelValues(p.cam.spec.ID).Add(float64(newLost))
	}
	if doc == nil {
		return
	}
	if n := p.cam.s.publishMetadata(p.cam.spec.ID, doc, at); n > 0 {
		p.cam.s.m.metaDropped.WithLabelValues(p.cam.spec.ID).Add(float64(n))
	}
}
