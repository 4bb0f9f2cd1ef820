package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"vigil/configs"
	"vigil/internal/httpx"
)

// Node-to-node requests: one node asks another for its own footage,
// snapshots or live view on behalf of a user. They carry the cluster token
// as a bearer token and this node's ID in NodeHeader; the node asked
// answers from its own storage only (local scope), so a request never
// travels further than one hop.

// NodeHeader names the node that makes a node-to-node request.
const NodeHeader = "X-Vigil-Node"

// ForHeader names the person a node forwards a request for (Forward sets
// it from PeersOptions.Actor): the node that answers audits footage and
// snapshots under that name, via the forwarding node, not under the node
// alone. It is believed only from a node with the cluster token.
const ForHeader = "X-Vigil-For"

// maxForName bounds ForHeader's value.
const maxForName = 128

// DefaultHeaderTimeout bounds how long a node waits for another to start
// answering; a slower node is named unreachable.
const DefaultHeaderTimeout = 2 * time.Second

// footageNodesKey (after the key prefix) is the hash of every node ever
// live, node ID to advertise URL: each node adds itself at every
// heartbeat (Registry); Peers only reads it. Nothing
// removes a node but an admin (HDEL), so that a node that died is still
// asked for its footage, and named, rather than forgotten.
const footageNodesKey = "footage-nodes"

// SilentFor is how long a node that could not be connected to (refused,
// or no connection within the dial timeout) is not asked again: every
// listing, export and camera list would otherwise wait for it anew. After
// it the node is asked again, so one that came back is seen. A node that
// takes the connection but answers late is asked each time: it is up.
const SilentFor = 10 * time.Second

// Errors of Do.
var (
	// ErrUnknownNode is returned for a node neither live nor ever seen
	// live (or without a usable advertise URL).
	ErrUnknownNode = errors.New("node unknown to the cluster")
	// ErrNodeSilent is returned without asking for a node that could not
	// be connected to less than SilentFor ago.
	ErrNodeSilent = errors.New("could not be connected to moments ago; not asked again yet")
)

// ValidNodeID reports whether id may be a node ID, by the rule node.id is
// held to at config load (configs.ValidID: ^[a-z0-9][a-z0-9-]{0,62}$):
// what a node reads from another is checked against it before it names
// anything, and a node's own ID against it before it asks anyone.
func ValidNodeID(id string) bool { return configs.ValidID(id) }

// NodeLister lists the live nodes (*Registry does).
type NodeLister interface {
	List(ctx context.Context) ([]Node, error)
}

// PeersOptions configure Peers. Nodes, Self and Token are required.
type PeersOptions struct {
	Nodes NodeLister
	// Client, when set, reads from Redis every node that was ever live
	// (KeyPrefix+"footage-nodes", ID → advertise URL, no expiry; each
	// node's heartbeat adds it): a node that died keeps its footage, and
	// it is asked (and named unreachable) rather than forgotten when its
	// heartbeat expires. An admin removes a node taken out of service
	// with HDEL.
	Client    redis.UniversalClient
	KeyPrefix string // default "vigil:"
	Self      string // this node's ID: never asked
	Token     string // the cluster token (cluster.token)
	// HeaderTimeout bounds the wait for another node's answer headers;
	// default DefaultHeaderTimeout. Bodies (exports) are not bounded.
	HeaderTimeout time.Duration
	// Transport, when set, replaces the default one (tests, benchmarks).
	Transport http.RoundTripper
	Now       func() time.Time // default time.Now
	// Actor names the person who makes a request Forward passes on (the
	// authenticated principal); nil or "" sends no ForHeader.
	Actor func(*http.Request) string
}

// Peers asks the other nodes of the cluster.
type Peers struct {
	o      PeersOptions
	token  []byte
	client *http.Client

	mu     sync.Mutex
	urls   map[string]string    // node ID → advertise URL, as last listed
	others []string             // as last listed
	listed time.Time            // when; zero: never
	silent map[string]time.Time // node ID → when it last could not be connected to
}

// othersFresh is how long a listing of the nodes is used again: every
// footage request asks for it, and the registry itself changes only at a
// heartbeat (2 s) or an expiry (6 s).
const othersFresh = time.Second

// NewPeers returns Peers over o.Nodes.
func NewPeers(o PeersOptions) (*Peers, error) {
	switch {
	case o.Nodes == nil || o.Self == "":
		return nil, errors.New("cluster peers: node registry and own ID: required")
	case !ValidNodeID(o.Self):
		// the others would refuse every request it makes (401)
		return nil, fmt.Errorf("cluster peers: node id %q: want ^[a-z0-9][a-z0-9-]{0,62}$", o.Self)
	case o.Token == "":
		return nil, errors.New("cluster peers: cluster.token is not set: nodes cannot authenticate to each other")
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "vigil:"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	rt := o.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 nil, // loopback and site networks: never through a proxy
			DialContext:           (&net.Dialer{Timeout: o.HeaderTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: o.HeaderTimeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true, // media: nothing to gain
		}
	}
	return &Peers{o: o, token: []byte(o.Token), urls: map[string]string{}, silent: map[string]time.Time{}, client: &http.Client{
		Transport: rt,
		// a node's answer is passed on as it is, a redirect included
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Self is this node's ID.
func (p *Peers) Self() string { return p.o.Self }

// Others lists the IDs of the other nodes that may hold footage: the live
// ones, and with Options.Client every node ever live. The list comes
// from Redis: an error means this node cannot tell who the others are.
func (p *Peers) Others(ctx context.Context) ([]string, error) {
	now := p.o.Now()
	p.mu.Lock()
	if !p.listed.IsZero() && now.Sub(p.listed) < othersFresh && now.After(p.listed) {
		out := slices.Clone(p.others)
		p.mu.Unlock()
		return out, nil
	}
	p.mu.Unlock()
	nodes, err := p.o.Nodes.List(ctx)
	if err != nil {
		return nil, err
	}
	urls := make(map[string]string, len(nodes))
	for _, n := range nodes {
		urls[n.ID] = n.AdvertiseURL
	}
	if p.o.Client != nil {
		key := p.o.KeyPrefix + footageNodesKey
		known, err := p.o.Client.HGetAll(ctx, key).Result()
		if err != nil {
			return nil, fmt.Errorf("cluster: footage nodes: %w", err)
		}
		for id, u := range known {
			if _, live := urls[id]; !live && ValidNodeID(id) {
				urls[id] = u
			}
		}
	}
	out := make([]string, 0, len(urls))
	for id := range urls {
		if id != p.o.Self {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	p.mu.Lock()
	p.urls, p.others, p.listed = urls, out, now
	p.mu.Unlock()
	return slices.Clone(out), nil
}

// Do sends method pathQuery (path and query of this API) to node with
// header h and body, authenticated as this node. The caller closes the
// answer's body. A node that is not live is ErrUnknownNode; one that
// could not be connected to less than SilentFor ago is ErrNodeSilent, at
// once.
func (p *Peers) Do(ctx context.Context, node, method, pathQuery string, h http.Header, body io.Reader) (*http.Response, error) {
	if node == p.o.Self {
		return nil, fmt.Errorf("node %s: a node does not ask itself", node)
	}
	if at, ok := p.silentSince(node); ok {
		return nil, fmt.Errorf("node %s: %w (at %s)", node, ErrNodeSilent, at.UTC().Format(time.RFC3339))
	}
	base, err := p.url(ctx, node)
	if err != nil {
		return nil, err
	}
	var connected atomic.Bool // a connection to node was had: it is up
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, base+pathQuery, body)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+p.o.Token)
	req.Header.Set(NodeHeader, p.o.Self)
	resp, err := p.client.Do(req)
	if err != nil {
		if !connected.Load() && !errors.Is(ctx.Err(), context.Canceled) {
			// no connection (refused, or none within the dial timeout
			// or the caller's): the node is down or cut off. A caller
			// that gave up says nothing of it, and a node that took a
			// connection is up, if slow (a snapshot's decoding).
			p.mu.Lock()
			p.silent[node] = p.o.Now()
			p.mu.Unlock()
		}
		return nil, fmt.Errorf("node %s: %w", node, redact(err))
	}
	p.mu.Lock()
	delete(p.silent, node)
	p.mu.Unlock()
	return resp, nil
}

// silentSince reports whether node could not be connected to less than
// SilentFor ago, and when.
func (p *Peers) silentSince(node string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.silent[node]
	if !ok {
		return time.Time{}, false
	}
	if d := p.o.Now().Sub(at); d < 0 || d >= SilentFor {
		delete(p.silent, node)
		return time.Time{}, false
	}
	return at, true
}

// url is node's advertise URL without a trailing slash, as Others last
// listed it (listed again for a node not seen yet).
func (p *Peers) url(ctx context.Context, node string) (string, error) {
	p.mu.Lock()
	u, ok := p.urls[node]
	p.mu.Unlock()
	if !ok {
		p.mu.Lock()
		p.listed = time.Time{} // a node not seen yet: list again now
		p.mu.Unlock()
		if _, err := p.Others(ctx); err != nil {
			return "", fmt.Errorf("node %s: %w", node, err)
		}
		p.mu.Lock()
		u, ok = p.urls[node]
		p.mu.Unlock()
	}
	if !ok {
		return "", fmt.Errorf("node %s: %w", node, ErrUnknownNode)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", fmt.Errorf("node %s: advertise_url %q: %w", node, u, ErrUnknownNode)
	}
	return strings.TrimRight(u, "/"), nil
}

// redact drops the URL from a client error: it is logged and may reach
// an answer, and needs only the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Authenticates reports whether r carries the cluster token (compared in
// constant time) and a valid node ID; it returns that ID.
func (p *Peers) Authenticates(r *http.Request) (node string, ok bool) {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || subtle.ConstantTimeCompare([]byte(tok), p.token) != 1 {
		return "", false
	}
	node = r.Header.Get(NodeHeader)
	if !ValidNodeID(node) || node == p.o.Self {
		return "", false
	}
	return node, true
}

// ForName is the person an authenticated node's request r was forwarded
// for (ForHeader), "" when it names none. A name that is too long or has
// control characters is an error: the audit log must not take it.
func ForName(r *http.Request) (string, error) {
	v := r.Header.Get(ForHeader)
	if len(v) > maxForName {
		return "", fmt.Errorf("%s: longer than %d bytes", ForHeader, maxForName)
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || c == utf8.RuneError {
			return "", fmt.Errorf("%s: control or invalid character", ForHeader)
		}
	}
	return v, nil
}

// MaxForwardBody bounds a request body Forward passes on (a WHEP offer or
// ICE fragment); a larger one is 413.
const MaxForwardBody = 1 << 20

// The headers Forward passes on: a request's content, conditional and
// range headers, and an answer's content, range, cache and integrity
// headers.
var (
	forwardRequestHeaders = []string{
		"Content-Type", "Accept", "Range", "If-Range", "If-Match", "If-None-Match",
		"If-Modified-Since", "If-Unmodified-Since",
	}
	forwardResponseHeaders = []string{
		"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
		"Content-Disposition", "Link", "Cache-Control", "Accept-Patch",
		"X-Vigil-SHA256", "X-Vigil-Gaps", "X-Vigil-From",
	}
)

// Forward passes r (its method, body and the request headers above) to
// node at pathQuery, and node's answer back to w: its status, the answer
// headers above, NodeHeader naming node, and a Location of this API with
// ?node= added, so that what follows (a WHEP session's PATCH and DELETE)
// reaches node through this node too.
//
// A node that does not answer is 503 node_unreachable, the message saying
// what it holds (what: "camera gate is recorded by node village-2"); it
// is the one answer for that, on every route. Forward then returns status
// 0 and why. A request body over MaxForwardBody is 413 here. Otherwise it
// returns node's status, and the error that cut the copy of its body, if
// any (the caller aborts the answer: the length promised will not be
// reached).
func (p *Peers) Forward(w http.ResponseWriter, r *http.Request, node, pathQuery, what string) (status int, err error) {
	h := http.Header{}
	for _, k := range forwardRequestHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	if p.o.Actor != nil {
		if who := p.o.Actor(r); who != "" {
			h.Set(ForHeader, who)
		}
	}
	var body io.Reader
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body = http.MaxBytesReader(w, r.Body, MaxForwardBody)
	}
	resp, err := p.Do(r.Context(), node, r.Method, pathQuery, h, body)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			httpx.Error(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
			return http.StatusRequestEntityTooLarge, nil // the asker's fault: nothing to log
		}
		httpx.Error(w, http.StatusServiceUnavailable, "node_unreachable", what+", which cannot be reached now; retry later")
		return 0, err
	}
	defer resp.Body.Close()
	for _, k := range forwardResponseHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Host == "" && strings.HasPrefix(u.Path, "/api/v1/") {
			q := u.Query()
			q.Set("node", node)
			u.RawQuery = q.Encode()
			w.Header().Set("Location", u.String())
		}
	}
	w.Header().Set(NodeHeader, node)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("node %s: %w", node, err)
	}
	return resp.StatusCode, nil
}

// StatusError is a node's answer other than 200 to GetJSON: the node
// answered, it only had nothing to give.
type StatusError struct {
	Node, Path string
	Status     int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("node %s: GET %s: status %d", e.Node, e.Path, e.Status)
}

// GetJSON gets pathQuery from node and decodes its answer, at most max
// bytes of it, into v. An answer other than 200 is a *StatusError; one
// that is not JSON or larger than max is an error too.
func (p *Peers) GetJSON(ctx context.Context, node, pathQuery string, max int64, v any) error {
	resp, err := p.Do(ctx, node, http.MethodGet, pathQuery, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	what, _, _ := strings.Cut(pathQuery, "?")
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Node: node, Path: what, Status: resp.StatusCode}
	}
	lr := &io.LimitedReader{R: resp.Body, N: max + 1}
	if err := json.NewDecoder(lr).Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("node %s: GET %s: answer larger than %d bytes", node, what, max)
		}
		return fmt.Errorf("node %s: GET %s: %w", node, what, err)
	}
	return nil
}
