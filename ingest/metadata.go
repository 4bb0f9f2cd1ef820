package ingest

import (
	"time"

	"github.com/pion/rtp"
)

// MetadataSink receives the ONVIF metadata documents of every camera whose
// registration enables them. doc is the raw document as the camera sent it:
// XML, or gzip (vnd.onvif.metadata+gzip; it starts with 0x1f 0x8b), which the
// consumer inflates. The sink may keep doc but must not modify it (it is
// shared by all metadata sinks). OnMetadata is called from the
// subscription's own goroutine, one document at a time.
type MetadataSink interface {
	OnMetadata(camera string, doc []byte, at time.Time)
}

// MetadataSinkFunc adapts a function to MetadataSink.
type MetadataSinkFunc func(camera string, doc []byte, at time.Time)

// OnMetadata implements MetadataSink.
func (f MetadataSinkFunc) OnMetadata(camera string, doc []byte, at time.Time) { f(camera, doc, at) }

// MetadataDepacketizer reassembles ONVIF metadata documents from RTP packets:
// payloads concatenate until the packet with the marker bit. A sequence gap
// drops the partial document and everything up to the next marker; a
// document larger than MaxSize is dropped the same way. Memory stays below
// MaxSize plus one packet.
type MetadataDepacketizer struct {
	MaxSize int // 1 MiB when zero

	buf     []byte
	nextSeq uint16
	started bool
	skip    bool // discard until the next marker

	Documents int // documents returned
	Gaps      int // partial documents dropped because of a sequence gap
	Oversize  int // documents dropped for exceeding MaxSize
}

// Push adds a packet and returns a complete document when pkt ends one. The
// returned slice is the caller's.
func (d *MetadataDepacketizer) Push(pkt *rtp.Packet) []byte {
	max := d.MaxSize
	if max <= 0 {
		max = 1 << 20
	}
	if d.started && pkt.SequenceNumber != d.nextSeq {
		if len(d.buf) > 0 || !d.skip {
			d.Gaps++
		}
		d.buf = d.buf[:0]
		d.skip = true
	}
	d.started = true
	d.nextSeq = pkt.SequenceNumber + 1

	if !d.skip {
		if len(d.buf)+len(pkt.Payload) > max {
			d.Oversize++
			d.buf = nil
			d.skip = true
		} else {
			d.buf = append(d.buf, pkt.Payload...)
		}
	}
	if !pkt.Marker {
		return nil
	}
	if d.skip {
		// This packet ends the damaged document; the next one starts afresh.
		d.skip = false
		d.buf = d.buf[:0]
		return nil
	}
	if len(d.buf) == 0 {
		return nil
	}
	doc := d.buf
	d.buf = nil
	d.Documents++
	return doc
}
