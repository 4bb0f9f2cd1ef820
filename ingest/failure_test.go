package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/prometheus/client_golang/prometheus"
)

func TestClassify(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name        string
		err         error
		first       []byte
		reason, msg string
	}{
		{"401", fmt.Errorf("camera c: describe: %w", liberrors.ErrClientBadStatusCode{Code: 401, Message: "Unauthorized"}), nil,
			ReasonUnauthorized, "the camera refused the username and password (401 Unauthorized)"},
		{"404", liberrors.ErrClientBadStatusCode{Code: 404, Message: "Not Found"}, nil, ReasonRejected, "the camera answered 404 Not Found"},
		{"refused", fmt.Errorf("camera c: read: %w", dial), nil, ReasonConnect, "camera c: read: dial tcp: connect: connection refused"},
		{"request timed out", liberrors.ErrClientRequestTimedOut{}, nil, ReasonTimeout, "request timed out"},
		{"read deadline", fmt.Errorf("camera c: describe: %w", os.ErrDeadlineExceeded), nil, ReasonTimeout, "camera c: describe: i/o timeout"},
		{"HTTP answer", errors.New("camera c: describe: expected 'RTSP/1.0', got [72 84 84 80 47 49 46 49]"),
			[]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), ReasonNotRTSP, "answered HTTP/1.1 400 Bad Request, not RTSP"},
		{"HTTP answer not kept", errors.New("camera c: describe: expected 'RTSP/1.0', got [72 84 84 80 47 49 46 49]"), nil,
			ReasonNotRTSP, "answered HTTP/1.1, not RTSP"},
		{"binary answer", errors.New("camera c: describe: expected 'RTSP/1.0', got [0 1 2]"), []byte{0, 1, 2, '\n'},
			ReasonNotRTSP, "the server does not speak RTSP"},
		{"no video", fmt.Errorf("camera c: describe: %w (the stream has MPEG-4 Audio)", errNoVideo), nil,
			ReasonCodec, "camera c: describe: no H.264 or H.265 video track (the stream has MPEG-4 Audio)"},
		{"stall", fmt.Errorf("camera c: read: %w", errStall), nil, ReasonStall, "camera c: read: stream stalled"},
		{"other", errors.New("EOF"), nil, ReasonDisconnect, "EOF"},
		{"HTTP answer skipped until a timeout", fmt.Errorf("camera c: describe: %w", liberrors.ErrClientRequestTimedOut{}),
			[]byte("HTTP/1.1 400 Bad Request\r\n"), ReasonNotRTSP, "answered HTTP/1.1 400 Bad Request, not RTSP"},
		{"RTSP answer then a timeout", liberrors.ErrClientRequestTimedOut{}, []byte("RTSP/1.0 200 OK\r\n"), ReasonTimeout, "request timed out"},
		{"short RTSP answer", errors.New("EOF"), []byte("RT"), ReasonDisconnect, "EOF"},
		{"interleaved frame", errors.New("EOF"), []byte("$\x00\x00\x04"), ReasonDisconnect, "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := classify(tc.err, tc.first)
			if reason != tc.reason || msg != tc.msg {
				t.Errorf("classify = %q, %q; want %q, %q", reason, msg, tc.reason, tc.msg)
			}
		})
	}
}

// describeAnswer and protocolFromError read bytes a foreign server sent.
func FuzzDescribeAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00})
	f.Add([]byte(strings.Repeat("A", 300)))
	f.Add([]byte("\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range []string{describeAnswer(b), protocolFromError("expected 'RTSP/1.0', got " + fmt.Sprint(b))} {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxAnswer+1 || strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("describe(%q) = %q", b, s)
			}
		}
		if got, want := protocolFromError("expected 'RTSP/1.0', got "+fmt.Sprint(b)), describeAnswer(b); len(b) > 0 && got != want {
			t.Fatalf("from the error %q, from the bytes %q", got, want)
		}
	})
}

// fakeServer answers every RTSP connection with answer(request) until the
// test ends.
func fakeServer(t *testing.T, answer func(method string, cseq string) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					var method, cseq string
					for i := 0; ; i++ {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						line = strings.TrimSpace(line)
						if line == "" {
							break
						}
						if i == 0 {
							method, _, _ = strings.Cut(line, " ")
						} else if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
							cseq = v
						}
					}
					out := answer(method, cseq)
					if out == "" {
						<-t.Context().Done() // never answer
						return
					}
					if _, err := conn.Write([]byte(out)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "rtsp://" + l.Addr().String() + "/cam"
}

// Every reason of a failed camera shows in last_error through a real
// connection on loopback.
func TestLastErrorReasons(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "rtsp://" + addr + "/cam"
	}
	http400 := func(string, string) string {
		return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	}
	const mjpegSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:trackID=0\r\n"
	mjpeg := func(method, cseq string) string {
		switch method {
		case "DESCRIBE":
			return "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nContent-Base: rtsp://127.0.0.1/cam/\r\nContent-Type: application/sdp\r\nContent-Length: " +
				fmt.Sprint(len(mjpegSDP)) + "\r\n\r\n" + mjpegSDP
		default:
			return "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
		}
	}
	silent := func(string, string) string { return "" }
	authSrv := startCameraServer(t, withAuth("admin", "right-pass"))

	tests := []struct {
		name, url, pass string
		reason, msg     string // msg: a substring
	}{
		{"connect", closed(), "", ReasonConnect, "connection refused"},
		{"not rtsp", fakeServer(t, http400), "", ReasonNotRTSP, "answered HTTP/1.1 400 Bad Request, not RTSP"},
		{"codec", fakeServer(t, mjpeg), "", ReasonCodec, "no H.264 or H.265 video track (the stream has M-JPEG)"},
		{"timeout", fakeServer(t, silent), "", ReasonTimeout, ""},
		{"unauthorized", authSrv.URL(), "wrong-pass", ReasonUnauthorized, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.ReadTimeout = 300 * time.Millisecond
			opts.OfflineAfter = time.Hour
			cam := Camera{ID: "cam", Name: "cam", URL: tc.url, Transport: TransportTCP, Enabled: true}
			if tc.pass != "" {
				cam.Username, cam.Password = "admin", tc.pass
			}
			h := startStreams(t, opts, cam)
			var st CameraStatus
			waitFor(t, 10*time.Second, "last_error", func() bool {
				st = h.status(t, "cam")
				return st.LastError != nil
			})
			e := st.LastError
			if e.Reason != tc.reason || !strings.Contains(e.Message, tc.msg) || e.At.IsZero() {
				t.Errorf("last_error %+v, want reason %s and %q", e, tc.reason, tc.msg)
			}
			if strings.Contains(e.Message, "[72 84") || strings.Contains(e.Message, "wrong-pass") {
				t.Errorf("message %q shows raw bytes or the password", e.Message)
			}
			if st.Status != StatusConnecting || st.Attempts < 1 || st.Reconnects != 0 || st.Recording {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newTestCamera builds a camera of Streams s without running it.
func newTestCamera(t *testing.T, clock *fakeClock) (*Streams, *camera) {
	t.Helper()
	s, err := New(Options{Registerer: prometheus.NewRegistry(), OfflineAfter: 30 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	spec := Camera{ID: "cam", Name: "cam", URL: "rtsp://192.0.2.1/s", Transport: TransportAuto, Enabled: true}
	if _, err := s.Apply([]Camera{spec}); err != nil {
		t.Fatal(err)
	}
	c := s.newCamera(spec)
	s.mu.Lock()
	s.cams["cam"] = c
	s.mu.Unlock()
	return s, c
}

// A camera is connecting until offline_after passed without a session, and
// offline only then; reconnects count sessions that came back.
func TestStatusConnectingUntilOfflineAfter(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at     time.Duration
		do     string // start, fail, alive, tick
		status string
		report string // "", "offline", "online" or "first" (the first session's online)
	}
	tests := []struct {
		name           string
		steps          []step
		reconnects     int
		lastErrorAfter bool
	}{
		{"never connects", []step{
			{0, "start", StatusConnecting, ""},
			{time.Second, "fail", StatusConnecting, ""},
			{29 * time.Second, "tick", StatusConnecting, ""},
			{30 * time.Second, "tick", StatusOffline, "offline"},
			{31 * time.Second, "fail", StatusOffline, ""},
			{90 * time.Second, "tick", StatusOffline, ""},
		}, 0, true},
		{"lost and back within offline_after", []step{
			{0, "start", StatusConnecting, ""},
			{time.Second, "alive", StatusOnline, "first"},
			{time.Minute, "fail", StatusConnecting, ""},
			{time.Minute + 29*time.Second, "tick", StatusConnecting, ""},
			{time.Minute + 29*time.Second, "alive", StatusOnline, ""},
			{5 * time.Minute, "tick", StatusOnline, ""},
		}, 1, true},
		{"lost for good, then back", []step{
			{0, "start", StatusConnecting, ""},
			{time.Second, "alive", StatusOnline, "first"},
			{time.Minute, "fail", StatusConnecting, ""},
			{time.Minute + 30*time.Second, "tick", StatusOffline, "offline"},
			{10 * time.Minute, "alive", StatusOnline, "online"},
		}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			var reports []CameraState
			s, c := newTestCamera(t, clock)
			s.opts.OnState = func(st CameraState) { reports = append(reports, st) }
			for i, st := range tc.steps {
				now := at(st.at)
				clock.Set(now)
				n := len(reports)
				switch st.do {
				case "start":
					c.starting(now)
				case "fail":
					c.failed(fmt.Errorf("camera cam: start: %w", refused))
				case "alive":
					c.alive(now)
				case "tick":
					c.mu.Lock()
					r := c.offlineLocked(now)
					c.mu.Unlock()
					if r != nil {
						s.opts.OnState(*r)
					}
				}
				got, err := s.Status("cam")
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != st.status {
					t.Fatalf("step %d (%s at %v): status %s, want %s", i, st.do, st.at, got.Status, st.status)
				}
				switch {
				case st.report == "" && len(reports) != n:
					t.Fatalf("step %d: unexpected report %+v", i, reports[len(reports)-1])
				case st.report != "" && len(reports) != n+1:
					t.Fatalf("step %d: no %s report", i, st.report)
				case st.report == "offline" && (reports[n].Online || reports[n].Reason != ReasonConnect || reports[n].Message == ""):
					t.Fatalf("step %d: report %+v", i, reports[n])
				case st.report == "online" && (!reports[n].Online || reports[n].First):
					t.Fatalf("step %d: report %+v", i, reports[n])
				case st.report == "first" && (!reports[n].Online || !reports[n].First):
					t.Fatalf("step %d: report %+v", i, reports[n])
				}
			}
			got, _ := s.Status("cam")
			if got.Reconnects != tc.reconnects {
				t.Errorf("reconnects %d, want %d", got.Reconnects, tc.reconnects)
			}
			if (got.LastError != nil) != tc.lastErrorAfter || got.LastError.Reason != ReasonConnect {
				t.Errorf("last_error %+v", got.LastError)
			}
		})
	}
}

// recording is true only while frames were handed to the recorder in the
// last 10 s.
func TestRecordingOnlyWhileFramesAreWritten(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	s, _ := newTestCamera(t, clock)
	recording := func() bool {
		st, err := s.Status("cam")
		if err != nil {
			t.Fatal(err)
		}
		return st.Recording
	}
	steps := []struct {
		name string
		at   time.Duration
		do   func()
		want bool
	}{
		{"configured, nothing written", 0, func() { s.SetRecording("cam", true) }, false},
		{"a frame written", time.Second, func() { s.Wrote("cam") }, true},
		{"9.9 s later", time.Second + 9900*time.Millisecond, func() {}, true},
		{"10 s later", 11 * time.Second, func() {}, false},
		{"frames again", 20 * time.Second, func() { s.Wrote("cam") }, true},
		{"recording switched off", 21 * time.Second, func() { s.SetRecording("cam", false) }, false},
		{"frames of a camera not recorded", 22 * time.Second, func() { s.Wrote("cam") }, false},
	}
	for _, st := range steps {
		clock.Set(t0.Add(st.at))
		st.do()
		if got := recording(); got != st.want {
			t.Fatalf("%s: recording %v, want %v", st.name, got, st.want)
		}
	}
}

// After 3 refused logins in a row the camera waits auth_retry between
// tries; any other failure or a session starts the count over.
func TestAuthFailuresInARow(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	_, c := newTestCamera(t, clock)
	c.starting(clock.Now())
	e401 := fmt.Errorf("camera cam: describe: %w", liberrors.ErrClientBadStatusCode{Code: 401, Message: "Unauthorized"})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	seq := []struct {
		err  error
		want int
	}{{e401, 1}, {e401, 2}, {refused, 0}, {e401, 1}, {e401, 2}, {e401, 3}, {e401, 4}, {nil, 0}, {e401, 1}}
	for i, s := range seq {
		if s.err == nil {
			c.alive(clock.Now())
			continue
		}
		if got := c.failed(s.err); got != s.want {
			t.Fatalf("step %d: %d in a row, want %d", i, got, s.want)
		}
	}
}

// A camera with a wrong password is tried 3 times, then only every
// auth_retry (its own, or the default); its offline report says why.
func TestAuthRetryBackoff(t *testing.T) {
	const pass = "right-pass-123"
	srv := startCameraServer(t, withAuth("admin", pass))
	for _, tc := range []struct {
		name      string
		camRetry  time.Duration
		wantPause time.Duration
	}{
		{"default auth_retry", 0, time.Hour},
		{"camera's auth_retry", 2 * time.Hour, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.AuthRetry = time.Hour
			var mu sync.Mutex
			var pauses []time.Duration
			var states []CameraState
			opts.After = func(d time.Duration) <-chan time.Time {
				mu.Lock()
				pauses = append(pauses, d)
				mu.Unlock()
				if d >= time.Hour {
					return nil // the test ends first
				}
				return time.After(d)
			}
			opts.OnState = func(s CameraState) {
				mu.Lock()
				defer mu.Unlock()
				states = append(states, s)
			}
			bad := camFor("bad", srv, TransportTCP)
			bad.Username, bad.Password, bad.AuthRetry = "admin", "wrong-"+pass, tc.camRetry
			h := startStreams(t, opts, bad)
			waitFor(t, 10*time.Second, "the long pause", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(pauses) == 3
			})
			h.waitStatus(t, "bad", StatusOffline, 10*time.Second)
			// The offline report reaches OnState on its own goroutine.
			waitFor(t, 10*time.Second, "the offline report", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(states) > 0
			})
			st := h.status(t, "bad")
			mu.Lock()
			defer mu.Unlock()
			if pauses[0] >= time.Second || pauses[1] >= time.Second || pauses[2] != tc.wantPause {
				t.Errorf("pauses %v, want two short ones and %v", pauses, tc.wantPause)
			}
			if st.Attempts != 3 || st.LastError == nil || st.LastError.Reason != ReasonUnauthorized {
				t.Errorf("status %+v", st)
			}
			if len(states) != 1 || states[0].Online || states[0].Reason != ReasonUnauthorized || !strings.Contains(states[0].Message, "401") {
				t.Errorf("offline report %+v", states)
			}
			if n := strings.Count(h.logs.String(), "trying again only every auth_retry"); n != 1 {
				t.Errorf("%d auth_retry log lines, want 1", n)
			}
		})
	}
}
