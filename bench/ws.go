package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// deskMsg is what a desk client keeps of one websocket message; the fields
// are cut out of the raw JSON without decoding it all, so that 50 clients
// at 1,000 messages/s leave the CPU to Vigil.
type deskMsg struct {
	kind   string
	seq    uint64
	camera string
	count  int64
	id     string
	key    string
	at     time.Time // receipt
}

// jsonField returns the raw value of the first "name": in b.
func jsonField(b []byte, name string) []byte {
	pat := `"` + name + `":`
	i := bytes.Index(b, []byte(pat))
	if i < 0 {
		return nil
	}
	v := b[i+len(pat):]
	if len(v) > 0 && v[0] == '"' {
		if j := bytes.IndexByte(v[1:], '"'); j >= 0 {
			return v[1 : 1+j]
		}
		return nil
	}
	end := bytes.IndexAny(v, ",}")
	if end < 0 {
		return v
	}
	return v[:end]
}

func parseDeskMsg(b []byte, at time.Time) deskMsg {
	m := deskMsg{at: at, kind: string(jsonField(b, "kind"))}
	m.seq, _ = strconv.ParseUint(string(jsonField(b, "seq")), 10, 64)
	if i := bytes.Index(b, []byte(`"alert":`)); i >= 0 {
		a := b[i:]
		m.id = string(jsonField(a, "id"))
		m.camera = string(jsonField(a, "camera"))
		m.key = string(jsonField(a, "key"))
		m.count, _ = strconv.ParseInt(string(jsonField(a, "count")), 10, 64)
	}
	return m
}

// deskClient is one websocket connection to /api/v1/alerts/stream.
type deskClient struct {
	conn  *websocket.Conn
	hello uint64
	// closeCode is the close code the server sent, 0 while open, -1 for a
	// connection that broke without a close frame.
	mu        sync.Mutex
	closeCode int
	done      chan struct{}
}

// dialDesk connects with the desk token, reads the hello and then calls
// onMsg for every message from one goroutine until the connection ends.
// A nil onMsg makes a client that never reads after the hello.
func dialDesk(ctx context.Context, baseURL, token string, since int64, onMsg func(deskMsg)) (*deskClient, error) {
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/api/v1/alerts/stream"
	if since >= 0 {
		u += "?since=" + strconv.FormatInt(since, 10)
	}
	h := http.Header{"Authorization": {"Bearer " + token}}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
	conn, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (status %d)", u, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	c := &deskClient{conn: conn, done: make(chan struct{})}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	m := parseDeskMsg(b, time.Now())
	if m.kind == "reset" {
		_, b, err = conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("hello after reset: %w", err)
		}
		m = parseDeskMsg(b, time.Now())
	}
	if m.kind != "hello" {
		conn.Close()
		return nil, fmt.Errorf("first message %q, want hello", b)
	}
	c.hello = m.seq
	_ = conn.SetReadDeadline(time.Time{})
	if onMsg == nil {
		close(c.done)
		return c, nil
	}
	go func() {
		defer close(c.done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				c.mu.Lock()
				if errors.As(err, &ce) {
					c.closeCode = ce.Code
				} else {
					c.closeCode = -1
				}
				c.mu.Unlock()
				return
			}
			onMsg(parseDeskMsg(b, time.Now()))
		}
	}()
	return c, nil
}

// CloseCode is the server's close code, 0 while the connection is open.
func (c *deskClient) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// Close ends the connection and waits for the reader.
func (c *deskClient) Close() {
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}
