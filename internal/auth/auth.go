// Package auth decides who is calling the API and whether their role allows
// it: bearer tokens and desk session cookies, roles desk, investigator and
// admin (DESIGN.md "HTTP API"). It does not know the routes; the app wraps
// handlers with Require. Camera webhook secrets are not handled here.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"vigil/internal/httpx"
)

// Role is what a token may do.
type Role string

// Roles. Admin may do everything.
const (
	Desk         Role = "desk"
	Investigator Role = "investigator"
	Admin        Role = "admin"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Desk, Investigator, Admin:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want desk, investigator or admin", s)
}

// Principal is an authenticated caller.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// TokenSpec is one configured token: exactly one of SHA256 (hex of the
// token's SHA-256) and Token (the plaintext, usually from the environment).
type TokenSpec struct {
	Name   string
	Role   Role
	SHA256 string
	Token  string
}

// CookieName is the desk session cookie.
const CookieName = "vigil_session"

// Options configure an Authenticator.
type Options struct {
	Tokens []TokenSpec
	// SessionTTL is how long a desk session cookie stays valid; default 12h.
	SessionTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Secure marks the session cookie Secure (behind TLS).
	Secure bool
}

type token struct {
	principal Principal
	sum       [sha256.Size]byte
}

type session struct {
	principal Principal
	// sum is the hash of the token the session was made with: replacing
	// the token's secret ends it, even with the same name and role.
	sum     [sha256.Size]byte
	expires time.Time
}

// Authenticator checks tokens and sessions. It is safe for concurrent use.
type Authenticator struct {
	ttl    time.Duration
	now    func() time.Time
	secure bool

	mu       sync.Mutex
	tokens   []token
	sessions map[[sha256.Size]byte]session // keyed by the hash of the session ID
}

// New checks the token specs and returns an Authenticator.
func New(opts Options) (*Authenticator, error) {
	a := &Authenticator{ttl: opts.SessionTTL, now: opts.Now, secure: opts.Secure, sessions: map[[sha256.Size]byte]session{}}
	if a.ttl <= 0 {
		a.ttl = 12 * time.Hour
	}
	if a.now == nil {
		a.now = time.Now
	}
	if err := a.SetTokens(opts.Tokens); err != nil {
		return nil, err
	}
	return a, nil
}

// SetTokens replaces the configured tokens (a configuration reload). Desk
// sessions of a token that is gone, whose role changed or whose secret was
// replaced end at once.
func (a *Authenticator) SetTokens(specs []TokenSpec) error {
	tokens, err := parseTokens(specs)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = tokens
	for k, s := range a.sessions {
		if !slices.ContainsFunc(tokens, func(t token) bool { return t.principal == s.principal && t.sum == s.sum }) {
			delete(a.sessions, k)
		}
	}
	return nil
}

func parseTokens(specs []TokenSpec) ([]token, error) {
	var tokens []token
	var errs []error
	seen := map[string]bool{}
	for i, s := range specs {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("token %d: name is empty", i))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("token %q: duplicate name", s.Name))
		}
		seen[s.Name] = true
		if _, err := ParseRole(string(s.Role)); err != nil {
			errs = append(errs, fmt.Errorf("token %q: %w", s.Name, err))
		}
		t := token{principal: Principal{Name: s.Name, Role: s.Role}}
		switch {
		case (s.SHA256 == "") == (s.Token == ""):
			errs = append(errs, fmt.Errorf("token %q: set exactly one of sha256 and token", s.Name))
			continue
		case s.Token != "":
			t.sum = sha256.Sum256([]byte(s.Token))
		default:
			b, err := hex.DecodeString(s.SHA256)
			if err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("token %q: sha256 must be 64 hex characters", s.Name))
				continue
			}
			copy(t.sum[:], b)
		}
		tokens = append(tokens, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tokens, nil
}

// Check returns the principal of a presented token. Every configured token
// is compared, in constant time, whatever matches, so timing tells nothing.
func (a *Authenticator) Check(presented string) (Principal, bool) {
	p, _, ok := a.check(presented)
	return p, ok
}

// check is Check that also returns the matched token's hash.
func (a *Authenticator) check(presented string) (Principal, [sha256.Size]byte, bool) {
	if presented == "" {
		return Principal{}, [sha256.Size]byte{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	var found Principal
	match := 0
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = t.principal
			match = 1
		}
	}
	return found, sum, match == 1
}

// Authenticate finds the caller of r: a bearer token first, then the session
// cookie.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, bool) {
	p, _, ok := a.authenticate(r)
	return p, ok
}

// authenticate is Authenticate that also says whether the session cookie
// (which a browser sends by itself) was the credential.
func (a *Authenticator) authenticate(r *http.Request) (p Principal, byCookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, false, false
		}
		p, ok := a.Check(strings.TrimSpace(tok))
		return p, false, ok
	}
	if c, err := r.Cookie(CookieName); err == nil {
		p, ok := a.session(c.Value)
		return p, true, ok
	}
	return Principal{}, false, false
}

// crossSite says why a state-changing request carried by the session
// cookie may have been forged by another page, or "" when it may not: it
// needs Content-Type application/json, or application/sdp for a WHEP
// offer (neither can be sent by a form or a simple request without a CORS
// preflight), and an Origin naming this host.
func crossSite(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); !httpx.IsJSON(r) && mt != "application/sdp" {
		return "a request authenticated by the session cookie needs Content-Type: application/json (application/sdp for a live view offer)"
	}
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	if origin == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
		return "a request authenticated by the session cookie needs an Origin matching the host"
	}
	return ""
}

func (a *Authenticator) session(id string) (Principal, bool) {
	key := sha256.Sum256([]byte(id))
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[key]
	if !ok {
		return Principal{}, false
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, key)
		return Principal{}, false
	}
	return s.principal, true
}

func (a *Authenticator) newSession(p Principal, sum [sha256.Size]byte) (string, time.Time) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	id := hex.EncodeToString(b[:])
	exp := a.now().Add(a.ttl)
	a.mu.Lock()
	defer a.mu.Unlock()
	// Drop expired sessions so the map stays bounded by live ones.
	now := a.now()
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sha256.Sum256([]byte(id))] = session{principal: p, sum: sum, expires: exp}
	return id, exp
}

func (a *Authenticator) endSession(id string) {
	key := sha256.Sum256([]byte(id))
	a.mu.Lock()
	delete(a.sessions, key)
	a.mu.Unlock()
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal that Require put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Actor is the name of the caller of r, for history and audit entries; ""
// when unauthenticated.
func Actor(r *http.Request) string {
	p, _ := FromContext(r.Context())
	return p.Name
}

// Allows reports whether role may act where one of roles is required.
func (p Principal) Allows(roles ...Role) bool {
	if p.Role == Admin {
		return true
	}
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

// Require wraps h so that only callers with one of roles (or admin) reach
// it: 401 without valid credentials, 403 with the wrong role, and 403
// (code csrf) for a state-changing request carried by the session cookie
// without Content-Type application/json or without an Origin of this host.
func (a *Authenticator) Require(h http.Handler, roles ...Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, byCookie, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			httpx.Error(w, http.StatusUnauthorized, "unauthorized", "missing or invalid token")
			return
		}
		if why := crossSite(r); byCookie && why != "" {
			httpx.Error(w, http.StatusForbidden, "csrf", why)
			return
		}
		httpx.Authenticated(r.Context())
		if !p.Allows(roles...) {
			httpx.Error(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not do this", p.Role))
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// SessionHandler serves /api/v1/session: POST {token} logs in and sets the
// session cookie, GET says who is logged in, DELETE logs out.
func (a *Authenticator) SessionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			var body struct {
				Token string `json:"token"`
			}
			if err := httpx.DecodeJSON(w, r, 4<<10, &body); err != nil {
				httpx.DecodeError(w, err)
				return
			}
			p, sum, ok := a.check(body.Token)
			if !ok {
				httpx.Error(w, http.StatusUnauthorized, "unauthorized", "invalid token")
				return
			}
			httpx.Authenticated(r.Context())
			id, exp := a.newSession(p, sum)
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", Expires: exp,
				HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
			httpx.WriteJSON(w, http.StatusOK, p)
		case http.MethodGet:
			p, ok := a.Authenticate(r)
			if !ok {
				httpx.Error(w, http.StatusUnauthorized, "unauthorized", "not logged in")
				return
			}
			httpx.WriteJSON(w, http.StatusOK, p)
		case http.MethodDelete:
			if c, err := r.Cookie(CookieName); err == nil {
				if why := crossSite(r); why != "" {
					httpx.Error(w, http.StatusForbidden, "csrf", why)
					return
				}
				a.endSession(c.Value)
			}
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
				HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			httpx.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
		}
	})
}

// HashToken returns the hex SHA-256 of a token, as configured in vigil.yaml.
func HashToken(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// NewToken returns a fresh random token (for the demo and operators).
func NewToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
