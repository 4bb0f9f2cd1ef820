package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestAuth(t *testing.T, now func() time.Time) *Authenticator {
	t.Helper()
	a, err := New(Options{Now: now, Tokens: []TokenSpec{
		{Name: "desk-1", Role: Desk, SHA256: HashToken("desk-secret")},
		{Name: "inv", Role: Investigator, Token: "inv-secret"},
		{Name: "ops", Role: Admin, Token: "admin-secret"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewRejectsBadSpecs(t *testing.T) {
	cases := map[string]TokenSpec{
		"no secret":  {Name: "a", Role: Desk},
		"both":       {Name: "a", Role: Desk, Token: "x", SHA256: HashToken("x")},
		"bad hex":    {Name: "a", Role: Desk, SHA256: "zz"},
		"short hex":  {Name: "a", Role: Desk, SHA256: "abcd"},
		"bad role":   {Name: "a", Role: "root", Token: "x"},
		"empty name": {Role: Desk, Token: "x"},
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Options{Tokens: []TokenSpec{spec}}); err == nil {
				t.Fatal("want error")
			}
		})
	}
	if _, err := New(Options{Tokens: []TokenSpec{{Name: "a", Role: Desk, Token: "x"}, {Name: "a", Role: Desk, Token: "y"}}}); err == nil {
		t.Fatal("duplicate names accepted")
	}
}

func TestRequire(t *testing.T) {
	a := newTestAuth(t, nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(Actor(r))) })
	h := a.Require(ok, Investigator)
	cases := []struct {
		name, header string
		want         int
		body         string
	}{
		{"no token", "", 401, `"code":"unauthorized"`},
		{"wrong token", "Bearer nope", 401, `"code":"unauthorized"`},
		{"basic scheme", "Basic ZGVzazpkZXNr", 401, `"code":"unauthorized"`},
		{"desk on investigator route", "Bearer desk-secret", 403, `"code":"forbidden"`},
		{"investigator", "Bearer inv-secret", 200, "inv"},
		{"admin may do all", "bearer admin-secret", 200, "ops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.body) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body.String(), c.want, c.body)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	a := newTestAuth(t, func() time.Time { return now })
	sh := a.SessionHandler()

	w := httptest.NewRecorder()
	sh.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"token":"wrong"}`)))
	if w.Code != 401 {
		t.Fatalf("bad token: %d", w.Code)
	}

	w = httptest.NewRecorder()
	sh.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"token":"desk-secret"}`)))
	if w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", cookies)
	}
	if strings.Contains(cookies[0].Value, "desk-secret") {
		t.Fatal("cookie carries the token")
	}
	var p Principal
	json.Unmarshal(w.Body.Bytes(), &p)
	if p.Name != "desk-1" || p.Role != Desk {
		t.Fatalf("principal %+v", p)
	}

	h := a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Desk)
	req := func() int {
		r := httptest.NewRequest("GET", "/x", nil)
		r.AddCookie(cookies[0])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := req(); c != 200 {
		t.Fatalf("with cookie: %d", c)
	}
	now = now.Add(13 * time.Hour)
	if c := req(); c != 401 {
		t.Fatalf("expired cookie: %d", c)
	}
	now = now.Add(-13 * time.Hour)

	// Logout ends the session.
	w = httptest.NewRecorder()
	r := httptest.NewRequest("DELETE", "/api/v1/session", nil)
	r.AddCookie(cookies[0])
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "http://example.com")
	sh.ServeHTTP(w, r)
	if w.Code != 204 {
		t.Fatalf("logout: %d", w.Code)
	}
	if c := req(); c != 401 {
		t.Fatalf("after logout: %d", c)
	}
}

func TestSessionRejectsOversizedBody(t *testing.T) {
	a := newTestAuth(t, nil)
	w := httptest.NewRecorder()
	body := `{"token":"` + strings.Repeat("a", 10000) + `"}`
	a.SessionHandler().ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(body)))
	if w.Code != 413 {
		t.Fatalf("got %d", w.Code)
	}
}

func TestSetTokensRevokes(t *testing.T) {
	a := newTestAuth(t, nil)
	w := httptest.NewRecorder()
	a.SessionHandler().ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"token":"desk-secret"}`)))
	cookie := w.Result().Cookies()[0]
	if err := a.SetTokens([]TokenSpec{{Name: "ops", Role: Admin, Token: "admin-secret"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Check("desk-secret"); ok {
		t.Fatal("revoked token still accepted")
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	if _, ok := a.Authenticate(r); ok {
		t.Fatal("session of a revoked token still valid")
	}
	if p, ok := a.Check("admin-secret"); !ok || p.Name != "ops" {
		t.Fatal("remaining token refused")
	}
	if err := a.SetTokens([]TokenSpec{{Name: "x", Role: "root", Token: "y"}}); err == nil {
		t.Fatal("bad spec accepted")
	}
	if _, ok := a.Check("admin-secret"); !ok {
		t.Fatal("a refused SetTokens changed the tokens")
	}
}

// login returns the session cookie made with tok.
func login(t *testing.T, a *Authenticator, tok string) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	a.SessionHandler().ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"token":"`+tok+`"}`)))
	if w.Code != 200 || len(w.Result().Cookies()) != 1 {
		t.Fatalf("login with %s: %d %s", tok, w.Code, w.Body)
	}
	return w.Result().Cookies()[0]
}

// A session is bound to the secret it was made with: rotating a token's
// secret (same name and role) ends the sessions of the old one.
func TestSessionBoundToSecret(t *testing.T) {
	others := []TokenSpec{{Name: "ops", Role: Admin, Token: "admin-secret"}}
	cases := []struct {
		name  string
		desk  TokenSpec
		keeps bool
	}{
		{"unchanged", TokenSpec{Name: "desk-1", Role: Desk, SHA256: HashToken("desk-secret")}, true},
		{"same secret given in plain", TokenSpec{Name: "desk-1", Role: Desk, Token: "desk-secret"}, true},
		{"secret rotated", TokenSpec{Name: "desk-1", Role: Desk, SHA256: HashToken("desk-secret-2")}, false},
		{"secret rotated, given in plain", TokenSpec{Name: "desk-1", Role: Desk, Token: "desk-secret-2"}, false},
		{"role changed", TokenSpec{Name: "desk-1", Role: Investigator, SHA256: HashToken("desk-secret")}, false},
		{"renamed", TokenSpec{Name: "desk-2", Role: Desk, SHA256: HashToken("desk-secret")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestAuth(t, nil)
			cookie := login(t, a, "desk-secret")
			if err := a.SetTokens(append([]TokenSpec{c.desk}, others...)); err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(cookie)
			if _, ok := a.Authenticate(r); ok != c.keeps {
				t.Fatalf("session valid after reload = %v, want %v", ok, c.keeps)
			}
			// Rotating back does not revive an ended session.
			if err := a.SetTokens(append([]TokenSpec{{Name: "desk-1", Role: Desk, Token: "desk-secret"}}, others...)); err != nil {
				t.Fatal(err)
			}
			if _, ok := a.Authenticate(r); ok != c.keeps {
				t.Fatalf("session valid after rotating back = %v, want %v", ok, c.keeps)
			}
		})
	}
}

// A state-changing request carried by the session cookie needs
// Content-Type application/json (by parsed media type), or application/sdp
// for a WHEP offer, and an Origin of
// this host; a bearer token is not sent by browsers on their own and needs
// neither.
func TestCookieCSRF(t *testing.T) {
	a := newTestAuth(t, nil)
	cookie := login(t, a, "desk-secret")
	h := a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Desk)
	cases := []struct {
		name, method, bearer, ctype, origin string
		want                                int
	}{
		{"same origin json", "POST", "", "application/json", "http://vigil.test:8080", 200},
		{"json with charset", "POST", "", "application/json; charset=utf-8", "http://vigil.test:8080", 200},
		{"upper-case media type and host", "POST", "", "Application/JSON", "https://VIGIL.test:8080", 200},
		{"foreign origin", "POST", "", "application/json", "http://evil.test", 403},
		{"foreign port", "POST", "", "application/json", "http://vigil.test:9090", 403},
		{"origin prefix of host", "POST", "", "application/json", "http://vigil.test:80801", 403},
		{"null origin", "POST", "", "application/json", "null", 403},
		{"no origin", "POST", "", "application/json", "", 403},
		{"no content type", "POST", "", "", "http://vigil.test:8080", 403},
		{"foreign origin, no content type", "POST", "", "", "http://evil.test", 403},
		{"jsonfoo", "POST", "", "application/jsonfoo", "http://vigil.test:8080", 403},
		{"form", "POST", "", "application/x-www-form-urlencoded", "http://vigil.test:8080", 403},
		{"text/plain", "POST", "", "text/plain", "http://vigil.test:8080", 403},
		{"whep offer", "POST", "", "application/sdp", "http://vigil.test:8080", 200},
		{"whep offer, foreign origin", "POST", "", "application/sdp", "http://evil.test", 403},
		{"whep offer, no origin", "POST", "", "application/sdp", "", 403},
		{"delete foreign", "DELETE", "", "application/json", "http://evil.test", 403},
		{"get needs neither", "GET", "", "", "", 200},
		{"bearer needs neither", "POST", "desk-secret", "", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "http://vigil.test:8080/api/v1/alerts/x/ack", strings.NewReader(`{}`))
			if c.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+c.bearer)
			} else {
				r.AddCookie(cookie)
			}
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want || (c.want == 403 && !strings.Contains(w.Body.String(), `"code":"csrf"`)) {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, c.want)
			}
		})
	}
	// Logging out from another site is refused too.
	r := httptest.NewRequest("DELETE", "http://vigil.test:8080/api/v1/session", nil)
	r.AddCookie(cookie)
	r.Header.Set("Origin", "http://evil.test")
	w := httptest.NewRecorder()
	a.SessionHandler().ServeHTTP(w, r)
	if w.Code != 403 {
		t.Fatalf("cross-site logout: %d", w.Code)
	}
}
