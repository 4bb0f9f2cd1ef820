package app

import (
	"regexp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// namingRegisterer registers collectors in the node's registry and remembers
// the names of the metrics they describe, so that the node can say which
// metrics it exports even before a labelled series exists.
type namingRegisterer struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]bool
}

var _ prometheus.Registerer = (*namingRegisterer)(nil)

func newNamingRegisterer(r *prometheus.Registry) *namingRegisterer {
	return &namingRegisterer{Registry: r, names: map[string]bool{}}
}

// fqNamePattern takes the metric name out of a Desc's String form, the only
// place client_golang exposes it.
var fqNamePattern = regexp.MustCompile(`fqName: "([^"]+)"`)

func (n *namingRegisterer) Register(c prometheus.Collector) error {
	if err := n.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	n.mu.Lock()
	defer n.mu.Unlock()
	for d := range ch {
		if m := fqNamePattern.FindStringSubmatch(d.String()); m != nil {
			n.names[m[1]] = true
		}
	}
	return nil
}

func (n *namingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := n.Register(c); err != nil {
			panic(err)
		}
	}
}

// MetricNames lists every metric registered on the node, sorted.
func (a *App) MetricNames() []string {
	a.metrics.mu.Lock()
	defer a.metrics.mu.Unlock()
	out := make([]string, 0, len(a.metrics.names))
	for n := range a.metrics.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
