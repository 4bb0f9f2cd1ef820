package stream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"vigil/alerts"

	"github.com/gorilla/websocket"
)

// wsClient is one websocket connection of the alert stream.
type wsClient struct {
	remote string
	filter streamFilter
	queue  chan *hubMsg

	closeOnce sync.Once
	done      chan struct{} // closed by closeWith
	code      int           // set once, before done is closed
	reason    string
}

// closeWith asks the client's writer to send a close frame with code and
// end. Only the first call counts; it reports whether it was the first.
func (c *wsClient) closeWith(code int, reason string) bool {
	first := false
	c.closeOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
		first = true
	})
	return first
}

// ServeHTTP is GET /api/v1/alerts/stream?since&site&min_severity. The caller
// authenticates; the hub checks the Origin against the request's host and
// AllowedOrigins before the upgrade (403 otherwise; no Origin is allowed,
// for non-browser clients).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.originAllowed(r) {
		wsHTTPError(w, http.StatusForbidden, "origin_forbidden", "origin not allowed")
		return
	}
	q := r.URL.Query()
	f := streamFilter{site: q.Get("site"), minRank: alerts.Severity("").Rank()}
	if s := q.Get("min_severity"); s != "" {
		rank := alerts.Severity(s).Rank()
		if rank > alerts.Minor.Rank() {
			wsHTTPError(w, http.StatusBadRequest, "bad_request", "min_severity must be critical, major or minor")
			return
		}
		f.minRank = rank
	}
	var since uint64
	resume := false
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			wsHTTPError(w, http.StatusBadRequest, "bad_request", "since must be a sequence number")
			return
		}
		since, resume = n, true
	}

	// A hub that has not subscribed to its journal yet (Redis down since
	// the node started) turns the client away after a short wait; the
	// desk retries with its backoff.
	wait := time.NewTimer(readyWait)
	defer wait.Stop()
	select {
	case <-h.ready:
	case <-wait.C:
		wsHTTPError(w, http.StatusServiceUnavailable, "unavailable", "the alert feed is not ready, try again")
		return
	case <-r.Context().Done():
		return
	}
	h.mu.Lock()
	stopped := h.stopped
	h.mu.Unlock()
	if stopped {
		wsHTTPError(w, http.StatusServiceUnavailable, "unavailable", "shutting down")
		return
	}

	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		CheckOrigin:     func(*http.Request) bool { return true }, // checked above
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	cl := &wsClient{
		remote: r.RemoteAddr,
		filter: f,
		queue:  make(chan *hubMsg, h.opts.SlowAfter),
		done:   make(chan struct{}),
	}
	start, err := h.register(cl)
	if err != nil {
		h.writeClose(conn, CloseGoingAway, "server shutting down")
		conn.Close()
		return
	}
	defer h.unregister(cl)
	h.serve(r.Context(), conn, cl, start, since, resume)
}

// serve runs one client until it or the hub ends it. start is the seq after
// which the client's queue has every change.
func (h *Hub) serve(reqCtx context.Context, conn *websocket.Conn, cl *wsClient, start, since uint64, resume bool) {
	ctx, cancel := context.WithCancel(reqCtx)
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		h.read(conn)
	}()
	closeSent := false
	defer func() {
		if closeSent {
			// The closing handshake: the client reads what it was sent,
			// the close frame, and answers it. Closing the socket at once
			// would reset it when the client's pongs or close reply arrive
			// unread, and the reset discards what the client had not read
			// yet, close frame included.
			t := time.NewTimer(closeGrace)
			select {
			case <-readerDone:
			case <-t.C:
			}
			t.Stop()
		}
		conn.Close()
		<-readerDone
	}()

	sent, err := h.hello(ctx, conn, cl, start, since, resume)
	if err != nil {
		closeSent = h.endClient(conn, cl, err)
		return
	}
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the reader failed: the peer is gone
		case <-cl.done:
			closeSent = h.writeClose(conn, cl.code, cl.reason)
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteTimeout)); err != nil {
				return
			}
		case m := <-cl.queue:
			select {
			case <-cl.done:
				// Given up on: send the close frame now, not after the
				// rest of the queue, so a client that is reading again
				// sees 4008 as soon as it drains its socket.
				closeSent = h.writeClose(conn, cl.code, cl.reason)
				return
			default:
			}
			if !m.camera && m.seq <= sent {
				continue // already replayed
			}
			if err := h.write(conn, m.data); err != nil {
				return
			}
			if !m.camera {
				sent = m.seq
				if !m.at.IsZero() {
					h.delivery.Observe(h.opts.Clock().Sub(m.at).Seconds())
				}
			}
		}
	}
}

// hello sends the hello message and, when the client resumes, the replay of
// every change after since up to start. It returns the seq the client has.
func (h *Hub) hello(ctx context.Context, conn *websocket.Conn, cl *wsClient, start, since uint64, resume bool) (uint64, error) {
	if err := h.writeJSON(conn, struct {
		Kind string `json:"kind"`
		Seq  uint64 `json:"seq"`
	}{"hello", start}); err != nil {
		return 0, err
	}
	if !resume || since == start {
		// A fresh client loads the list after hello and applies what
		// follows; a client that has everything continues live.
		return start, nil
	}
	if since > start {
		// A since ahead of the hub (the journal was restored from an older
		// copy, or the client talked to another journal) names changes
		// this journal does not have: the client's view cannot be trusted
		// and its "seq <= since" filter would drop live changes. It
		// reloads the list and continues live from start.
		return start, h.writeJSON(conn, struct {
			Kind string `json:"kind"`
		}{"reset"})
	}
	sent := since
	for sent < start {
		select {
		case <-cl.done:
			return sent, errClientClosed
		default:
		}
		page, err := h.opts.Journal.Since(ctx, sent, h.opts.ReplayPage)
		if errors.Is(err, alerts.ErrTooOld) {
			// The client's view cannot be completed: it reloads the list
			// and continues live from start.
			if err := h.writeJSON(conn, struct {
				Kind string `json:"kind"`
			}{"reset"}); err != nil {
				return 0, err
			}
			return start, nil
		}
		if err != nil {
			return sent, err
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if c.Seq <= sent {
				continue
			}
			sent = c.Seq
			m, err := newHubMsg(c)
			if err != nil {
				return sent, err
			}
			if !cl.filter.match(m) {
				continue
			}
			if err := h.write(conn, m.data); err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

var errClientClosed = errors.New("wsClient closed by hub")

// endClient ends a client whose hello or replay failed; it reports
// whether a close frame was sent.
func (h *Hub) endClient(conn *websocket.Conn, cl *wsClient, err error) bool {
	select {
	case <-cl.done:
		return h.writeClose(conn, cl.code, cl.reason)
	default:
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, errClientClosed) {
		h.log.Warn("websocket replay failed", "remote", cl.remote, "err", err)
		return h.writeClose(conn, websocket.CloseInternalServerErr, "replay failed")
	}
	return false
}

// read discards what the client sends and keeps the read deadline moving
// while pongs arrive; it returns when the connection fails or goes quiet.
func (h *Hub) read(conn *websocket.Conn) {
	conn.SetReadLimit(4096)
	wait := 2 * h.opts.PingInterval
	conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(wait))
	})
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(wait))
	}
}

func (h *Hub) write(conn *websocket.Conn, data []byte) error {
	conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	return conn.WriteMessage(websocket.TextMessage, data)
}

func (h *Hub) writeJSON(conn *websocket.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.write(conn, data)
}

// readyWait bounds how long a connecting client waits for the hub's first
// journal subscription.
const readyWait = 3 * time.Second

// closeGrace bounds how long a client has to answer the close frame.
const closeGrace = 2 * time.Second

// writeClose sends a close frame and reports whether it was sent.
func (h *Hub) writeClose(conn *websocket.Conn, code int, reason string) bool {
	return conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second)) == nil
}

// originAllowed: no Origin (not a browser), the request's own host, or an
// allowed origin.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range h.opts.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func wsHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": code})
}
