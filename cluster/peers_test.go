package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/internal/testutil"
)

// settable is a clock the test moves.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settable) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// A node that left the registry is still among the others (its footage
// is asked for, and it is named unreachable) until an admin removes it.
func TestPeersRememberNodesThatLeft(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	town := registry(t, rdb, Node{ID: "town-1", AdvertiseURL: "http://127.0.0.1:1"})
	village := registry(t, rdb, Node{ID: "village-3", AdvertiseURL: "http://127.0.0.1:2"})
	for _, r := range []*Registry{town, village} {
		if err := r.beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clock := &settable{t: time.Now()}
	p, err := NewPeers(PeersOptions{Nodes: town, Client: rdb, KeyPrefix: "t:", Self: "town-1", Token: "secret", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Others(t.Context()); err != nil || !slices.Equal(got, []string{"village-3"}) {
		t.Fatalf("others %v %v", got, err)
	}
	if err := village.leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * othersFresh)
	if got, err := p.Others(t.Context()); err != nil || !slices.Equal(got, []string{"village-3"}) {
		t.Fatalf("after village-3 left: others %v %v, want it remembered", got, err)
	}
	if err := rdb.HDel(t.Context(), "t:footage-nodes", "village-3").Err(); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * othersFresh)
	if got, err := p.Others(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("after HDEL: others %v %v, want none", got, err)
	}
}

func TestPeersAuthenticate(t *testing.T) {
	p, err := NewPeers(PeersOptions{Nodes: nodeList{}, Self: "town-1", Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, auth, node string
		want             bool
	}{
		{"token and node", "Bearer cluster-secret", "village-2", true},
		{"wrong token", "Bearer cluster-secreT", "village-2", false},
		{"prefix of the token", "Bearer cluster-secre", "village-2", false},
		{"no node", "Bearer cluster-secret", "", false},
		{"itself", "Bearer cluster-secret", "town-1", false},
		{"bad node id", "Bearer cluster-secret", "../x", false},
		{"node id not of node.id's rule", "Bearer cluster-secret", "Village-2", false},
		{"basic", "Basic cluster-secret", "village-2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", tc.auth)
			r.Header.Set(NodeHeader, tc.node)
			if node, ok := p.Authenticates(r); ok != tc.want || (ok && node != tc.node) {
				t.Fatalf("%q %v, want %v", node, ok, tc.want)
			}
		})
	}
	if _, err := NewPeers(PeersOptions{Nodes: nodeList{}, Self: "town-1"}); err == nil {
		t.Error("peers without a cluster token: no error")
	}
	// an ID the others would refuse (the rule of node.id) is refused here,
	// never sent to be answered 401
	for _, id := range []string{"Town-1", "town_1", "town-1.lan"} {
		if _, err := NewPeers(PeersOptions{Nodes: nodeList{}, Self: id, Token: "cluster-secret"}); err == nil {
			t.Errorf("peers as node %q: no error", id)
		}
	}
}

type nodeList []Node

func (l nodeList) List(context.Context) ([]Node, error) { return l, nil }

// A node is remembered from its first heartbeat: one that died before
// any node asked the others for footage is still asked, at its advertise
// URL, and named when it does not answer.
func TestPeersRememberNodesNeverAsked(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	town := registry(t, rdb, Node{ID: "town-1", AdvertiseURL: "http://127.0.0.1:1"})
	village := registry(t, rdb, Node{ID: "village-3", AdvertiseURL: "http://127.0.0.1:2"})
	for _, r := range []*Registry{town, village} {
		if err := r.beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := village.leave(t.Context()); err != nil { // or died: its registration is gone either way
		t.Fatal(err)
	}
	p, err := NewPeers(PeersOptions{Nodes: town, Client: rdb, KeyPrefix: "t:", Self: "town-1", Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Others(t.Context()); err != nil || !slices.Equal(got, []string{"village-3"}) {
		t.Fatalf("others %v %v, want village-3, which was live before anyone asked", got, err)
	}
	if u, err := p.url(t.Context(), "village-3"); err != nil || u != "http://127.0.0.1:2" {
		t.Fatalf("village-3 at %q %v", u, err)
	}
}

// downable sends requests through a real loopback transport, to a port
// nothing listens on while down (a dead node), and counts them.
type downable struct {
	rt   *http.Transport
	dead string // host:port of a closed listener
	mu   sync.Mutex
	down bool
	sent int
}

func (d *downable) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	d.sent++
	down := d.down
	d.mu.Unlock()
	if down {
		r = r.Clone(r.Context())
		r.URL.Host = d.dead
	}
	return d.rt.RoundTrip(r)
}

func (d *downable) set(down bool) { d.mu.Lock(); d.down = down; d.mu.Unlock() }
func (d *downable) count() int    { d.mu.Lock(); defer d.mu.Unlock(); return d.sent }

// newDownable is a downable whose dead address is a loopback port
// nothing listens on.
func newDownable(t *testing.T) *downable {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	tr := &downable{rt: &http.Transport{}, dead: dead}
	t.Cleanup(tr.rt.CloseIdleConnections)
	return tr
}

// A node that did not answer is not asked again for SilentFor: each
// request fails at once instead of waiting for it anew. After the window
// it is asked again, and one that came back answers.
func TestPeersRememberANodeThatDidNotAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	tr := newDownable(t)
	clock := &settable{t: time.Now()}
	p, err := NewPeers(PeersOptions{Nodes: nodeList{{ID: "village-3", AdvertiseURL: srv.URL}}, Self: "town-1", Token: "secret",
		Transport: tr, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	anyErr := errors.New("any error")
	step := func(name string, ctx context.Context, wantErr error, wantSent int) {
		t.Helper()
		resp, err := p.Do(ctx, "village-3", http.MethodGet, "/api/v1/cameras", nil, nil)
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case wantErr == nil && err != nil:
			t.Fatalf("%s: %v, want an answer", name, err)
		case wantErr != nil && err == nil:
			t.Fatalf("%s: an answer, want an error", name)
		case wantErr != nil && wantErr != anyErr && !errors.Is(err, wantErr):
			t.Fatalf("%s: error %v, want %v", name, err, wantErr)
		case tr.count() != wantSent:
			t.Fatalf("%s: %d requests sent in all, want %d", name, tr.count(), wantSent)
		}
	}
	step("up", t.Context(), nil, 1)
	tr.set(true)
	step("down: asked", t.Context(), anyErr, 2)
	step("down again: not asked", t.Context(), ErrNodeSilent, 2)
	clock.Add(SilentFor - time.Second)
	step("still within the window: not asked", t.Context(), ErrNodeSilent, 2)
	tr.set(false)
	clock.Add(2 * time.Second)
	step("after the window, back: asked and answers", t.Context(), nil, 3)
	step("answering: asked", t.Context(), nil, 4)

	// a caller that gave up says nothing of the node
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	step("caller gave up", cancelled, anyErr, 5)
	step("after a caller gave up: asked", t.Context(), nil, 6)
}

// Forward is the one way a user's request reaches the node that has what
// it asks for: the answer and its Location come back through this node,
// and a node that does not answer is 503 node_unreachable.
func TestPeersForward(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" || r.Header.Get(NodeHeader) != "town-1" || r.Header.Get("Content-Type") != "application/sdp" {
			http.Error(w, "not a node's request", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", "/api/v1/cameras/gate/whep/s1")
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Set-Cookie", "not=passed")
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte("answer to "), b...))
	}))
	t.Cleanup(node.Close)
	tr := newDownable(t)
	p, err := NewPeers(PeersOptions{Nodes: nodeList{{ID: "village-2", AdvertiseURL: node.URL}, {ID: "village-9", AdvertiseURL: "http://" + tr.dead}},
		Self: "town-1", Token: "secret", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	offer := func(node, body string) (*httptest.ResponseRecorder, int, error) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/cameras/gate/whep", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/sdp")
		w := httptest.NewRecorder()
		status, err := p.Forward(w, r, node, r.URL.Path, "camera gate is recorded by node "+node)
		return w, status, err
	}

	w, status, err := offer("village-2", "offer")
	if err != nil || status != http.StatusCreated || w.Code != http.StatusCreated || w.Body.String() != "answer to offer" {
		t.Fatalf("answered: %d %d %q %v", status, w.Code, w.Body, err)
	}
	if loc := w.Header().Get("Location"); loc != "/api/v1/cameras/gate/whep/s1?node=village-2" {
		t.Errorf("Location %q, want the node named", loc)
	}
	if w.Header().Get(NodeHeader) != "village-2" || w.Header().Get("Content-Type") != "application/sdp" || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("answer headers %v", w.Header())
	}

	w, status, err = offer("village-9", "offer")
	if err == nil || status != 0 || w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"node_unreachable"`) ||
		!strings.Contains(w.Body.String(), "camera gate is recorded by node village-9") {
		t.Errorf("node not answering: %d %d %s %v, want 503 node_unreachable saying whose the camera is", status, w.Code, w.Body, err)
	}

	w, status, _ = offer("village-2", strings.Repeat("x", MaxForwardBody+1))
	if status != http.StatusRequestEntityTooLarge || w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: %d %d, want 413", status, w.Code)
	}
}

// GetJSON is the one way a node reads another's JSON answer.
func TestPeersGetJSON(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/cameras":
			w.Write([]byte(`{"cameras":[{"id":"gate"}]}`))
		case "/big":
			w.Write([]byte(`{"cameras":"` + strings.Repeat("x", 100) + `"}`))
		default:
			http.Error(w, `{"error":"no"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(node.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p, err := NewPeers(PeersOptions{Nodes: nodeList{{ID: "village-2", AdvertiseURL: node.URL}}, Self: "town-1", Token: "secret", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Cameras []struct{ ID string } `json:"cameras"`
	}
	if err := p.GetJSON(t.Context(), "village-2", "/api/v1/cameras", 1<<10, &v); err != nil || len(v.Cameras) != 1 || v.Cameras[0].ID != "gate" {
		t.Fatalf("%+v %v", v, err)
	}
	if err := p.GetJSON(t.Context(), "village-2", "/nothing?x=1", 1<<10, &v); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("404: %v, want an error with the status", err)
	}
	if err := p.GetJSON(t.Context(), "village-2", "/big", 50, &v); err == nil || !strings.Contains(err.Error(), "larger than 50 bytes") {
		t.Errorf("answer over the limit: %v", err)
	}
}

// A node that takes the connection but answers late (a snapshot being
// decoded) is up: it is asked again each time.
func TestPeersAskASlowNodeAgain(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	tr := newDownable(t)
	p, err := NewPeers(PeersOptions{Nodes: nodeList{{ID: "village-3", AdvertiseURL: srv.URL}}, Self: "town-1", Token: "secret",
		Transport: tr, HeaderTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		_, err := p.Do(ctx, "village-3", http.MethodGet, "/api/v1/cameras/c0/snapshot", nil, nil)
		cancel()
		if err == nil || errors.Is(err, ErrNodeSilent) || tr.count() != i+1 {
			t.Fatalf("ask %d: %v, %d sent: want it asked, and no answer in time", i, err, tr.count())
		}
	}
}

// Peers only reads the footage nodes: each node's heartbeat writes
// itself there, and a user's request writes nothing to Redis.
func TestPeersOnlyReadFootageNodes(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := NewPeers(PeersOptions{Nodes: nodeList{{ID: "village-3", AdvertiseURL: "http://127.0.0.1:2"}}, Client: rdb, KeyPrefix: "t:", Self: "town-1", Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Others(t.Context()); err != nil || !slices.Equal(got, []string{"village-3"}) {
		t.Fatalf("others %v %v", got, err)
	}
	if n, err := rdb.HLen(t.Context(), "t:footage-nodes").Result(); err != nil || n != 0 {
		t.Fatalf("footage nodes: %d %v, want none written by a listing", n, err)
	}
}

func TestForName(t *testing.T) {
	for _, tc := range []struct {
		v, want string
		bad     bool
	}{
		{"", "", false},
		{"inv-1", "inv-1", false},
		{"值班员 张三", "值班员 张三", false},
		{strings.Repeat("x", 128), strings.Repeat("x", 128), false},
		{strings.Repeat("x", 129), "", true},
		{"inv-1\x01", "", true},
		{"inv-1\n", "", true},
		{"inv-\xff", "", true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(ForHeader, tc.v)
		got, err := ForName(r)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%q: %q, %v", tc.v, got, err)
		}
	}
}
