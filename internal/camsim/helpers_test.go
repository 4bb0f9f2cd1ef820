package camsim

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"vigil/internal/testutil"
)

// startServer runs a Server until the test ends.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// au is one access unit as a client reassembled it.
type au struct {
	ts    uint32
	nalus [][]byte
	at    time.Time
}

// player is a plain gortsplib client playing one camera.
type player struct {
	c    *gortsplib.Client
	desc *description.Session
	h264 *format.H264

	mu       sync.Mutex
	aus      []au
	docs     [][]byte // metadata documents, reassembled by marker bit
	seqGaps  int
	lastSeq  map[uint8]uint16
	lastPkt  time.Time
	decErrs  int
	packets  int
	partial  []byte
	closedCh chan error
}

func play(t *testing.T, url string, proto gortsplib.Protocol) *player {
	t.Helper()
	p, err := tryPlay(url, proto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.c.Close)
	return p
}

func tryPlay(url string, proto gortsplib.Protocol) (*player, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	p := &player{lastSeq: map[uint8]uint16{}, closedCh: make(chan error, 1)}
	p.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 5 * time.Second}
	if err := p.c.Start(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.c.Close()
		}
	}()
	desc, _, err := p.c.Describe(u)
	if err != nil {
		return nil, err
	}
	p.desc = desc
	vm := desc.FindFormat(&p.h264)
	if vm == nil {
		return nil, errors.New("no h264 track")
	}
	dec, err := p.h264.CreateDecoder()
	if err != nil {
		return nil, err
	}
	if err := p.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return nil, err
	}
	p.c.OnPacketRTPAny(func(m *description.Media, f format.Format, pkt *rtp.Packet) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.packets++
		p.lastPkt = time.Now()
		pt := f.PayloadType()
		if last, ok := p.lastSeq[pt]; ok && pkt.SequenceNumber != last+1 {
			p.seqGaps++
		}
		p.lastSeq[pt] = pkt.SequenceNumber
		if m == vm {
			nalus, err := dec.Decode(pkt)
			switch {
			case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
			case err != nil:
				p.decErrs++
			default:
				p.aus = append(p.aus, au{ts: pkt.Timestamp, nalus: nalus, at: time.Now()})
			}
			return
		}
		if f.PayloadType() == MetadataPayloadType {
			p.partial = append(p.partial, pkt.Payload...)
			if pkt.Marker {
				p.docs = append(p.docs, p.partial)
				p.partial = nil
			}
		}
	})
	if _, err := p.c.Play(nil); err != nil {
		return nil, err
	}
	go func() { p.closedCh <- p.c.Wait() }()
	ok = true
	return p, nil
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, d, what, cond)
}

func (p *player) snapshot() (aus []au, docs [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]au(nil), p.aus...), append([][]byte(nil), p.docs...)
}

func (p *player) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packets
}

func isIDR(nalus [][]byte) bool { return h264.IsRandomAccess(nalus) }

func hasNALU(nalus [][]byte, typ h264.NALUType) []byte {
	for _, n := range nalus {
		if h264.NALUType(n[0]&0x1f) == typ {
			return n
		}
	}
	return nil
}

// metadataStream is a namespace-agnostic reading of a tt:MetadataStream.
type metadataStream struct {
	Events []struct {
		Notifications []struct {
			Topic   string `xml:"Topic"`
			Message struct {
				Message struct {
					UtcTime string `xml:"UtcTime,attr"`
					Op      string `xml:"PropertyOperation,attr"`
					Source  items  `xml:"Source"`
					Key     items  `xml:"Key"`
					Data    items  `xml:"Data"`
				} `xml:"Message"`
			} `xml:"Message"`
		} `xml:"NotificationMessage"`
	} `xml:"Event"`
}

type items struct {
	Items []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:"Value,attr"`
	} `xml:"SimpleItem"`
}

func (it items) get(name string) string {
	for _, i := range it.Items {
		if i.Name == name {
			return i.Value
		}
	}
	return ""
}

// note is one notification read back from a document.
type note struct {
	topic, op, utc, key string
	data                items
}

func parseDoc(t *testing.T, doc []byte) []note {
	t.Helper()
	var m metadataStream
	if err := xml.Unmarshal(doc, &m); err != nil {
		t.Fatalf("metadata document: %v\n%s", err, doc)
	}
	var out []note
	for _, e := range m.Events {
		for _, n := range e.Notifications {
			msg := n.Message.Message
			key := msg.Key.get("ObjectId")
			out = append(out, note{topic: n.Topic, op: msg.Op, utc: msg.UtcTime, key: key, data: msg.Data})
		}
	}
	return out
}
