package live

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"golang.org/x/net/ipv4"
)

// maxBatch is how many datagrams one sendmmsg carries at most: a 4 Mbit/s
// frame is 15 to 20 packets, a keyframe 80 to 100.
const maxBatch = 64

// batchSlotSize is the largest datagram a batch holds; pion sends at most
// its MTU (1200 bytes of RTP payload plus headers and the SRTP tag). A
// larger one is written on its own.
const batchSlotSize = 1500

// sendBatch is the viewers' one UDP socket, with its writes gathered into
// sendmmsg calls. A viewer holds the batch open (hold) while pion encrypts
// and writes the packets of a frame and releases it when done: what was
// queued meanwhile, its own packets and other viewers', leaves in one
// system call instead of one each. It adds no timer and no latency beyond
// the frame being written: a write while nothing is held goes out at once
// (ICE, DTLS and RTCP between frames), every release sends what is queued,
// and a full batch is sent at once. Datagrams leave in the order they were
// written.
//
// It is the net.PacketConn given to pion's UDP mux, which reads through it
// unchanged.
type sendBatch struct {
	*net.UDPConn
	batch *ipv4.PacketConn

	mu     sync.Mutex
	holds  int
	msgs   []ipv4.Message // queued, in order; len ≤ maxBatch
	slots  []batchSlot
	errs   atomic.Uint64 // datagrams the kernel refused
	sent   atomic.Uint64 // sendmmsg calls, for tests
	direct atomic.Uint64 // datagrams written on their own, for tests
}

// batchSlot is the storage of one queued datagram.
type batchSlot struct {
	buf  [batchSlotSize]byte
	addr net.UDPAddr
	ip   [16]byte
	bufs [1][]byte
}

var _ ice.AddrPortReaderWriter = (*sendBatch)(nil)

func newSendBatch(conn *net.UDPConn) *sendBatch {
	b := &sendBatch{UDPConn: conn, batch: ipv4.NewPacketConn(conn),
		msgs: make([]ipv4.Message, 0, maxBatch), slots: make([]batchSlot, maxBatch)}
	return b
}

// hold starts gathering writes; every hold needs its release.
func (b *sendBatch) hold() {
	b.mu.Lock()
	b.holds++
	b.mu.Unlock()
}

// release ends a hold and sends what is queued.
func (b *sendBatch) release() {
	b.mu.Lock()
	b.holds--
	b.flushLocked()
	b.mu.Unlock()
}

// WriteToAddrPort queues p while a hold is open, else writes it at once.
// A queued datagram is reported written; the kernel's refusal of it later
// is only counted (UDP promises no delivery either way).
func (b *sendBatch) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holds == 0 || len(p) > batchSlotSize {
		b.flushLocked() // what is queued goes first
		b.direct.Add(1)
		return b.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	i := len(b.msgs)
	s := &b.slots[i]
	n := copy(s.buf[:], p)
	ip := addr.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		s.addr.IP = s.ip[:copy(s.ip[:], a[:])]
	} else {
		a := ip.As16()
		s.addr.IP = s.ip[:copy(s.ip[:], a[:])]
	}
	s.addr.Port, s.addr.Zone = int(addr.Port()), ip.Zone()
	s.bufs[0] = s.buf[:n]
	b.msgs = append(b.msgs, ipv4.Message{Buffers: s.bufs[:], Addr: &s.addr})
	if len(b.msgs) == maxBatch {
		b.flushLocked()
	}
	return len(p), nil
}

// WriteTo is WriteToAddrPort for callers with a net.Addr.
func (b *sendBatch) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return b.UDPConn.WriteTo(p, addr)
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// ReadFromAddrPort reads as the socket does.
func (b *sendBatch) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

// flushLocked sends the queue. A datagram the kernel refuses (an
// unreachable address) is skipped so that the others still leave.
func (b *sendBatch) flushLocked() {
	q := b.msgs
	for len(q) > 0 {
		n, err := b.batch.WriteBatch(q, 0)
		b.sent.Add(1)
		if err != nil && n <= 0 {
			b.errs.Add(1)
			n = 1
		}
		q = q[n:]
	}
	for i := range b.msgs {
		b.msgs[i] = ipv4.Message{}
	}
	b.msgs = b.msgs[:0]
}
