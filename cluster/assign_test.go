package cluster

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func cams(zone string, n int) []Camera {
	out := make([]Camera, n)
	for i := range out {
		out[i] = Camera{ID: fmt.Sprintf("%scam-%d", prefix(zone), i), Zone: zone}
	}
	return out
}

func prefix(zone string) string {
	if zone == "" {
		return ""
	}
	return zone + "-"
}

func nodesIn(zone string, n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{ID: fmt.Sprintf("%snode-%d", prefix(zone), i), Zone: zone}
	}
	return out
}

func loads(a map[string]string) map[string]int {
	l := map[string]int{}
	for _, n := range a {
		l[n]++
	}
	return l
}

func TestAssignBalanced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cameras []Camera
		nodes   []Node
		want    map[string]int // cameras per node
	}{
		{"3 cameras on 3 nodes", cams("", 3), nodesIn("", 3), map[string]int{"node-0": 1, "node-1": 1, "node-2": 1}},
		{"4 cameras on 3 nodes", cams("", 4), nodesIn("", 3), nil},
		{"2 cameras on 3 nodes", cams("", 2), nodesIn("", 3), nil},
		{"1 node takes all", cams("", 5), nodesIn("", 1), map[string]int{"node-0": 5}},
		{"100 cameras on 7 nodes", cams("", 100), nodesIn("", 7), nil},
		{"zones keep their cameras", append(cams("village-3", 2), cams("town", 4)...),
			append(nodesIn("town", 2), nodesIn("village-3", 1)...),
			map[string]int{"town-node-0": 2, "town-node-1": 2, "village-3-node-0": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Assign(tc.cameras, tc.nodes)
			if len(a) != len(tc.cameras) {
				t.Fatalf("assigned %d of %d cameras: %v", len(a), len(tc.cameras), a)
			}
			l := loads(a)
			if tc.want != nil && !maps.Equal(l, tc.want) {
				t.Fatalf("loads %v, want %v", l, tc.want)
			}
			bound := (len(tc.cameras)+len(tc.nodes)-1)/len(tc.nodes) + 1
			for n, c := range l {
				if c > bound {
					t.Errorf("node %s holds %d cameras, bound %d", n, c, bound)
				}
			}
			// The same sets in another order give the same answer.
			rc, rn := slices.Clone(tc.cameras), slices.Clone(tc.nodes)
			slices.Reverse(rc)
			slices.Reverse(rn)
			if b := Assign(rc, rn); !maps.Equal(a, b) {
				t.Fatalf("order changed the assignment:\n%v\n%v", a, b)
			}
		})
	}
}

func TestAssignZones(t *testing.T) {
	cameras := []Camera{{ID: "v3-gate", Zone: "village-3"}, {ID: "hall", Zone: "town"}, {ID: "road", Zone: ""}, {ID: "v9-gate", Zone: "village-9"}}
	nodes := []Node{{ID: "town-1", Zone: "town"}, {ID: "v3", Zone: "village-3"}}
	a := Assign(cameras, nodes)
	if a["v3-gate"] != "v3" || a["hall"] != "town-1" {
		t.Errorf("zoned cameras: %v", a)
	}
	if a["road"] == "" {
		t.Errorf("a camera without a zone goes to any node: %v", a)
	}
	if n, ok := a["v9-gate"]; ok {
		t.Errorf("a camera whose zone has no node is held by nobody, got %s", n)
	}
}

// moved counts the cameras whose node differs between a and b, among those
// both assign.
func moved(a, b map[string]string) int {
	n := 0
	for c, x := range a {
		if y, ok := b[c]; ok && x != y {
			n++
		}
	}
	return n
}

// Adding or removing one node moves about that node's share, not a
// reshuffle.
func TestAssignStable(t *testing.T) {
	for _, tc := range []struct {
		cameras, nodes int
		slack          int // moves beyond the ideal share allowed
	}{
		{30, 3, 3},
		{100, 5, 5},
		{12, 2, 2},
		{64, 8, 4},
	} {
		t.Run(fmt.Sprintf("%d cameras %d nodes", tc.cameras, tc.nodes), func(t *testing.T) {
			cs := cams("", tc.cameras)
			before := Assign(cs, nodesIn("", tc.nodes))
			// A node joins: it takes about cameras/(nodes+1).
			after := Assign(cs, nodesIn("", tc.nodes+1))
			share := (tc.cameras + tc.nodes) / (tc.nodes + 1)
			if m := moved(before, after); m > share+tc.slack {
				t.Errorf("join moved %d cameras, its share is %d", m, share)
			}
			// A node leaves: its cameras move, and a few more.
			gone := fmt.Sprintf("node-%d", tc.nodes-1)
			after = Assign(cs, nodesIn("", tc.nodes-1))
			own := loads(before)[gone]
			if m := moved(before, after); m > own+tc.slack {
				t.Errorf("leave moved %d cameras, the node held %d", m, own)
			}
		})
	}
}
