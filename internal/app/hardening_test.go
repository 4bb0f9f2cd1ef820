package app

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

	"vigil/internal/auth"
)

// A desk session made with a token's old secret ends when the secret is
// replaced (same name and role) and the configuration reloaded.
func TestSessionEndsWhenSecretRotates(t *testing.T) {
	cfg := writeConfig(t, "")
	a := startApp(t, cfg, io.Discard)
	resp, err := http.Post(a.URL()+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+deskToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0]
	withCookie := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
		req.AddCookie(cookie)
		if method != "GET" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", a.URL())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie("GET", "/api/v1/alerts", ""); code != 200 {
		t.Fatalf("alerts with the session: %d", code)
	}

	vigil, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	rotated := strings.Replace(string(vigil), auth.HashToken(deskToken), auth.HashToken("desk-token-rotated"), 1)
	if rotated == string(vigil) {
		t.Fatal("desk token not found in the config")
	}
	if err := os.WriteFile(cfg.Path, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", a.URL()+"/api/v1/admin/reload", adminToken, ""); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, _ := call(t, "GET", a.URL()+"/api/v1/alerts", "desk-token-rotated", ""); code != 200 {
		t.Fatalf("new secret: %d", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/alerts", ""},
		{"GET", "/api/v1/session", ""},
		{"POST", "/api/v1/alerts/01JD000000000000000000000/ack", `{"version":1}`},
	} {
		if code := withCookie(c.method, c.path, c.body); code != 401 {
			t.Errorf("%s %s with a session of the old secret: %d, want 401", c.method, c.path, code)
		}
	}
}

// Slow and idle clients cannot hold the server: a trickling body is cut at
// its deadline, an oversized header block is refused, and anonymous
// connections past their cap close the oldest of them while an
// authenticated client keeps its connection.
func TestSlowClientsEndToEnd(t *testing.T) {
	cfg := writeConfig(t, "http: {max_conns: 8}\n") // 2 unauthenticated
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BodyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runStoppableApp(t, a)

	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second)) // the test's bound
		return c
	}
	closed := func(c net.Conn) bool {
		_, err := c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return err != nil && !(ok && ne.Timeout())
	}

	t.Run("trickling login body", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"to")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", resp.StatusCode)
		}
		if !closed(c) {
			t.Fatal("connection kept open")
		}
	})

	t.Run("header block too large", func(t *testing.T) {
		req, _ := http.NewRequest("GET", a.URL()+"/healthz", nil)
		req.Header.Set("X-Filler", strings.Repeat("a", 100<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})

	t.Run("anonymous connections capped", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer client.CloseIdleConnections()
		authed := func() (reused bool) {
			t.Helper()
			req, _ := http.NewRequest("GET", a.URL()+"/api/v1/units", nil)
			req.Header.Set("Authorization", "Bearer "+deskToken)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
			}))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("units: %d", resp.StatusCode)
			}
			return reused
		}
		// A camera posting with its webhook key is authenticated too.
		camera := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer camera.CloseIdleConnections()
		hook := func(key string) (reused bool) {
			t.Helper()
			req, _ := http.NewRequest("POST", a.URL()+"/api/v1/hooks/hall-entrance/events?key="+key, strings.NewReader(`{"type":"motion","state":"pulse"}`))
			req.Header.Set("Content-Type", "application/json")
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
			}))
			resp, err := camera.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Fatalf("hook: %d", resp.StatusCode)
			}
			return reused
		}
		authed()
		hook(hookSecret)
		idle := []net.Conn{dial(), dial(), dial(), dial()}
		// The first two were shed when the third and fourth arrived.
		for i, c := range idle[:2] {
			if !closed(c) {
				t.Fatalf("anonymous connection %d kept past the cap", i)
			}
		}
		if !authed() {
			t.Fatal("the authenticated connection was shed")
		}
		if !hook(hookSecret) {
			t.Fatal("the camera's connection was shed")
		}
		if s := a.conns.Stats(); s.Unauthenticated > 2 || s.Shed < 2 {
			t.Fatalf("connections %+v", s)
		}
		if code, _ := call(t, "GET", a.URL()+"/healthz", "", ""); code != 200 {
			t.Fatalf("healthz: %d", code)
		}
	})
}
