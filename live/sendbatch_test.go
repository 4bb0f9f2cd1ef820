package live

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// batchPair is a sendBatch on loopback and a socket that receives from it.
func batchPair(t *testing.T, network, listen string) (*sendBatch, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, listen)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, la)
	if err != nil {
		t.Fatal(err)
	}
	b := newSendBatch(c)
	t.Cleanup(func() { b.Close() })
	r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	_ = r.SetReadBuffer(4 << 20)
	return b, r, r.LocalAddr().(*net.UDPAddr).AddrPort()
}

// datagram i: its number and some bytes, size bytes in all.
func datagram(i, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(i))
	return p
}

// receive reads n datagrams and returns their numbers in arrival order.
func receive(t *testing.T, r *net.UDPConn, n int) []int {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second)) // a bound, not an assertion
	buf := make([]byte, 2048)
	var got []int
	for range n {
		m, err := r.Read(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		got = append(got, int(binary.BigEndian.Uint32(buf[:m])))
	}
	return got
}

// nothingWaiting reports whether no datagram is waiting at r: a batch
// sent reaches a loopback socket before sendmmsg returns.
func nothingWaiting(t *testing.T, r *net.UDPConn) bool {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 2048)
	_, err := r.Read(buf)
	return err != nil
}

func inOrder(t *testing.T, got []int, from int) {
	t.Helper()
	for i, g := range got {
		if g != from+i {
			t.Fatalf("datagram %d is #%d, want #%d (order %v)", i, g, from+i, got)
		}
	}
}

func TestSendBatchHoldsUntilRelease(t *testing.T) {
	for _, tc := range []struct{ name, network, listen string }{
		{"ipv4 socket", "udp4", "127.0.0.1:0"},
		{"dual-stack socket", "udp", ":0"}, // as live.udp_port binds in production
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, r, to := batchPair(t, tc.network, tc.listen)
			if tc.network == "udp" {
				to = netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port()) // as the dual-stack mux sees a v4 peer
			}
			b.hold()
			for i := range 20 {
				if n, err := b.WriteToAddrPort(datagram(i, 1228), to); err != nil || n != 1228 {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
			}
			if !nothingWaiting(t, r) {
				t.Fatal("a datagram left before release")
			}
			b.release()
			inOrder(t, receive(t, r, 20), 0)
			if got := b.sent.Load(); got != 1 {
				t.Errorf("%d sendmmsg calls for 20 held datagrams, want 1", got)
			}
			if b.direct.Load() != 0 || b.errs.Load() != 0 {
				t.Errorf("direct %d, errors %d", b.direct.Load(), b.errs.Load())
			}
			if gsoAvailable && b.segmented.Load() != 20 {
				t.Errorf("%d of 20 datagrams of one size to one viewer were segmented by the kernel", b.segmented.Load())
			}
		})
	}
}

func TestSendBatchWritesAtOnceWhenNotHeld(t *testing.T) {
	b, r, to := batchPair(t, "udp4", "127.0.0.1:0")
	for i := range 3 {
		if _, err := b.WriteToAddrPort(datagram(i, 100), to); err != nil {
			t.Fatal(err)
		}
		inOrder(t, receive(t, r, 1), i) // there before the next write
	}
	if b.direct.Load() != 3 || b.sent.Load() != 0 {
		t.Errorf("direct %d, batches %d; want 3 and 0", b.direct.Load(), b.sent.Load())
	}
}

func TestSendBatchFlushesAFullBatchAndKeepsOrder(t *testing.T) {
	b, r, to := batchPair(t, "udp4", "127.0.0.1:0")
	b.hold()
	for i := range maxBatch {
		_, _ = b.WriteToAddrPort(datagram(i, 1228), to)
	}
	// Full: sent without waiting for the release.
	inOrder(t, receive(t, r, maxBatch), 0)
	// Two viewers interleave; a datagram too large for a slot goes on its
	// own, after what was queued before it.
	b.hold()
	_, _ = b.WriteToAddrPort(datagram(maxBatch, 1228), to)
	_, _ = b.WriteToAddrPort(datagram(maxBatch+1, 1228), to)
	_, _ = b.WriteToAddrPort(datagram(maxBatch+2, batchSlotSize+1), to)
	_, _ = b.WriteToAddrPort(datagram(maxBatch+3, 1228), to)
	b.release() // the first hold is still open: every release sends
	inOrder(t, receive(t, r, 4), maxBatch)
	b.release()
	if b.holds != 0 {
		t.Errorf("holds = %d after as many releases", b.holds)
	}
}

func TestSendBatchSkipsARefusedDatagram(t *testing.T) {
	for _, segment := range []bool{true, false} {
		t.Run(fmt.Sprintf("segmenting %v", segment), func(t *testing.T) {
			b, r, to := batchPair(t, "udp4", "127.0.0.1:0")
			b.gso = segment && gsoAvailable
			b.hold()
			_, _ = b.WriteToAddrPort(datagram(0, 100), to)
			_, _ = b.WriteToAddrPort(datagram(99, 100), netip.MustParseAddrPort("127.0.0.1:0")) // port 0: EINVAL
			_, _ = b.WriteToAddrPort(datagram(1, 100), to)
			b.release()
			inOrder(t, receive(t, r, 2), 0)
			if b.errs.Load() != 1 {
				t.Errorf("%d refusals counted, want 1", b.errs.Load())
			}
			reg := prometheus.NewRegistry()
			registerSendErrors(reg, b)
			if got := gatherValue(t, reg, "vigil_live_send_errors_total"); got != 1 {
				t.Errorf("vigil_live_send_errors_total %v, want 1", got)
			}
		})
	}
}

// gatherValue is the value of the counter name in reg.
func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

func TestSendBatchSegmentsRunsAndKeepsSizes(t *testing.T) {
	b, r, to := batchPair(t, "udp4", "127.0.0.1:0")
	r2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	to2 := r2.LocalAddr().(*net.UDPAddr).AddrPort()
	// A frame to one viewer (full packets and a shorter last), one to
	// another in between, and a run past the size of one segmented send.
	sizes := []int{1228, 1228, 1228, 700, 1228, 1228, 1228}
	b.hold()
	for i, n := range sizes {
		_, _ = b.WriteToAddrPort(datagram(i, n), to)
		if i == 3 {
			_, _ = b.WriteToAddrPort(datagram(1000, 300), to2)
		}
	}
	for i := range 56 { // 56 × 1228 bytes: more than one datagram of 64 KiB
		_, _ = b.WriteToAddrPort(datagram(len(sizes)+i, 1228), to)
	}
	b.release()
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65536)
	for i := range len(sizes) + 56 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := 1228
		if i < len(sizes) {
			want = sizes[i]
		}
		if got := int(binary.BigEndian.Uint32(buf)); got != i || n != want {
			t.Fatalf("datagram %d: #%d of %d bytes, want #%d of %d", i, got, n, i, want)
		}
	}
	inOrder(t, receive(t, r2, 1), 1000)
	if gsoAvailable && b.segmented.Load() != uint64(len(sizes)+56) {
		t.Errorf("%d datagrams segmented, want %d", b.segmented.Load(), len(sizes)+56)
	}
}

func TestSendBatchRefusedRunKeepsSegmenting(t *testing.T) {
	b, r, to := batchPair(t, "udp4", "127.0.0.1:0")
	bad := netip.MustParseAddrPort("127.0.0.1:0")
	b.hold()
	for i := range 3 {
		_, _ = b.WriteToAddrPort(datagram(100+i, 1228), bad)
	}
	for i := range 3 {
		_, _ = b.WriteToAddrPort(datagram(i, 1228), to)
	}
	b.release()
	inOrder(t, receive(t, r, 3), 0)
	if b.errs.Load() != 3 {
		t.Errorf("%d refusals counted, want 3", b.errs.Load())
	}
	if b.gso != gsoAvailable {
		t.Error("a bad address turned segmenting off")
	}
}

func TestSendBatchIPv6Peer(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{}) // dual-stack, as live.udp_port binds
	if err != nil {
		t.Fatal(err)
	}
	b := newSendBatch(c)
	t.Cleanup(func() { b.Close() })
	r, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	b.hold()
	for i := range 5 {
		_, _ = b.WriteToAddrPort(datagram(i, 1228), to)
	}
	_, _ = b.WriteToAddrPort(datagram(5, 300), to)
	b.release()
	inOrder(t, receive(t, r, 6), 0)
	if b.errs.Load() != 0 || b.direct.Load() != 0 || b.sent.Load() != 1 {
		t.Errorf("errors %d, direct %d, sendmmsg calls %d; want 0, 0, 1", b.errs.Load(), b.direct.Load(), b.sent.Load())
	}
}

// TestSendBatchSendsRaw: on Linux the batch makes its own sendmmsg, which
// the scheduler is not told about (see rawSender).
func TestSendBatchSendsRaw(t *testing.T) {
	b, _, _ := batchPair(t, "udp4", "127.0.0.1:0")
	if (b.raw != nil) != (runtime.GOOS == "linux") {
		t.Fatalf("raw sender %v on %s", b.raw != nil, runtime.GOOS)
	}
}
