package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// connHarness accepts from a ConnLimit in the background, handing each
// server-side connection over in order.
type connHarness struct {
	l        *ConnLimit
	accepted chan net.Conn
	done     chan error
}

func newConnHarness(t *testing.T, limit, unauth int) *connHarness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &connHarness{l: NewConnLimit(ln, limit, unauth), accepted: make(chan net.Conn, 64), done: make(chan error, 1)}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				h.done <- err
				return
			}
			h.accepted <- c
		}
	}()
	t.Cleanup(func() { h.l.Close() })
	return h
}

// dial connects and returns the client side and, once accepted, the
// server side.
func (h *connHarness) dial(t *testing.T) (client, server net.Conn) {
	t.Helper()
	c := h.dialOnly(t)
	select {
	case s := <-h.accepted:
		return c, s
	case <-time.After(10 * time.Second):
		t.Fatal("connection not accepted")
		return nil, nil
	}
}

func (h *connHarness) dialOnly(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (a read sees EOF or a
// reset rather than data or the safety deadline).
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func (h *connHarness) stats(t *testing.T, open, unauth int, shed int64) {
	t.Helper()
	if s := h.l.Stats(); s != (ConnStats{Open: open, Unauthenticated: unauth, Shed: shed}) {
		t.Fatalf("stats %+v, want open %d, unauthenticated %d, shed %d", s, open, unauth, shed)
	}
}

func authenticate(l *ConnLimit, server net.Conn) {
	Authenticated(l.ConnContext(context.Background(), server))
}

func TestConnLimitShedsOldestUnauthenticated(t *testing.T) {
	h := newConnHarness(t, 4, 2)
	c1, _ := h.dial(t)
	_, s2 := h.dial(t)
	h.stats(t, 2, 2, 0)
	c3, _ := h.dial(t) // a third anonymous connection: the oldest goes
	if !closedByServer(t, c1) {
		t.Fatal("oldest unauthenticated connection kept past the cap")
	}
	h.stats(t, 2, 2, 1)

	authenticate(h.l, s2)
	_, s4 := h.dial(t)
	h.stats(t, 3, 2, 1) // s2 authenticated; s3, s4 not
	_, s5 := h.dial(t)
	if !closedByServer(t, c3) {
		t.Fatal("s3 kept past the unauthenticated cap")
	}
	h.stats(t, 3, 2, 2)
	authenticate(h.l, s4)
	authenticate(h.l, s5)
	authenticate(h.l, s5) // twice is harmless
	h.stats(t, 3, 0, 2)

	// At the total cap, the oldest unauthenticated connection makes room.
	c6, _ := h.dial(t)
	h.stats(t, 4, 1, 2)
	_, s7 := h.dial(t)
	if !closedByServer(t, c6) {
		t.Fatal("unauthenticated connection kept at the total cap")
	}
	h.stats(t, 4, 1, 3)

	// Every connection authenticated: the next waits until one closes.
	authenticate(h.l, s7)
	c8 := h.dialOnly(t)
	h.stats(t, 4, 0, 3)
	if len(h.accepted) != 0 {
		t.Fatal("accepted a connection past the cap")
	}
	s2.Close()
	select {
	case s8 := <-h.accepted:
		s8.Write([]byte("x"))
		if closedByServer(t, c8) {
			t.Fatal("c8 closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting connection not accepted after one closed")
	}
	h.stats(t, 4, 1, 3)
	s2.Close() // a second close releases nothing
	h.stats(t, 4, 1, 3)
}

func TestConnLimitCloseStopsWaitingAccept(t *testing.T) {
	h := newConnHarness(t, 1, 1)
	_, s1 := h.dial(t)
	authenticate(h.l, s1)
	h.dialOnly(t) // waits in the backlog: Accept waits for room
	h.l.Close()
	select {
	case err := <-h.done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	if _, err := io.ReadAll(io.LimitReader(s1, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticatedWithoutConnLimit(t *testing.T) {
	Authenticated(context.Background()) // no connection in the context: nothing to do
}
