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
// frame is 15 to 20 packets, a keyframe 80 to 100, and a frame goes to
// all of a camera's caught-up viewers in one hold (4 viewers: 60 to 80).
const maxBatch = 128

// batchSlotSize is the largest datagram a batch holds; pion sends at most
// its MTU (1200 bytes of RTP payload plus headers and the SRTP tag). A
// larger one is written on its own.
const batchSlotSize = 1500

// maxGSOBytes bounds one segmented datagram: the kernel takes at most a
// UDP datagram's 65,507 bytes of payload before cutting it.
const maxGSOBytes = 65_000

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
// Where the kernel segments UDP (Linux), consecutive queued datagrams to
// one viewer of one size (the full packets of a frame, and the shorter
// last) go as one buffer with UDP_SEGMENT: they cross the network stack
// once and are cut into the same datagrams at the end. A kernel that
// refuses it gets them one by one from then on.
//
// It is the net.PacketConn given to pion's UDP mux, which reads through it
// unchanged.
type sendBatch struct {
	*net.UDPConn
	batch *ipv4.PacketConn
	raw   *rawSender // nil: through batch

	mu    sync.Mutex
	holds int
	msgs  []ipv4.Message // queued, in order; len ≤ maxBatch
	slots []batchSlot
	gso   bool             // segmenting; off after the kernel refused it
	wire  []ipv4.Message   // what flushLocked hands the kernel
	iovs  [maxBatch][]byte // the queued datagrams' bytes, in order
	oob   []byte           // a control message per entry of wire

	errs      atomic.Uint64 // datagrams the kernel refused
	sent      atomic.Uint64 // sendmmsg calls, for tests
	direct    atomic.Uint64 // datagrams written on their own, for tests
	segmented atomic.Uint64 // datagrams sent in a segmented run, for tests
}

// batchSlot is the storage of one queued datagram.
type batchSlot struct {
	buf  [batchSlotSize]byte
	to   netip.AddrPort
	addr net.UDPAddr
	ip   [16]byte
	bufs [1][]byte
}

var _ ice.AddrPortReaderWriter = (*sendBatch)(nil)

func newSendBatch(conn *net.UDPConn) *sendBatch {
	return &sendBatch{UDPConn: conn, batch: ipv4.NewPacketConn(conn), raw: newRawSender(conn),
		msgs: make([]ipv4.Message, 0, maxBatch), slots: make([]batchSlot, maxBatch),
		gso: gsoAvailable, wire: make([]ipv4.Message, 0, maxBatch), oob: make([]byte, maxBatch*gsoSpace)}
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
	s.to = addr
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
	if len(b.msgs) == 0 {
		return
	}
	if b.gso {
		b.flushSegmented()
	} else {
		b.errs.Add(uint64(b.send(b.msgs)))
	}
	for i := range b.msgs {
		b.msgs[i] = ipv4.Message{}
	}
	b.msgs = b.msgs[:0]
}

// send hands q to the kernel, skipping what it refuses; it returns how
// many entries were refused.
func (b *sendBatch) send(q []ipv4.Message) (refused int) {
	for len(q) > 0 {
		n, err := b.writeBatch(q)
		b.sent.Add(1)
		if err != nil && n <= 0 {
			refused++
			n = 1
		}
		q = q[n:]
	}
	return refused
}

// flushSegmented sends the queue with runs of datagrams to one address,
// all of one size but a shorter last, as single segmented entries.
func (b *sendBatch) flushSegmented() {
	q := b.msgs
	for i := range q {
		b.iovs[i] = q[i].Buffers[0]
	}
	wire := b.wire[:0]
	runs := 0
	for i := 0; i < len(q); {
		size, to := len(b.iovs[i]), b.slots[i].to
		j, total := i+1, size
		for j < len(q) && b.slots[j].to == to && len(b.iovs[j]) <= size && total+len(b.iovs[j]) <= maxGSOBytes {
			total += len(b.iovs[j])
			j++
			if len(b.iovs[j-1]) < size {
				break // a shorter datagram ends the run
			}
		}
		m := ipv4.Message{Buffers: b.iovs[i:j:j], Addr: q[i].Addr}
		if j-i > 1 {
			oob := b.oob[runs*gsoSpace : (runs+1)*gsoSpace]
			putSegmentSize(oob, size)
			m.OOB = oob
			runs++
		}
		wire = append(wire, m)
		i = j
	}
	refusedRuns := 0
	for k := 0; k < len(wire); {
		n, err := b.writeBatch(wire[k:])
		b.sent.Add(1)
		if err == nil || n > 0 {
			for _, m := range wire[k : k+n] {
				if m.OOB != nil {
					b.segmented.Add(uint64(len(m.Buffers)))
				}
			}
			k += n
			continue
		}
		m := wire[k]
		k++
		if m.OOB == nil {
			b.errs.Add(1)
			continue
		}
		// The run was refused: the kernel may not segment (an old kernel,
		// a device without checksum offload) or the address is bad. Its
		// datagrams go one by one; if they leave, segmenting is off.
		one := make([]ipv4.Message, len(m.Buffers))
		for x := range one {
			one[x] = ipv4.Message{Buffers: m.Buffers[x : x+1], Addr: m.Addr}
		}
		refused := b.send(one)
		b.errs.Add(uint64(refused))
		if refused < len(one) {
			refusedRuns++
		}
	}
	if refusedRuns > 0 {
		b.gso = false
	}
	for i := range wire {
		wire[i] = ipv4.Message{}
	}
	b.wire = wire[:0]
}
