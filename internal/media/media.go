// Package media holds the few types that cross package boundaries on the
// data path: the description of a camera's stream and the access units that
// ingest delivers to the recorder. It owns no behaviour; it exists so that
// ingest and recorder need not import each other.
package media

import "time"

// Codec names a track's codec.
type Codec string

// Codecs Vigil ingests and records.
const (
	H264 Codec = "h264"
	H265 Codec = "h265"
	AAC  Codec = "aac"
	G711 Codec = "g711"
)

// VideoTrack describes the video track of a stream. Parameter sets are the
// ones announced in the SDP or, when the camera sends them in-band, the most
// recent ones seen before the first keyframe.
type VideoTrack struct {
	Codec     Codec
	ClockRate int
	VPS       []byte // H.265 only
	SPS       []byte
	PPS       []byte
	Width     int
	Height    int
}

// AudioTrack describes the audio track of a stream.
type AudioTrack struct {
	Codec        Codec
	ClockRate    int
	ChannelCount int
	// Config is the AAC AudioSpecificConfig; empty for G.711.
	Config []byte
	// MULaw is true for G.711 µ-law (PCMU), false for A-law (PCMA).
	MULaw bool
}

// Stream describes one session of a camera. Every access unit delivered after
// a Stream belongs to it, until the next Stream for the same camera is
// announced (a reconnect or a change of parameter sets).
type Stream struct {
	Camera  string
	Session uint64 // increases with every new session of the camera
	Video   *VideoTrack
	Audio   *AudioTrack // nil when the camera sends no audio
	Started time.Time   // wall-clock time of the first access unit
}

// Kind says which track an access unit belongs to.
type Kind uint8

// Track kinds.
const (
	Video Kind = iota
	Audio
)

// AccessUnit is one decodable unit of a track: a video frame or a group of
// audio frames carried by one RTP packet.
type AccessUnit struct {
	Kind Kind
	// PTS and DTS are relative to the start of the stream's session.
	PTS time.Duration
	DTS time.Duration
	// Key is true for a video access unit that starts a GOP (IDR / IRAP).
	Key bool
	// Payload holds the NAL units of a video access unit (without start
	// codes) or the audio frames of an audio access unit.
	Payload [][]byte
	// Wall is the wall-clock time of the unit, anchored to RTCP NTP when the
	// camera sends sender reports, otherwise to the local clock at arrival.
	Wall time.Time
	// Received is when ingest completed the unit: the arrival of its last
	// RTP packet, on the local clock. Live view measures its added latency
	// from it; zero for units that did not come from a camera.
	Received time.Time
}

// Sink receives one camera's media. Ingest calls a sink's methods from a
// single goroutine, in order, through a bounded queue of its own, so a slow
// sink never blocks the RTSP reader or other sinks. A sink must not keep
// au.Payload after OnAccessUnit returns unless it copies it: ingest may reuse
// buffers only when the Sink documents it copies; by default ingest hands
// each sink units it will not touch again.
type Sink interface {
	// OnStream announces a new session of the camera (first connect,
	// reconnect, or a change of parameter sets such as a new SPS). Units that
	// follow belong to it.
	OnStream(s Stream)
	// OnAccessUnit delivers the next unit of the current session.
	OnAccessUnit(au AccessUnit)
	// OnBreak says the media stops being continuous here: the session ended
	// (reason "disconnect") or units were dropped because this sink's queue
	// was full (reason "dropped", with the count). A recorder closes its
	// segment and starts a clean one at the next keyframe.
	OnBreak(reason string, dropped int)
}
