// Package whepclient is a small WHEP (RFC 9725) client built on pion, for
// Vigil's tests and benchmarks: it offers to receive H.264 (and G.711
// audio), counts what arrives and ends the session with DELETE. It is not
// used by the service itself.
package whepclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Options configure Dial.
type Options struct {
	// Token is sent as a bearer token.
	Token string
	// Audio also offers to receive G.711 audio.
	Audio bool
	// VideoCodec is the mime type of the one video codec offered; default
	// H.264. Tests offer VP8 to see an offer refused.
	VideoCodec string
	// HTTP is the client for the offer and the DELETE; default
	// http.DefaultClient.
	HTTP *http.Client
	// OnVideo, if set, is called for every video RTP packet as it arrives,
	// from pion's reading goroutine.
	OnVideo func(p *rtp.Packet, at time.Time)
}

// Stats count what a session received.
type Stats struct {
	VideoPackets int
	Frames       int // video RTP packets with the marker bit
	KeyFrames    int
	Lost         int // gaps in the video sequence numbers
	AudioPackets int
	// StartedAtKeyframe is true when the first video packet starts a
	// keyframe (its SPS, or an IDR slice).
	StartedAtKeyframe bool
}

// HTTPError is an offer the server refused.
type HTTPError struct {
	Status int
	Code   string
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("whep: %d: %s", e.Status, e.Body) }

// Session is one WHEP session.
type Session struct {
	pc       *webrtc.PeerConnection
	mux      ice.UDPMux
	http     *http.Client
	token    string
	location string
	onVideo  func(*rtp.Packet, time.Time)

	mu        sync.Mutex
	stats     Stats
	lastSeq   uint16
	seen      bool
	firstKey  chan struct{}
	keyOnce   sync.Once
	readers   sync.WaitGroup
	connected chan struct{}
	connOnce  sync.Once
}

// Dial posts an offer to endpoint (…/cameras/{id}/whep) and connects. A
// refused offer returns an *HTTPError.
func Dial(ctx context.Context, endpoint string, opts Options) (*Session, error) {
	if opts.HTTP == nil {
		opts.HTTP = http.DefaultClient
	}
	if opts.VideoCodec == "" {
		opts.VideoCodec = webrtc.MimeTypeH264
	}
	me := &webrtc.MediaEngine{}
	video := webrtc.RTPCodecCapability{MimeType: opts.VideoCodec, ClockRate: 90000}
	if opts.VideoCodec == webrtc.MimeTypeH264 {
		video.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: video, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if opts.Audio {
		for _, c := range []struct {
			mime string
			pt   webrtc.PayloadType
		}{{webrtc.MimeTypePCMU, 0}, {webrtc.MimeTypePCMA, 8}} {
			if err := me.RegisterCodec(webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: c.mime, ClockRate: 8000, Channels: 1}, PayloadType: c.pt,
			}, webrtc.RTPCodecTypeAudio); err != nil {
				return nil, err
			}
		}
	}
	// One socket with a large receive buffer: a 1080p keyframe arrives as
	// a burst of 100 packets or more, which overflows the default 208 KiB
	// when the reader is not scheduled at once (counted in RcvbufErrors).
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20) // capped by net.core.rmem_max
	udpMux := webrtc.NewICEUDPMux(nil, conn)
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(udpMux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		udpMux.Close()
		return nil, err
	}
	s := &Session{pc: pc, mux: udpMux, http: opts.HTTP, token: opts.Token, onVideo: opts.OnVideo,
		firstKey: make(chan struct{}), connected: make(chan struct{})}
	fail := func(err error) (*Session, error) {
		_ = pc.Close()
		s.readers.Wait()
		udpMux.Close()
		return nil, err
	}
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
		return fail(err)
	}
	if opts.Audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			return fail(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			s.read(tr)
		}()
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			s.connOnce.Do(func() { close(s.connected) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	answer, location, err := s.post(ctx, endpoint, pc.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	s.location = location
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		_ = s.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// Post sends body as an offer to endpoint, as Dial does, and returns the
// response; for tests of malformed offers.
func Post(ctx context.Context, client *http.Client, endpoint, token, body string) (status int, respBody string, location string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header.Get("Location"), err
}

func (s *Session) post(ctx context.Context, endpoint, offer string) (answer, location string, err error) {
	status, body, loc, err := Post(ctx, s.http, endpoint, s.token, offer)
	if err != nil {
		return "", "", err
	}
	if status != http.StatusCreated {
		return "", "", &HTTPError{Status: status, Body: body}
	}
	if loc == "" {
		return "", "", errors.New("whep: 201 without Location")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", "", err
	}
	l, err := u.Parse(loc)
	if err != nil {
		return "", "", fmt.Errorf("whep: Location %q: %w", loc, err)
	}
	return body, l.String(), nil
}

func (s *Session) read(tr *webrtc.TrackRemote) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		if !video {
			s.mu.Lock()
			s.stats.AudioPackets++
			s.mu.Unlock()
			continue
		}
		if s.onVideo != nil {
			s.onVideo(p, now)
		}
		key := startsKeyframe(p.Payload)
		s.mu.Lock()
		st := &s.stats
		if !s.seen {
			s.seen = true
			st.StartedAtKeyframe = key
		} else if gap := p.SequenceNumber - s.lastSeq - 1; gap != 0 && gap < 0x8000 {
			st.Lost += int(gap)
		}
		s.lastSeq = p.SequenceNumber
		st.VideoPackets++
		if key {
			st.KeyFrames++
			s.keyOnce.Do(func() { close(s.firstKey) })
		}
		if p.Marker {
			st.Frames++
		}
		s.mu.Unlock()
	}
}

// startsKeyframe reports whether an H.264 RTP payload starts a keyframe:
// an SPS (alone or first in a STAP-A) or the first fragment of an IDR.
func startsKeyframe(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	switch t := b[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit size, then the first NAL unit
		return len(b) > 3 && (b[3]&0x1f == 7 || b[3]&0x1f == 5)
	case 28: // FU-A
		return b[1]&0x80 != 0 && b[1]&0x1f == 5
	}
	return false
}

// Stats returns what arrived so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// FirstKeyframe is closed when the first keyframe starts arriving.
func (s *Session) FirstKeyframe() <-chan struct{} { return s.firstKey }

// Connected is closed once ICE and DTLS are up.
func (s *Session) Connected() <-chan struct{} { return s.connected }

// Location is the session's URL.
func (s *Session) Location() string { return s.location }

// Close ends the session with DELETE (its status is returned as an error
// unless 2xx) and closes the peer connection.
func (s *Session) Close(ctx context.Context) error {
	var err error
	if s.location != "" {
		err = s.Delete(ctx)
	}
	if cerr := s.pc.Close(); err == nil {
		err = cerr
	}
	s.readers.Wait()
	s.mux.Close()
	return err
}

// Delete sends DELETE to the session's Location without closing the peer
// connection.
func (s *Session) Delete(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
	if err != nil {
		return err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Status: resp.StatusCode}
	}
	return nil
}

// Abandon closes the peer connection without telling the server, as a
// viewer whose browser vanished.
func (s *Session) Abandon() error {
	err := s.pc.Close()
	s.readers.Wait()
	s.mux.Close()
	return err
}
