package ingest

import (
	"testing"

	"github.com/pion/rtp"
)

func TestMetadataDepacketizer(t *testing.T) {
	pkt := func(seq uint16, marker bool, payload string) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Marker: marker}, Payload: []byte(payload)}
	}
	tests := []struct {
		name     string
		max      int
		pkts     []*rtp.Packet
		want     []string
		gaps     int
		oversize int
	}{
		{name: "one packet", pkts: []*rtp.Packet{pkt(1, true, "<a/>")}, want: []string{"<a/>"}},
		{name: "three packets", pkts: []*rtp.Packet{pkt(1, false, "<a>"), pkt(2, false, "x"), pkt(3, true, "</a>")}, want: []string{"<a>x</a>"}},
		{name: "sequence wraps", pkts: []*rtp.Packet{pkt(65535, false, "<a>"), pkt(0, true, "</a>")}, want: []string{"<a></a>"}},
		{
			name: "gap drops the partial document",
			pkts: []*rtp.Packet{pkt(1, false, "<a>"), pkt(3, true, "</a>"), pkt(4, true, "<b/>")},
			want: []string{"<b/>"}, gaps: 1,
		},
		{
			name: "oversize dropped then recovers",
			max:  4,
			pkts: []*rtp.Packet{pkt(1, false, "<a>"), pkt(2, false, "xx"), pkt(3, true, "</a>"), pkt(4, true, "<b/>")},
			want: []string{"<b/>"}, oversize: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &MetadataDepacketizer{MaxSize: tc.max}
			var got []string
			for _, p := range tc.pkts {
				if doc := d.Push(p); doc != nil {
					got = append(got, string(doc))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
			if d.Gaps != tc.gaps || d.Oversize != tc.oversize {
				t.Fatalf("gaps %d oversize %d, want %d %d", d.Gaps, d.Oversize, tc.gaps, tc.oversize)
			}
		})
	}
}

func FuzzMetadataDepacketizer(f *testing.F) {
	seed := func(seq uint16, marker bool, payload string) []byte {
		b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 107, SequenceNumber: seq, Marker: marker}, Payload: []byte(payload)}).Marshal()
		return b
	}
	f.Add(seed(1, false, "<tt:MetadataStream>"), seed(2, true, "</tt:MetadataStream>"))
	f.Add(seed(9, true, "\x1f\x8b"), seed(7, false, ""))
	f.Add([]byte{0x80}, []byte{})
	const max = 256
	f.Fuzz(func(t *testing.T, a, b []byte) {
		d := &MetadataDepacketizer{MaxSize: max}
		for i := 0; i < 8; i++ {
			for _, raw := range [][]byte{a, b} {
				var p rtp.Packet
				if p.Unmarshal(raw) != nil {
					continue
				}
				doc := d.Push(&p)
				if len(doc) > max || len(d.buf) > max {
					t.Fatalf("unbounded: doc %d, partial %d", len(doc), len(d.buf))
				}
			}
		}
	})
}
