// Package cluster makes the nodes of one deployment (the town's and its
// villages') known to each other through Redis: each node registers itself
// and heartbeats, and any node lists the live ones with their zone, version,
// the cameras they hold and the hash of their camera registry; and it shares
// the cameras out among them (Assign), one node recording each camera under
// a lease with a fencing epoch (Leases); and it lets one node ask another
// (Peers), remembering every node ever live for its footage. The footage
// API itself is not here.
// It is used only with the Redis journal; the embedded single node never
// imports Redis for it.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"vigil/internal/backoff"
)

// Defaults of Options.
const (
	DefaultHeartbeat = 2 * time.Second
	DefaultExpiry    = 6 * time.Second
)

// Node is one node as the cluster sees it.
type Node struct {
	ID           string   `json:"id"`
	Zone         string   `json:"zone"`
	Version      string   `json:"version"`
	AdvertiseURL string   `json:"advertise_url"`
	Cameras      []string `json:"cameras"` // the cameras whose leases it holds
	// Recording lists the cameras of Cameras it is writing video of now; a
	// camera handed to it is held but not yet recording while it connects.
	Recording    []string  `json:"recording"`
	RegistryHash string    `json:"registry_hash"` // SHA-256 of its cameras.yaml
	Heartbeat    time.Time `json:"last_heartbeat"`
	// RegistryDiffers is set by List on every node whose registry hash is
	// not the one most nodes have: their cameras.yaml contents differ.
	RegistryDiffers bool `json:"registry_differs"`
}

// Options configure a Registry. Client and Self.ID are required.
type Options struct {
	Client    redis.UniversalClient
	KeyPrefix string // default "vigil:"
	Self      func() Node
	Heartbeat time.Duration // default DefaultHeartbeat
	Expiry    time.Duration // a node without a heartbeat for this long is gone; default DefaultExpiry
	Now       func() time.Time
	// Registerer receives vigil_cluster_nodes and vigil_cluster_cameras_held.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Registry registers this node and lists the live ones.
type Registry struct {
	o     Options
	nodes prometheus.Gauge
	held  prometheus.Gauge

	mu     sync.Mutex
	recent []Node    // of the last successful List
	listed time.Time // when; zero: never
}

// RecentFor is how long Recent answers a List again: a user's camera list
// or footage request needs the nodes as of a moment ago, not a Redis round
// trip each (the registrations change at a heartbeat, 2 s, or an expiry).
const RecentFor = time.Second

// New validates o and returns a Registry; Run starts its heartbeat.
func New(o Options) (*Registry, error) {
	if o.Client == nil || o.Self == nil || o.Self().ID == "" {
		return nil, errors.New("cluster: a Redis client and this node's ID are required")
	}
	if id := o.Self().ID; !ValidNodeID(id) {
		return nil, fmt.Errorf("cluster: node id %q: want ^[a-z0-9][a-z0-9-]{0,62}$", id)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "vigil:"
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Expiry <= o.Heartbeat {
		o.Expiry = max(DefaultExpiry, 3*o.Heartbeat)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(o.Registerer)
	return &Registry{
		o:     o,
		nodes: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_cluster_nodes", Help: "Live nodes of the cluster, this one included, as of the last heartbeat."}),
		held:  f.NewGauge(prometheus.GaugeOpts{Name: "vigil_cluster_cameras_held", Help: "Cameras whose leases this node holds: the cameras it records."}),
	}, nil
}

func (r *Registry) nodeKey(id string) string { return r.o.KeyPrefix + "node:" + id }
func (r *Registry) indexKey() string         { return r.o.KeyPrefix + "nodes" }

// Run heartbeats every Heartbeat until ctx ends, then removes the node's
// registration so that the others see it leave at once. A heartbeat that
// fails (Redis down) is retried with backoff and logged once per outage.
func (r *Registry) Run(ctx context.Context) error {
	bo := backoff.New(backoff.Policy{Min: 200 * time.Millisecond, Max: r.o.Heartbeat, Jitter: 0.2})
	down := false
	for {
		err := r.beat(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !down {
				r.o.Logger.Warn("cluster heartbeat failed; retrying", "err", err)
				down = true
			}
			if bo.Wait(ctx) != nil {
				return r.leave(ctx)
			}
			continue
		case err == nil && down:
			r.o.Logger.Info("cluster heartbeat back")
			down = false
		}
		bo.Reset()
		select {
		case <-ctx.Done():
			return r.leave(ctx)
		case <-time.After(r.o.Heartbeat):
		}
	}
}

// beat writes this node's registration with its expiry, and its
// advertise URL among the footage nodes (footageNodesKey).
func (r *Registry) beat(ctx context.Context) error {
	n := r.o.Self()
	n.Heartbeat = r.o.Now().UTC()
	n.RegistryDiffers = false
	r.held.Set(float64(len(n.Cameras)))
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = r.o.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.nodeKey(n.ID), b, r.o.Expiry)
		p.SAdd(ctx, r.indexKey(), n.ID)
		// remembered from its first heartbeat, not only once another
		// node asked for footage while it was live: a node that dies
		// before any such request still has its footage asked for
		p.HSet(ctx, r.o.KeyPrefix+footageNodesKey, n.ID, n.AdvertiseURL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: heartbeat of %s: %w", n.ID, err)
	}
	if nodes, err := r.List(ctx); err == nil {
		r.nodes.Set(float64(len(nodes)))
	}
	return nil
}

// leave removes this node's registration, within a second of stopped's end
// (the node is stopping).
func (r *Registry) leave(stopped context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stopped), time.Second)
	defer cancel()
	id := r.o.Self().ID
	_, err := r.o.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.nodeKey(id))
		p.SRem(ctx, r.indexKey(), id)
		return nil
	})
	if err != nil {
		r.o.Logger.Warn("cluster: leaving", "err", err)
	}
	return nil
}

// List returns the live nodes by ID, flagging those whose camera registry
// differs from the most common one. Nodes whose registration expired are
// dropped from the index.
func (r *Registry) List(ctx context.Context) ([]Node, error) {
	ids, err := r.o.Client.SMembers(ctx, r.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	slices.Sort(ids)
	var nodes []Node
	if len(ids) > 0 {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = r.nodeKey(id)
		}
		vals, err := r.o.Client.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("cluster: list nodes: %w", err)
		}
		var gone []any
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				gone = append(gone, ids[i])
				continue
			}
			var n Node
			if err := json.Unmarshal([]byte(s), &n); err != nil {
				return nil, fmt.Errorf("cluster: node %s: %w", ids[i], err)
			}
			nodes = append(nodes, n)
		}
		if len(gone) > 0 {
			r.o.Client.SRem(ctx, r.indexKey(), gone...) // best effort; expired keys say enough
		}
	}
	flagRegistries(nodes)
	r.mu.Lock()
	r.recent, r.listed = nodes, r.o.Now()
	r.mu.Unlock()
	return slices.Clone(nodes), nil
}

// Recent is List, or what a List (this node's heartbeat's included)
// returned less than RecentFor ago. For user requests; what must see a
// node go at once (leases, GET /api/v1/nodes) calls List.
func (r *Registry) Recent(ctx context.Context) ([]Node, error) {
	now := r.o.Now()
	r.mu.Lock()
	if d := now.Sub(r.listed); !r.listed.IsZero() && d >= 0 && d < RecentFor {
		out := slices.Clone(r.recent)
		r.mu.Unlock()
		return out, nil
	}
	r.mu.Unlock()
	return r.List(ctx)
}

// flagRegistries marks the nodes whose registry hash is not the most common
// one (ties go to the smaller hash, so every node flags the same ones).
func flagRegistries(nodes []Node) {
	count := map[string]int{}
	for _, n := range nodes {
		count[n.RegistryHash]++
	}
	best, bestN := "", 0
	for h, c := range count {
		if c > bestN || (c == bestN && h < best) {
			best, bestN = h, c
		}
	}
	for i := range nodes {
		nodes[i].RegistryDiffers = nodes[i].RegistryHash != best
	}
}
