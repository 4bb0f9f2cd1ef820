package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/cluster"
	"vigil/configs"
	"vigil/internal/httpx"
)

// buildCluster registers the node with the others through Redis when the
// journal is Redis; the embedded single node stays alone (a.nodes nil).
func (a *App) buildCluster(cfg *configs.Config) error {
	if cfg.Journal.Backend != configs.BackendRedis {
		return nil
	}
	r := cfg.Journal.Redis
	var tlsCfg *tls.Config
	if r.TLS {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	a.clusterRedis = redis.NewClient(&redis.Options{
		Addr: r.Addr, Username: r.Username, Password: r.Password.Reveal(), DB: r.DB, TLSConfig: tlsCfg,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	var err error
	a.nodes, err = cluster.New(cluster.Options{
		Client: a.clusterRedis, Self: a.selfNode,
		Registerer: a.metrics, Logger: a.log.With("component", "cluster"),
	})
	if err != nil {
		return err
	}
	return a.buildLeases()
}

// runCluster heartbeats until ctx ends; a node without the Redis journal
// has nothing to do.
func (a *App) runCluster(ctx context.Context) error {
	if a.nodes == nil {
		return nil
	}
	err := a.nodes.Run(ctx)
	_ = a.clusterRedis.Close()
	return err
}

// selfNode is this node as the cluster sees it: the cameras it holds and,
// of those, the ones it is writing; alone, every enabled recorded camera.
func (a *App) selfNode() cluster.Node {
	cfg := a.config()
	n := cluster.Node{ID: a.nodeID, Zone: cfg.Node.Zone, Version: vigilVersion(), AdvertiseURL: cfg.Node.AdvertiseURL}
	if a.leases != nil {
		n.Cameras, n.Recording = a.heldAndRecording()
	} else {
		for _, c := range cfg.Cameras {
			if c.Enabled && c.Record {
				n.Cameras = append(n.Cameras, c.ID)
			}
		}
		slices.Sort(n.Cameras)
		n.Recording = n.Cameras
	}
	if b, err := os.ReadFile(cfg.CamerasPath); err == nil {
		sum := sha256.Sum256(b)
		n.RegistryHash = hex.EncodeToString(sum[:])
	}
	return n
}

// listNodes is GET /api/v1/nodes: the live nodes, or this one alone.
func (a *App) listNodes(w http.ResponseWriter, r *http.Request) {
	if a.nodes == nil {
		self := a.selfNode()
		self.Heartbeat = time.Now().UTC()
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"cluster": false, "nodes": []cluster.Node{self}})
		return
	}
	nodes, err := a.nodes.List(r.Context())
	if err != nil {
		httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "the cluster's Redis cannot be reached; retry later")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"cluster": true, "nodes": nodes})
}

// vigilVersion is the module version the binary was built from ("devel"
// for a build from a work tree).
func vigilVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
