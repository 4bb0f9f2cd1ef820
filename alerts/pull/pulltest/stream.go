// Package pulltest serves the event protocols alerts/pull speaks, for tests
// and the camera simulator: a Hikvision ISAPI alertStream or Dahua
// eventManager attach stream (multipart, HTTP digest authentication) and
// an ONVIF device with a PullPoint event service (SOAP, WS-Security
// UsernameToken digest checked against its own clock). They speak the wire
// formats as the vendors document them; they are not the vendors' code.
package pulltest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Stream paths.
const (
	HikvisionPath = "/ISAPI/Event/notification/alertStream"
	DahuaPath     = "/cgi-bin/eventManager.cgi"
)

// Stream serves a never-ending multipart event stream behind digest
// authentication, at HikvisionPath and DahuaPath. Parts given to Send go to
// every connected client.
type Stream struct {
	Username, Password string
	// Boundary of the multipart stream; default "boundary" (Hikvision
	// firmware writes "boundary", Dahua "myboundary").
	Boundary string
	// MediaType of the stream; default multipart/x-mixed-replace (Dahua,
	// most Hikvision), some Hikvision firmware writes multipart/mixed.
	MediaType string

	mu        sync.Mutex
	nonce     string
	clients   map[int]chan string
	next      int
	attempts  int
	refused   int
	connected chan struct{} // closed and replaced on every new stream
}

// NewStream returns a stream server for the given account.
func NewStream(user, pass string) *Stream {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &Stream{Username: user, Password: pass, Boundary: "boundary", nonce: hex.EncodeToString(b[:]),
		clients: map[int]chan string{}, connected: make(chan struct{})}
}

// Connected returns a channel closed when the next client stream starts.
func (s *Stream) Connected() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Counts returns the requests seen and those refused for their credentials.
func (s *Stream) Counts() (attempts, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts, s.refused
}

// Send writes one part (its Content-Type and body) to every client.
func (s *Stream) Send(contentType, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := fmt.Sprintf("Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s\r\n", contentType, len(body), body)
	for _, ch := range s.clients {
		select {
		case ch <- p:
		default: // a client that does not read loses parts, like a camera's
		}
	}
}

// CloseStreams ends every client stream from the server side.
func (s *Stream) CloseStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ch := range s.clients {
		close(ch)
		delete(s.clients, id)
	}
}

// ServeHTTP serves both stream paths.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.attempts++
	s.mu.Unlock()
	if r.URL.Path != HikvisionPath && r.URL.Path != DahuaPath {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == DahuaPath && r.URL.Query().Get("action") != "attach" {
		http.Error(w, "Error\r\nBad Request!", http.StatusBadRequest)
		return
	}
	if !s.authorized(r) {
		s.mu.Lock()
		if r.Header.Get("Authorization") != "" {
			s.refused++
		}
		s.mu.Unlock()
		challenge(w, s.nonce)
		return
	}
	ch := make(chan string, 64)
	s.mu.Lock()
	id := s.next
	s.next++
	s.clients[id] = ch
	close(s.connected)
	s.connected = make(chan struct{})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.clients[id] == ch {
			delete(s.clients, id)
		}
		s.mu.Unlock()
	}()
	mt := s.MediaType
	if mt == "" {
		mt = "multipart/x-mixed-replace"
	}
	w.Header().Set("Content-Type", mt+"; boundary="+s.Boundary)
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	// Write the first delimiter at once, as cameras do.
	fmt.Fprintf(w, "--%s\r\n", s.Boundary)
	if fl != nil {
		fl.Flush()
	}
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "%s--%s\r\n", p, s.Boundary)
			if fl != nil {
				fl.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

// authorized checks the Digest Authorization header.
func (s *Stream) authorized(r *http.Request) bool {
	return digestOK(r, s.Username, s.Password, s.nonce)
}

// challenge answers 401 with a Digest challenge.
func challenge(w http.ResponseWriter, nonce string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Digest realm="IP Camera", qop="auth", nonce=%q, opaque="", algorithm=MD5`, nonce))
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

// digestOK checks a Digest Authorization header (RFC 7616, MD5, qop auth or
// none) against the account and the nonce the server gave.
func digestOK(r *http.Request, user, pass, nonce string) bool {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return false
	}
	f := map[string]string{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		f[strings.ToLower(k)] = strings.Trim(v, `"`)
	}
	uri := r.RequestURI // as sent, also behind http.StripPrefix
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if f["username"] != user || f["nonce"] != nonce || f["uri"] != uri {
		return false
	}
	md := func(x string) string { h := md5.Sum([]byte(x)); return hex.EncodeToString(h[:]) }
	ha1 := md(user + ":" + f["realm"] + ":" + pass)
	ha2 := md(r.Method + ":" + f["uri"])
	want := md(ha1 + ":" + nonce + ":" + ha2)
	if f["qop"] == "auth" {
		want = md(ha1 + ":" + nonce + ":" + f["nc"] + ":" + f["cnonce"] + ":auth:" + ha2)
	}
	return f["realm"] == "IP Camera" && f["response"] == want
}
