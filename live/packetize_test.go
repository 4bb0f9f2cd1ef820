package live

import (
	"bytes"
	"testing"

	"github.com/pion/rtp/codecs"

	"vigil/internal/camsim"
)

// TestPacketizeH264RoundTrips checks the payloads against pion's own
// depacketizer: every frame of the camsim clip, at a small and the real
// MTU, comes back as the same NAL units (less access unit delimiters).
func TestPacketizeH264RoundTrips(t *testing.T) {
	clip := camsim.DefaultClip()
	for _, mtu := range []int{100, rtpMTU} {
		for i, fr := range clip.Frames[:60] {
			nalus := append([][]byte{{0x09, 0xf0}}, fr.NALUs...) // an AUD first, as cameras send
			var got bytes.Buffer
			var d codecs.H264Packet
			for _, p := range packetizeH264(nil, nalus, mtu) {
				if len(p) > mtu {
					t.Fatalf("frame %d: payload of %d bytes over MTU %d", i, len(p), mtu)
				}
				b, err := d.Unmarshal(p)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				got.Write(b)
			}
			var want bytes.Buffer
			for _, n := range fr.NALUs {
				want.Write([]byte{0, 0, 0, 1})
				want.Write(n)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("frame %d at MTU %d: %d bytes back, want %d", i, mtu, got.Len(), want.Len())
			}
		}
	}
}
