package httpx

import (
	"container/list"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// ConnLimit is a net.Listener that bounds the connections open at once, so
// that slow or idle clients cannot use up the process's file descriptors
// (and with them the recorder's and /healthz's).
//
// A connection counts as unauthenticated until a request on it presents
// valid credentials (Authenticated). Unauthenticated connections have the
// smaller cap: past it, the oldest unauthenticated connection is closed to
// make room for the new one, so a flood of slow anonymous clients keeps
// turning over instead of locking everyone out. At the total cap the oldest
// unauthenticated connection is closed too; when every connection is
// authenticated, Accept holds the new one until one closes (later clients
// wait in the kernel's backlog meanwhile).
//
// The http.Server serving it needs ConnContext set to the method of the
// same name, so that handlers can mark their connection.
type ConnLimit struct {
	net.Listener
	limit, unauthLimit int

	mu     sync.Mutex
	room   *sync.Cond // signalled when a connection closes or the listener does
	closed bool
	total  int       // connections handed out and not yet closed
	unauth list.List // of *limitedConn, oldest first

	shed atomic.Int64
}

// NewConnLimit wraps l: at most limit connections at once (at least 1), of
// which at most unauthLimit (clamped to [1, limit]) unauthenticated.
func NewConnLimit(l net.Listener, limit, unauthLimit int) *ConnLimit {
	limit = max(limit, 1)
	unauthLimit = min(max(unauthLimit, 1), limit)
	c := &ConnLimit{Listener: l, limit: limit, unauthLimit: unauthLimit}
	c.room = sync.NewCond(&c.mu)
	return c
}

// ConnStats is a snapshot of a ConnLimit.
type ConnStats struct {
	Open, Unauthenticated int
	// Shed counts connections closed to make room for new ones.
	Shed int64
}

// Stats returns the current counts.
func (l *ConnLimit) Stats() ConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ConnStats{Open: l.total, Unauthenticated: l.unauth.Len(), Shed: l.shed.Load()}
}

// Accept returns the next connection. Past a cap it closes the oldest
// unauthenticated connection to make room; when every open connection is
// authenticated and the total cap is reached, it holds the new connection
// until one closes (so at most one descriptor beyond the cap is in use).
func (l *ConnLimit) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &limitedConn{Conn: nc, l: l}
	var victims []*limitedConn
	l.mu.Lock()
	for !l.closed && l.total >= l.limit {
		if v := l.popOldestLocked(); v != nil {
			victims = append(victims, v)
			l.total-- // v's Close releases nothing more
			v.released = true
			continue
		}
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		nc.Close()
		return nil, net.ErrClosed
	}
	l.total++
	c.elem = l.unauth.PushBack(c)
	if l.unauth.Len() > l.unauthLimit {
		v := l.popOldestLocked()
		l.total--
		v.released = true
		victims = append(victims, v)
	}
	l.mu.Unlock()
	for _, v := range victims {
		l.shed.Add(1)
		v.Conn.Close()
	}
	return c, nil
}

// popOldestLocked takes the oldest unauthenticated connection off the
// list, or returns nil.
func (l *ConnLimit) popOldestLocked() *limitedConn {
	e := l.unauth.Front()
	if e == nil {
		return nil
	}
	c := l.unauth.Remove(e).(*limitedConn)
	c.elem = nil
	return c
}

// Close stops Accept, including one waiting for room, and closes the
// listener. Connections already accepted stay open.
func (l *ConnLimit) Close() error {
	l.mu.Lock()
	l.closed = true
	l.room.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets Authenticated find
// the connection of a request.
func (l *ConnLimit) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok && lc.l == l {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// Authenticated marks the connection of the request whose context is ctx
// as authenticated: it no longer counts against the unauthenticated cap and
// is not closed to make room. It does nothing for a request not served
// through a ConnLimit.
func Authenticated(ctx context.Context) {
	c, ok := ctx.Value(connKey{}).(*limitedConn)
	if !ok {
		return
	}
	c.l.mu.Lock()
	if c.elem != nil {
		c.l.unauth.Remove(c.elem)
		c.elem = nil
	}
	c.l.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	l *ConnLimit
	// Guarded by l.mu: elem is c's place in l.unauth while it is open and
	// unauthenticated; released says its count was given back.
	elem     *list.Element
	released bool
}

// ReadFrom keeps net/http's sendfile path to the TCP connection underneath
// (it looks for io.ReaderFrom on the connection).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	if c.elem != nil {
		c.l.unauth.Remove(c.elem)
		c.elem = nil
	}
	if !c.released {
		c.released = true
		c.l.total--
		c.l.room.Signal()
	}
	c.l.mu.Unlock()
	return err
}
