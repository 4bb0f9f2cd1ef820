package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"vigil/cluster"
	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/httpx"
)

// Footage, snapshots and live view from any node of a cluster. Another
// node's request carries the cluster token and is answered from this
// node's own storage and cameras only (one hop, never passed on); a
// user's request on a cluster node reaches the node that has what is
// asked for. A single node (no Redis journal, or no cluster.token) does
// none of this.

// HolderLookup names the node that holds a camera's lease and records it
// ("" when none does). cluster.Leases.Holder is the real one.
type HolderLookup interface {
	Holder(ctx context.Context, camera string) (node string, epoch int64, err error)
}

// peerRole is the role of another node's request: accepted only on the
// footage, snapshot and live view routes (requireOrPeer).
const peerRole auth.Role = "node"

// buildForward makes this node ask the others, when it is in a cluster
// with a cluster token. It runs after buildCluster.
func (a *App) buildForward(cfg *configs.Config) error {
	if a.nodes == nil {
		return nil
	}
	tok := cfg.Cluster.Token.Reveal()
	if tok == "" {
		a.log.Warn("cluster.token is not set: footage, snapshots and live view of other nodes are not reachable from this node, nor this node's from others",
			"component", "forward")
		return nil
	}
	var err error
	a.peers, err = cluster.NewPeers(cluster.PeersOptions{Nodes: a.nodes, Client: a.clusterRedis, Self: a.nodeID, Token: tok, Actor: auth.Actor})
	if err != nil {
		return err
	}
	if a.leases != nil { // built with the registry (buildCluster)
		a.holders = a.leases
	}
	return nil
}

// fromPeer reports whether r was made by another node (requireOrPeer).
func (a *App) fromPeer(r *http.Request) bool {
	p, ok := auth.FromContext(r.Context())
	return ok && p.Role == peerRole
}

// requireOrPeer is a.auth.Require(h, roles...) that also lets another
// node in with the cluster token, as principal "node:<id>", or "<person>
// via node:<id>" for a request forwarded for a person (cluster.ForHeader).
func (a *App) requireOrPeer(h http.Handler, roles ...auth.Role) http.Handler {
	user := a.auth.Require(h, roles...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.peers != nil {
			if node, ok := a.peers.Authenticates(r); ok {
				httpx.Authenticated(r.Context())
				p := auth.Principal{Name: "node:" + node, Role: peerRole}
				who, err := cluster.ForName(r)
				if err != nil {
					httpx.Error(w, http.StatusBadRequest, "bad_request", err.Error())
					return
				}
				if who != "" { // audited as the person, through the node
					p.Name = who + " via node:" + node
				}
				h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
				return
			}
		}
		user.ServeHTTP(w, r)
	})
}

// holderElsewhere names the node that holds camera when it is another
// one and r is a user's; "" to answer here.
func (a *App) holderElsewhere(r *http.Request, camera string) string {
	if a.peers == nil || a.holders == nil || a.fromPeer(r) {
		return ""
	}
	if a.clustered() && a.holds(camera) {
		return "" // its own lease: no need to ask Redis whose it is
	}
	node, _, err := a.holders.Holder(r.Context(), camera)
	if err != nil {
		a.log.Warn("camera holder unknown; answering from this node", "component", "forward", "camera", camera, "err", err)
		return ""
	}
	if node == a.nodeID {
		return ""
	}
	return node
}

// serveWHEPOffer is POST /cameras/{id}/whep: answered by the camera's
// holder, whose answer and Location come back through this node (media
// then flows between the browser and the holder).
func (a *App) serveWHEPOffer(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	if node := a.holderElsewhere(r, camera); node != "" {
		a.forward(w, r, node, r.URL.Path, "camera "+camera+" is recorded by node "+node)
		return
	}
	a.viewers.ServeOffer(w, r)
}

// whepSession wraps DELETE and PATCH of a WHEP session: a Location that
// names another node (?node=) is passed to it.
func (a *App) whepSession(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if node := r.URL.Query().Get("node"); node != "" && node != a.nodeID && a.peers != nil && !a.fromPeer(r) {
			a.forward(w, r, node, r.URL.Path, "this live view is served by node "+node)
			return
		}
		h(w, r)
	}
}

// serveSnapshotAnyNode is GET /cameras/{id}/snapshot: a live one from the
// camera's holder, one at a past time (?at) from the node with that
// footage.
func (a *App) serveSnapshotAnyNode(w http.ResponseWriter, r *http.Request) {
	if a.fromPeer(r) {
		a.snapshots.ServeHTTP(w, r) // the asking node checked the role
		return
	}
	camera := r.PathValue("id")
	node := ""
	if v := r.URL.Query().Get("at"); v != "" && a.peers != nil {
		if p, ok := auth.FromContext(r.Context()); !ok || !p.Allows(auth.Investigator) {
			httpx.Error(w, http.StatusForbidden, "forbidden", "a snapshot from the recordings (?at) is for investigators")
			return
		}
		if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
			if node, err = a.footage.Locate(r.Context(), camera, at); err != nil {
				a.log.Warn("snapshot: locating the footage; answering from this node", "component", "forward", "camera", camera, "err", err)
			}
		}
	} else if v == "" {
		node = a.holderElsewhere(r, camera)
	}
	if node != "" && node != a.nodeID {
		a.forward(w, r, node, r.URL.Path+"?"+r.URL.RawQuery, "the footage of camera "+camera+" is on node "+node)
		return
	}
	a.serveSnapshot(w, r)
}

// maxSnapshotBytes bounds a stored alert picture fetched from another node.
const maxSnapshotBytes = 16 << 20

// errSnapshotMismatch is another node's answer that the picture it stores
// no longer matches the alert's SHA-256.
var errSnapshotMismatch = errors.New("the stored picture no longer matches its SHA-256")

// alertSnapshotElsewhere fetches the stored picture of alert id from the
// other nodes (for a user's request r), asked at once; the caller checks it against the alert's
// hash, as it does its own. It names the node that answered, and returns
// errSnapshotMismatch (with the node) when a node has the picture but it
// no longer matches: evidence that changed is reported, never passed over.
// Nil bytes and no error: no node has it.
func (a *App) alertSnapshotElsewhere(r *http.Request, id string) ([]byte, string, error) {
	if a.peers == nil || a.fromPeer(r) { // another node's request: one hop only
		return nil, "", nil
	}
	ctx := r.Context()
	others, err := a.peers.Others(ctx)
	if err != nil || len(others) == 0 {
		return nil, "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	type answer struct {
		node     string
		b        []byte
		mismatch bool
	}
	answers := make([]answer, len(others))
	var wg sync.WaitGroup
	for i, node := range others {
		wg.Go(func() {
			answers[i].node = node
			resp, err := a.peers.Do(ctx, node, http.MethodGet, "/api/v1/alerts/"+id+"/snapshot", nil, nil)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				b, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotBytes+1))
				if err != nil || len(b) > maxSnapshotBytes {
					a.log.Warn("alert snapshot from another node not read", "component", "forward", "alert", id, "node", node, "err", err, "bytes", len(b))
					return
				}
				answers[i].b = b
			case http.StatusConflict:
				answers[i].mismatch = true
			}
		})
	}
	wg.Wait()
	for _, an := range answers {
		if an.b != nil {
			return an.b, an.node, nil
		}
	}
	for _, an := range answers {
		if an.mismatch {
			return nil, an.node, errSnapshotMismatch
		}
	}
	return nil, "", nil
}

// forward passes r to node at pathQuery and its answer back
// (cluster.Peers.Forward: 503 node_unreachable when node does not answer,
// what saying whose the camera or footage is).
func (a *App) forward(w http.ResponseWriter, r *http.Request, node, pathQuery, what string) {
	status, err := a.peers.Forward(w, r, node, pathQuery, what)
	switch {
	case err != nil && status == 0:
		a.log.Warn("forward: node unreachable", "component", "forward", "node", node, "path", r.URL.Path, "err", err)
	case err != nil && r.Context().Err() == nil:
		a.log.Warn("forward: answer cut", "component", "forward", "node", node, "path", r.URL.Path, "err", err)
	}
}
