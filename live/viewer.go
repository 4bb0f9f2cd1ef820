package live

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"vigil/internal/media"
)

// rtpMTU is the largest RTP payload sent: fits a 1500-byte path with the
// RTP, SRTP, UDP and IP headers and a TURN relay's overhead.
const rtpMTU = 1200

// viewerQueue is how many items may wait for a viewer before it drops
// units and resynchronizes at the next keyframe: about 10 s of 25 fps
// video with audio.
const viewerQueue = 512

// gopPace is the rate in bytes per second at which a new viewer's
// starting GOP is sent.
const gopPace = 12_500_000

// item is one thing a viewer is handed: a new stream, a break in the
// media, or an access unit with the time the feed received it.
type item struct {
	stream *media.Stream
	brk    bool
	u      *unit
	in     time.Time
}

// viewer is one WHEP session: a peer connection following one feed.
type viewer struct {
	id     string
	camera string
	pc     *webrtc.PeerConnection
	video  *webrtc.TrackLocalStaticRTP
	audio  *webrtc.TrackLocalStaticRTP // nil without G.711 in both camera and offer
	mulaw  bool                        // the audio track's law
	queue  chan item
	quit   chan struct{}
	done   chan struct{} // closed when run returns
	once   sync.Once
	m      *metrics
	out    *sendBatch // the socket pion writes to

	// Guarded by Feed.mu.
	lost bool
	// direct: caught up with the feed, which now writes to the viewer
	// itself, on its own goroutine, instead of queueing (see run).
	direct bool

	// Owned by run, then by the feed once direct.
	stream    *media.Stream
	waitKey   bool
	vseq      uint16
	aseq      uint16
	off       time.Duration // added to PTS so RTP time runs on across streams
	last      time.Duration // PTS+off of the last video unit sent
	started   bool
	firstSent func() // called once, when the first keyframe is written
}

// offer queues it without blocking; a full queue drops it and the viewer
// waits for the next keyframe. Called with Feed.mu held.
func (v *viewer) offer(it item) {
	if v.lost {
		it.brk = true
	}
	select {
	case v.queue <- it:
		v.lost = false
	default:
		if it.u != nil {
			v.m.dropped.Inc()
		}
		v.lost = true
	}
}

func (v *viewer) stop() { v.once.Do(func() { close(v.quit) }) }

// run writes the starting GOP, then what the feed queues meanwhile. Once
// the queue is empty the viewer is caught up and turns direct: from then
// on the feed's goroutine writes each unit to all its direct viewers in
// turn, within one hold of the socket, so a frame reaches every viewer of
// a camera in one sendmmsg and no goroutine is woken per viewer and frame.
// pion's writes do not block (the socket is UDP and non-blocking), so one
// viewer cannot hold up another. run then waits for stop.
func (v *viewer) run(f *Feed, stream *media.Stream, gop []*unit) {
	defer close(v.done)
	if stream != nil {
		v.write(item{stream: stream})
		for i := range gop {
			v.write(item{u: gop[i]})
			// Pace the GOP at about 100 Mbit/s: a 1080p GOP sent at once
			// overflows a receiver's socket buffer, and what it drops is
			// the start of the picture.
			size := 0
			for _, p := range gop[i].au.Payload {
				size += len(p)
			}
			t := time.NewTimer(time.Duration(size) * time.Second / gopPace)
			select {
			case <-v.quit:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	for {
		if len(v.queue) == 0 && f.goDirect(v) {
			<-v.quit
			return
		}
		select {
		case <-v.quit:
			return
		case it := <-v.queue:
			v.write(it)
		}
	}
}

// write handles one item within a hold of the socket: the packets of a
// frame leave together.
func (v *viewer) write(it item) {
	v.out.hold()
	v.handle(it)
	v.out.release()
}

func (v *viewer) handle(it item) {
	if it.brk {
		v.waitKey = true
	}
	if it.stream != nil {
		v.stream = it.stream
		v.waitKey = true
	}
	if it.u == nil || v.stream == nil {
		return
	}
	au := &it.u.au
	if au.Kind == media.Audio {
		if v.audio != nil && !v.waitKey && v.started {
			v.writeAudio(au)
		}
		return
	}
	if v.waitKey {
		if !au.Key {
			return
		}
		v.waitKey = false
		if v.started {
			// A new stream starts its PTS near 0: keep RTP time running on.
			v.off = v.last + 40*time.Millisecond - au.PTS
		} else {
			v.off = -au.PTS
		}
	}
	if err := v.writeVideo(it.u); err != nil {
		return
	}
	if !v.started {
		v.started = true
		if v.firstSent != nil {
			v.firstSent()
		}
	}
	if !it.in.IsZero() {
		// Units of the starting GOP are old by design; only live ones
		// measure the delay.
		from := it.delayFrom()
		v.m.delay.Observe(time.Since(from).Seconds())
	}
}

// delayFrom is where a live unit's delay starts: the arrival of its last
// RTP packet at ingest, the earliest Vigil could send it; else the feed's
// receipt. Not the camera's clock (Wall): what capture, encoding and the
// network add is not Vigil's to measure.
func (it item) delayFrom() time.Time {
	if r := it.u.au.Received; !r.IsZero() && !r.After(it.in) {
		return r
	}
	return it.in
}

func (v *viewer) writeVideo(u *unit) error {
	t := u.au.PTS + v.off
	v.last = t
	ts := rtpTime(t, 90000)
	pkts := u.rtp
	if pkts == nil { // a unit of the starting GOP from before the feed had viewers
		pkts = videoPayloads(v.stream, &u.au)
	}
	// One allocation for the frame's packets: pion's NACK responder keeps
	// them, uncopied, for retransmission, so they are never reused.
	out := make([]rtp.Packet, len(pkts))
	// pion writes synchronously: the frame's packets reach the socket
	// before WriteRTP returns, and leave together at the caller's release.
	for i, p := range pkts {
		v.vseq++
		out[i] = rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: i == len(pkts)-1, SequenceNumber: v.vseq, Timestamp: ts},
			Payload: p,
		}
		err := v.video.WriteRTP(&out[i])
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return err
		}
	}
	v.m.frames.Inc()
	return nil
}

func (v *viewer) writeAudio(au *media.AccessUnit) {
	a := v.stream.Audio
	if a == nil || a.Codec != media.G711 || a.MULaw != v.mulaw || a.ChannelCount > 1 {
		return
	}
	ts := rtpTime(au.PTS+v.off, 8000)
	for _, p := range au.Payload {
		for len(p) > 0 {
			n := min(len(p), rtpMTU)
			v.aseq++
			_ = v.audio.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, Marker: false, SequenceNumber: v.aseq, Timestamp: ts},
				Payload: p[:n],
			})
			ts += uint32(n)
			p = p[n:]
		}
	}
}

// videoPayloads cuts a video unit of stream into RTP payloads, with the
// stream's parameter sets before a keyframe that lacks them.
func videoPayloads(stream *media.Stream, au *media.AccessUnit) [][]byte {
	nalus := au.Payload
	if au.Key && stream.Video != nil && !hasParams(nalus) && stream.Video.SPS != nil {
		nalus = append([][]byte{stream.Video.SPS, stream.Video.PPS}, nalus...)
	}
	return packetizeH264(nil, nalus, rtpMTU)
}

// hasParams reports whether an H.264 access unit carries its SPS.
func hasParams(nalus [][]byte) bool {
	for _, n := range nalus {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}

// rtpTime converts t to RTP time at clock Hz, modulo 2^32, without
// overflowing for sessions of any length.
func rtpTime(t time.Duration, clock int64) uint32 {
	sec, frac := int64(t/time.Second), int64(t%time.Second)
	return uint32(sec*clock + frac*clock/int64(time.Second))
}

// packetizeH264 appends the RTP payloads of an access unit (RFC 6184,
// packetization mode 1) to out: a NAL unit that fits is sent as it is,
// sharing its bytes (pion copies when it encrypts); a larger one is cut
// into FU-A fragments. Access unit delimiters and filler data are left
// out, as WebRTC senders do. Unlike pion's H264Payloader it does not scan
// the NAL units for start codes they cannot contain.
func packetizeH264(out [][]byte, nalus [][]byte, mtu int) [][]byte {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		}
		if len(n) <= mtu {
			out = append(out, n)
			continue
		}
		indicator := n[0]&0xe0 | 28
		typ := n[0] & 0x1f
		body := n[1:]
		chunk := mtu - 2
		count := (len(body) + chunk - 1) / chunk
		buf := make([]byte, 0, len(body)+2*count)
		for i := 0; len(body) > 0; i++ {
			c := min(chunk, len(body))
			header := typ
			if i == 0 {
				header |= 0x80
			}
			if c == len(body) {
				header |= 0x40
			}
			start := len(buf)
			buf = append(buf, indicator, header)
			buf = append(buf, body[:c]...)
			out = append(out, buf[start:len(buf):len(buf)])
			body = body[c:]
		}
	}
	return out
}
