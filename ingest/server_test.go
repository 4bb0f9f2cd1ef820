package ingest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"vigil/internal/camsim"
)

// streamClip is a looped elementary stream for the test server.
type streamClip struct {
	h265          bool
	vps, sps, pps []byte
	frames        []camsim.Frame
	step          time.Duration
}

// h264Clip is camsim's committed fixture, loaded once.
var h264Clip = sync.OnceValues(func() (*streamClip, error) {
	c, err := camsim.LoadClip("../internal/camsim/testdata/hall.h264", 25)
	if err != nil {
		return nil, err
	}
	return &streamClip{sps: c.SPS, pps: c.PPS, frames: c.Frames, step: c.FrameDuration()}, nil
})

// h265Clip is testdata/small.h265 (see testdata/README.md), loaded once.
var h265Clip = sync.OnceValues(func() (*streamClip, error) {
	buf, err := os.ReadFile("testdata/small.h265")
	if err != nil {
		return nil, err
	}
	c := &streamClip{h265: true, step: 40 * time.Millisecond}
	var cur camsim.Frame
	flush := func() {
		if len(cur.NALUs) > 0 {
			c.frames = append(c.frames, cur)
		}
		cur = camsim.Frame{}
	}
	for _, n := range camsim.SplitAnnexB(buf) {
		if len(n) < 2 {
			continue
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch typ {
		case h265.NALUType_AUD_NUT:
			flush()
			continue
		case h265.NALUType_VPS_NUT:
			if c.vps == nil {
				c.vps = n
			}
		case h265.NALUType_SPS_NUT:
			if c.sps == nil {
				c.sps = n
			}
		case h265.NALUType_PPS_NUT:
			if c.pps == nil {
				c.pps = n
			}
		}
		if typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT {
			cur.Key = true
		}
		cur.NALUs = append(cur.NALUs, n)
	}
	flush()
	if c.sps == nil || len(c.frames) == 0 || !c.frames[0].Key {
		return nil, errors.New("small.h265: no SPS or no leading keyframe")
	}
	return c, nil
})

// cameraServer is a minimal RTSP camera for tests: it loops the fixture in
// real time over one gortsplib server, with optional auth, UDP, G.711 audio,
// ONVIF metadata and faults (stall, SPS change, garbage, stop/start).
type cameraServer struct {
	t           testing.TB
	clip        *streamClip
	h265        bool
	user        string
	pass        string
	authMethods []auth.VerifyMethod
	udp         bool
	audio       bool
	metadata    bool

	rtspPort, rtpPort int

	mu     sync.RWMutex
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	desc   *description.Session
	stop   chan struct{}
	done   chan struct{}

	paused    atomic.Bool
	changeSPS atomic.Bool
	garbage   atomic.Int32
	sent      atomic.Int64 // video frames written
}

type serverOption func(*cameraServer)

func withAuth(user, pass string, methods ...auth.VerifyMethod) serverOption {
	return func(c *cameraServer) { c.user, c.pass, c.authMethods = user, pass, methods }
}
func withUDP() serverOption      { return func(c *cameraServer) { c.udp = true } }
func withAudio() serverOption    { return func(c *cameraServer) { c.audio = true } }
func withMetadata() serverOption { return func(c *cameraServer) { c.metadata = true } }
func withH265() serverOption     { return func(c *cameraServer) { c.h265 = true } }

func startCameraServer(t testing.TB, opts ...serverOption) *cameraServer {
	t.Helper()
	c := &cameraServer{t: t}
	for _, o := range opts {
		o(c)
	}
	var err error
	if c.h265 {
		c.clip, err = h265Clip()
	} else {
		c.clip, err = h264Clip()
	}
	if err != nil {
		t.Fatal(err)
	}
	c.rtspPort = freeTCPPort(t)
	if c.udp {
		c.rtpPort = freeUDPPair(t)
	}
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func freeTCPPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPair(t testing.TB) int {
	for range 50 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p > 65000 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+1))
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// URL is the camera's URL without credentials.
func (c *cameraServer) URL() string {
	return "rtsp://127.0.0.1:" + strconv.Itoa(c.rtspPort) + "/cam"
}

func (c *cameraServer) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return
	}
	var video format.Format = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.clip.sps, PPS: c.clip.pps}
	if c.clip.h265 {
		video = &format.H265{PayloadTyp: 96, VPS: c.clip.vps, SPS: c.clip.sps, PPS: c.clip.pps}
	}
	c.desc = &description.Session{Medias: []*description.Media{{
		Type:    description.MediaTypeVideo,
		Formats: []format.Format{video},
	}}}
	if c.audio {
		c.desc.Medias = append(c.desc.Medias, &description.Media{
			Type:    description.MediaTypeAudio,
			Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}},
		})
	}
	if c.metadata {
		c.desc.Medias = append(c.desc.Medias, &description.Media{
			Type:    description.MediaTypeApplication,
			Formats: []format.Format{&format.Generic{PayloadTyp: 107, RTPMa: "vnd.onvif.metadata/90000", ClockRat: 90000}},
		})
	}
	srv := &gortsplib.Server{Handler: c, RTSPAddress: "127.0.0.1:" + strconv.Itoa(c.rtspPort), AuthMethods: c.authMethods}
	if c.udp {
		srv.UDPRTPAddress = "127.0.0.1:" + strconv.Itoa(c.rtpPort)
		srv.UDPRTCPAddress = "127.0.0.1:" + strconv.Itoa(c.rtpPort+1)
	}
	var err error
	for range 50 { // the port may linger for a moment after Stop
		if err = srv.Start(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("camera server: %v", err)
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: c.desc}
	if err := st.Initialize(); err != nil {
		srv.Close()
		c.t.Fatal(err)
	}
	c.srv, c.stream = srv, st
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.feed(st, c.desc, c.stop, c.done)
}

// Stop closes the server and every session; Start brings it back.
func (c *cameraServer) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return
	}
	close(c.stop)
	<-c.done
	c.stream.Close()
	c.srv.Close()
	c.srv, c.stream = nil, nil
}

func (c *cameraServer) auth(conn *gortsplib.ServerConn, req *base.Request) (*base.Response, error) {
	if c.user == "" || conn.VerifyCredentials(req, c.user, c.pass) {
		return nil, nil
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

func (c *cameraServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := c.auth(ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *cameraServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := c.auth(ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	if !c.udp && ctx.Transport.Protocol != gortsplib.ProtocolTCP {
		return &base.Response{StatusCode: base.StatusUnsupportedTransport}, nil, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *cameraServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// feed writes the clip in real time until stop is closed.
func (c *cameraServer) feed(st *gortsplib.ServerStream, desc *description.Session, stop, done chan struct{}) {
	defer close(done)
	video := desc.Medias[0]
	var encode func([][]byte) ([]*rtp.Packet, error)
	switch f := video.Formats[0].(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			panic(err)
		}
		encode = enc.Encode
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			panic(err)
		}
		encode = enc.Encode
	}
	var audio, meta *description.Media
	for _, m := range desc.Medias[1:] {
		switch m.Type {
		case description.MediaTypeAudio:
			audio = m
		case description.MediaTypeApplication:
			meta = m
		}
	}
	// A second SPS that differs from the fixture's only in level_idc.
	altSPS := bytes.Clone(c.clip.sps)
	altSPS[3]++
	useAlt := false

	step := c.clip.step
	tick := time.NewTicker(step)
	defer tick.Stop()
	ts := rand.Uint32()
	var audioSeq, metaSeq uint16
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if n := c.garbage.Swap(0); n > 0 {
			for range n {
				junk := make([]byte, 1+rand.IntN(200))
				for j := range junk {
					junk[j] = byte(rand.Uint32())
				}
				_ = st.WritePacketRTP(video, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
					SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32(), Marker: rand.IntN(2) == 0}, Payload: junk})
			}
		}
		fr := c.clip.frames[i%len(c.clip.frames)]
		ts += uint32(90000 * step / time.Second)
		if c.paused.Load() {
			continue
		}
		if fr.Key && c.changeSPS.Load() {
			useAlt = true
		}
		nalus := fr.NALUs
		if useAlt && !c.clip.h265 {
			nalus = make([][]byte, len(fr.NALUs))
			for j, n := range fr.NALUs {
				if n[0]&0x1f == 7 {
					n = altSPS
				}
				nalus[j] = n
			}
		}
		pkts, err := encode(nalus)
		if err != nil {
			panic(err)
		}
		now := time.Now()
		for _, p := range pkts {
			p.Timestamp = ts
			_ = st.WritePacketRTPWithNTP(video, p, now)
		}
		c.sent.Add(1)
		if audio != nil {
			audioSeq++
			_ = st.WritePacketRTPWithNTP(audio, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8,
				SequenceNumber: audioSeq, Timestamp: uint32(i * 320), SSRC: 2}, Payload: make([]byte, 320)}, now)
		}
		if meta != nil && i%5 == 0 {
			doc := []byte(`<?xml version="1.0"?><tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:Event>` +
				strconv.Itoa(i) + `</tt:Event></tt:MetadataStream>`)
			half := len(doc) / 2
			for k, part := range [][]byte{doc[:half], doc[half:]} {
				metaSeq++
				_ = st.WritePacketRTPWithNTP(meta, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 107,
					SequenceNumber: metaSeq, Timestamp: ts, Marker: k == 1, SSRC: 3}, Payload: part}, now)
			}
		}
	}
}
