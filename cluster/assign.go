package cluster

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// Camera is a camera as the assignment sees it: its ID and the zone whose
// nodes may record it ("" for any node).
type Camera struct {
	ID   string
	Zone string
}

// Assign says which node should hold each camera: rendezvous
// (highest-random-weight) hashing over the nodes that may record it, with a
// bound on load so that small clusters spread too. Cameras with a zone go
// to the nodes of that zone; cameras without one to any node. Each such
// group is balanced on its own: a node takes at most ⌈cameras/nodes⌉ of a
// group's cameras, so 3 cameras on 3 nodes are one each, or ⌈cameras/nodes⌉+1
// once that is 4 or more.
//
// The result depends only on the sets of cameras and nodes, not on their
// order, so every node computes the same one. Adding or removing one node
// moves about the share of that node and a few more. A camera whose zone has
// no live node is left out of the result: nobody may record it.
func Assign(cameras []Camera, nodes []Node) map[string]string {
	out := make(map[string]string, len(cameras))
	groups := map[string][]Camera{}
	for _, c := range cameras {
		groups[c.Zone] = append(groups[c.Zone], c)
	}
	for zone, cams := range groups {
		var ids []string
		for _, n := range nodes {
			if zone == "" || n.Zone == zone {
				ids = append(ids, n.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		assignGroup(cams, ids, out)
	}
	return out
}

// assignGroup places one group's cameras on nodes. Cameras are placed in
// the order of how strongly they prefer their first choice (strongest
// first), each on its highest-scoring node with room: a camera only moves
// off its first choice when stronger claims filled that node.
func assignGroup(cams []Camera, nodes []string, out map[string]string) {
	capacity := (len(cams) + len(nodes) - 1) / len(nodes)
	if capacity >= 4 {
		// One camera of slack keeps a join or leave from cascading once
		// nodes hold a few each; below that, spreading evenly matters more.
		capacity++
	}
	type ranked struct {
		id     string
		scores []scored // best first
	}
	rs := make([]ranked, len(cams))
	for i, c := range cams {
		ss := make([]scored, len(nodes))
		for j, n := range nodes {
			ss[j] = scored{node: n, score: weight(c.ID, n)}
		}
		slices.SortFunc(ss, func(a, b scored) int {
			if a.score != b.score {
				return cmp.Compare(b.score, a.score)
			}
			return cmp.Compare(a.node, b.node)
		})
		rs[i] = ranked{id: c.ID, scores: ss}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if a.scores[0].score != b.scores[0].score {
			return cmp.Compare(b.scores[0].score, a.scores[0].score)
		}
		return cmp.Compare(a.id, b.id)
	})
	load := map[string]int{}
	for _, r := range rs {
		for _, s := range r.scores {
			if load[s.node] < capacity {
				load[s.node]++
				out[r.id] = s.node
				break
			}
		}
	}
}

type scored struct {
	node  string
	score uint64
}

// weight is the rendezvous score of camera on node.
func weight(camera, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(camera))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return mix(h.Sum64())
}

// mix spreads FNV's output over all bits (the splitmix64 finalizer), so
// that IDs differing in one character get unrelated scores.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
