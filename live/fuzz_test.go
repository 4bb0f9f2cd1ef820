package live

import (
	"strings"
	"testing"
)

// FuzzParseOffer feeds outside bytes to the offer check: it must never
// panic, and what it accepts has at least one media section.
func FuzzParseOffer(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"))
	f.Add([]byte("this is not SDP"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err != nil {
			return
		}
		if (o.h264 || o.pcmu || o.pcma) && !strings.Contains(string(b), "m=") {
			t.Errorf("codecs found in an offer without media: %+v", o)
		}
	})
}
