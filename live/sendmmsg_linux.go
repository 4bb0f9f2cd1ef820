package live

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// rawSender hands queued datagrams to sendmmsg(2) itself rather than
// through x/net, for one reason: the system call is made raw, without
// telling the Go scheduler. The socket is non-blocking, so the call never
// waits; but a sendmmsg of a frame's packets to several viewers runs for
// tens of microseconds (on loopback it delivers them too), long enough for
// the runtime's monitor to take the processor away mid-call and wake
// another thread to run it, a context switch per frame that cost more CPU
// than the send itself (perf: sysmon and thread wake-ups were 15 to 25 %
// of the live view's CPU). A full socket buffer (EAGAIN) waits in the
// poller like any write.
type rawSender struct {
	rc   syscall.RawConn
	hdrs [maxBatch]mmsghdr
	iovs [maxBatch]unix.Iovec
	sas  [maxBatch]unix.RawSockaddrInet6 // an IPv4 address uses its first 16 bytes
}

func newRawSender(conn *net.UDPConn) *rawSender {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil // writeBatch falls back to x/net
	}
	return &rawSender{rc: rc}
}

// writeBatch sends q (at most maxBatch messages, at most maxBatch buffers
// in all) with one sendmmsg and reports how many messages left; like
// x/net's WriteBatch, an error comes with n <= 0.
func (b *sendBatch) writeBatch(q []ipv4.Message) (int, error) {
	r := b.raw
	if r == nil {
		return b.batch.WriteBatch(q, 0)
	}
	io := 0
	for i := range q {
		m := &q[i]
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok || io+len(m.Buffers) > len(r.iovs) {
			return b.batch.WriteBatch(q, 0)
		}
		h := &r.hdrs[i].hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&r.sas[i]))
		h.Namelen = putSockaddr(&r.sas[i], ua)
		if h.Namelen == 0 {
			return b.batch.WriteBatch(q, 0)
		}
		h.Iov = &r.iovs[io]
		h.SetIovlen(len(m.Buffers))
		for _, p := range m.Buffers {
			r.iovs[io] = unix.Iovec{}
			if len(p) > 0 {
				r.iovs[io].Base = &p[0]
				r.iovs[io].SetLen(len(p))
			}
			io++
		}
		if len(m.OOB) > 0 {
			h.Control = &m.OOB[0]
			h.SetControllen(len(m.OOB))
		}
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		r1, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(q)), 0, 0, 0)
		if e == syscall.EAGAIN {
			return false // wait for room in the poller
		}
		n, errno = int(r1), e
		return true
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// putSockaddr writes a's address into sa and returns its length: a
// sockaddr_in for IPv4 (a dual-stack IPv6 socket takes it too), a
// sockaddr_in6 otherwise; 0 for an address without an IP.
func putSockaddr(sa *unix.RawSockaddrInet6, a *net.UDPAddr) uint32 {
	port := uint16(a.Port)
	if ip4 := a.IP.To4(); ip4 != nil {
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*s = unix.RawSockaddrInet4{Family: unix.AF_INET}
		s.Port = port<<8 | port>>8
		copy(s.Addr[:], ip4)
		return unix.SizeofSockaddrInet4
	}
	if len(a.IP) != net.IPv6len {
		return 0
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	sa.Port = port<<8 | port>>8
	copy(sa.Addr[:], a.IP)
	if a.Zone != "" {
		if ifi, err := net.InterfaceByName(a.Zone); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	return unix.SizeofSockaddrInet6
}
