package recorder

import (
	"container/list"
	"fmt"
	"os"
	"sync"
)

// exportCache keeps the sample tables of recently exported segments. A
// segment never changes once indexed, so its table stays valid as long as
// the file has the indexed size and hash; an investigator's manifest
// request followed by the export, or a player's range requests, then plan
// in a few milliseconds. It is bounded by the number of samples held.
type exportCache struct {
	max int

	mu    sync.Mutex
	n     int
	ll    *list.List // of *cacheEntry, most recent first
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key string
	src *srcSegment
	n   int
}

func newExportCache(maxSamples int) *exportCache {
	return &exportCache{max: maxSamples, ll: list.New(), byKey: make(map[string]*list.Element)}
}

// scan returns seg's table from the cache, after checking that the file is
// still there with its indexed size, or reads it. A nil cache always reads.
func (c *exportCache) scan(seg Segment, prev *srcSegment, scratch *[]byte) (*srcSegment, error) {
	if c == nil || seg.Open { // an open segment's table grows part by part
		return scanExportSource(seg, prev, scratch)
	}
	key := seg.Path + "\x00" + seg.SHA256
	c.mu.Lock()
	e, ok := c.byKey[key]
	if ok {
		c.ll.MoveToFront(e)
	}
	c.mu.Unlock()
	if ok {
		st, err := os.Stat(seg.Path)
		if err != nil || st.Size() != seg.Bytes {
			c.drop(key)
			return nil, fmt.Errorf("segment %s: gone or resized: %w", seg.ID, ErrSourceChanged)
		}
		return e.Value.(*cacheEntry).src, nil
	}
	src, err := scanExportSource(seg, prev, scratch)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, p := range src.parts {
		for _, t := range p.tracks {
			n += len(t)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; !ok && n <= c.max {
		c.byKey[key] = c.ll.PushFront(&cacheEntry{key: key, src: src, n: n})
		c.n += n
		for c.n > c.max {
			last := c.ll.Back()
			ce := last.Value.(*cacheEntry)
			c.ll.Remove(last)
			delete(c.byKey, ce.key)
			c.n -= ce.n
		}
	}
	return src, nil
}

func (c *exportCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.n -= e.Value.(*cacheEntry).n
		c.ll.Remove(e)
		delete(c.byKey, key)
	}
}
