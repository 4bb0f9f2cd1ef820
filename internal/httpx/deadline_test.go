package httpx

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineRecorder records the read deadlines a handler sets through
// http.ResponseController.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

func TestBodyDeadlineOnlyWhileReadingABody(t *testing.T) {
	readAll := func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }
	readSome := func(w http.ResponseWriter, r *http.Request) { r.Body.Read(make([]byte, 2)) }
	cases := []struct {
		name, method string
		body         io.Reader
		handler      http.HandlerFunc
		want         []bool // per SetReadDeadline call: a deadline (true) or cleared (false)
	}{
		{"post read to the end: set, then cleared", "POST", strings.NewReader(`{"token":"x"}`), readAll, []bool{true, false}},
		{"post read in part: set", "POST", strings.NewReader(`{"token":"x"}`), readSome, []bool{true}},
		{"post without a body: none", "POST", nil, readAll, nil},
		{"get (websocket, download, export): none", "GET", nil, readAll, nil},
		{"get with a body: none", "GET", strings.NewReader("x"), readSome, nil},
		{"delete with a body: set, then cleared", "DELETE", strings.NewReader("{}"), readAll, []bool{true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
			BodyDeadline(time.Minute, c.handler).ServeHTTP(w, httptest.NewRequest(c.method, "/", c.body))
			if len(w.deadlines) != len(c.want) {
				t.Fatalf("deadlines %v, want %v", w.deadlines, c.want)
			}
			for i, set := range c.want {
				if w.deadlines[i].IsZero() == set {
					t.Fatalf("deadline %d = %v, want set %v", i, w.deadlines[i], set)
				}
			}
		})
	}
}

// A body that trickles past the deadline fails the read: the handler
// answers 408 and the connection closes.
func TestBodyDeadlineEndsTricklingBody(t *testing.T) {
	h := BodyDeadline(50*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct{ Token string }
		if err := DecodeJSON(w, r, 4096, &v); err != nil {
			DecodeError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The headers and the first byte of a 100-byte body, then nothing.
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's bound, not the server's
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open at the test's bound")
	}
}
