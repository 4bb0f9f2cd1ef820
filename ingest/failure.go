package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// Reasons a session failed, as LastError.Reason and CameraState.Reason
// give them.
const (
	ReasonUnauthorized = "unauthorized" // the camera answered 401 to the credentials
	ReasonConnect      = "connect"      // no TCP connection (refused, unreachable)
	ReasonTimeout      = "timeout"      // connecting or a request took longer than the read timeout
	ReasonNotRTSP      = "not_rtsp"     // the server answered in another protocol (an HTTP port, say)
	ReasonCodec        = "codec"        // the stream has no H.264 or H.265 video track
	ReasonRejected     = "rejected"     // another RTSP error status (404, 454, ...)
	ReasonStall        = "stall"        // the stream stopped delivering video
	ReasonDisconnect   = "disconnect"   // the session ended otherwise
)

// LastError is why a camera's last session or connection attempt failed.
type LastError struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"` // for people; free of credentials
}

// errNoVideo ends a session whose stream has no track ingest can record.
var errNoVideo = errors.New("no H.264 or H.265 video track")

// classify names the cause of a failed session and describes it for an
// administrator. first holds the first bytes the server sent over plain
// RTSP (nil over TLS), to say what answered when it was not RTSP. The
// message is redacted by the caller.
func classify(err error, first []byte) (reason, message string) {
	var bad liberrors.ErrClientBadStatusCode
	var op *net.OpError
	var nerr net.Error
	switch {
	case errors.Is(err, errStall):
		return ReasonStall, err.Error()
	case errors.As(err, &bad) && bad.Code == 401:
		return ReasonUnauthorized, "the camera refused the username and password (401 Unauthorized)"
	case errors.As(err, &bad):
		return ReasonRejected, fmt.Sprintf("the camera answered %d %s", bad.Code, bad.Message)
	case notRTSP(err) || len(first) > 0 && !looksRTSP(first):
		// gortsplib skips bytes it does not recognize and then times
		// out, or prints the protocol it got as decimal bytes.
		answer := describeAnswer(first)
		if answer == "" {
			answer = protocolFromError(err.Error())
		}
		if answer == "" {
			return ReasonNotRTSP, "the server does not speak RTSP"
		}
		return ReasonNotRTSP, "answered " + answer + ", not RTSP"
	case errors.Is(err, errNoVideo):
		return ReasonCodec, err.Error()
	case errors.As(err, &op) && op.Op == "dial" && !op.Timeout():
		return ReasonConnect, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, new(liberrors.ErrClientRequestTimedOut)),
		errors.As(err, new(liberrors.ErrClientTCPTimeout)),
		errors.As(err, new(liberrors.ErrClientUDPTimeout)),
		errors.As(err, &nerr) && nerr.Timeout():
		return ReasonTimeout, err.Error()
	default:
		return ReasonDisconnect, err.Error()
	}
}

// looksRTSP reports whether a server's first bytes start an RTSP response
// or an interleaved frame.
func looksRTSP(b []byte) bool {
	return b[0] == '$' || strings.HasPrefix(string(b), "RTSP/"[:min(len(b), 5)])
}

// notRTSP reports gortsplib's error for a response that does not start
// with "RTSP/1.0".
func notRTSP(err error) bool {
	return strings.Contains(err.Error(), "expected 'RTSP/1.0', got ")
}

// protocolFromError reads the protocol gortsplib prints as decimal bytes
// ("expected 'RTSP/1.0', got [72 84 84 80 47 49 46 49]") back as text.
func protocolFromError(msg string) string {
	_, rest, ok := strings.Cut(msg, "expected 'RTSP/1.0', got [")
	if !ok {
		return ""
	}
	list, _, ok := strings.Cut(rest, "]")
	if !ok {
		return ""
	}
	var b []byte
	for _, f := range strings.Fields(list) {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			return ""
		}
		b = append(b, byte(n))
	}
	return describeAnswer(b)
}

// maxAnswer bounds what describeAnswer shows of a foreign server's answer.
const maxAnswer = 64

// describeAnswer returns the first line of what a server sent, as printable
// ASCII of at most maxAnswer characters ("HTTP/1.1 400 Bad Request"), or ""
// when there is nothing printable. Other bytes show as '?'.
func describeAnswer(b []byte) string {
	if i := strings.IndexAny(string(b), "\r\n"); i >= 0 {
		b = b[:i]
	}
	var out strings.Builder
	for _, c := range b {
		if out.Len() >= maxAnswer {
			out.WriteString("…")
			break
		}
		if c >= 0x20 && c < 0x7f {
			out.WriteByte(c)
		} else {
			out.WriteByte('?')
		}
	}
	s := strings.TrimSpace(out.String())
	if strings.Trim(s, "?…") == "" {
		return ""
	}
	return s
}

// firstBytes keeps the first bytes read from a connection.
type firstBytes struct {
	full atomic.Bool // spares the media path the lock once the bytes are kept
	mu   sync.Mutex
	buf  []byte
}

func (f *firstBytes) add(p []byte) {
	if f.full.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := 256 - len(f.buf); n > 0 {
		f.buf = append(f.buf, p[:min(n, len(p))]...)
	}
	if len(f.buf) >= 256 {
		f.full.Store(true)
	}
}

func (f *firstBytes) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.buf...)
}

// recordingConn is a connection that keeps its first bytes read.
type recordingConn struct {
	net.Conn
	first *firstBytes
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.first.add(p[:n])
	}
	return n, err
}
