package autodiscover

import (
	"container/list"
	"sync"
	"time"
)

// byteCache keeps byte strings for ttl within a byte budget: upstream
// answers, rendered QR codes.
//
// Every entry lives as long, and a hit does not make it live longer, so the
// oldest entry is always the first to expire: entries are kept in the order
// they came, expired ones leave from the front on every use, and over the
// budget the oldest go first.
type byteCache struct {
	mu      sync.Mutex
	byKey   map[string]*list.Element // of *cacheEntry
	order   list.List                // oldest first
	bytes   int
	ttl     time.Duration
	maxSize func() int // the budget, read on every put: a reload may change it
}

type cacheEntry struct {
	key     string
	body    []byte
	expires time.Time
}

// cacheEntryOverhead is what an entry costs besides its key and body: the
// map slot, the list element and the entry.
const cacheEntryOverhead = 160

func (e *cacheEntry) size() int { return len(e.key) + len(e.body) + cacheEntryOverhead }

func (c *byteCache) get(key string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropExpired(now)
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	return el.Value.(*cacheEntry).body, true
}

func (c *byteCache) put(key string, body []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*list.Element{}
	}
	c.dropExpired(now)
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	e := &cacheEntry{key: key, body: body, expires: now.Add(c.ttl)}
	budget := c.maxSize()
	if e.size() > budget {
		return
	}
	for c.bytes+e.size() > budget {
		c.remove(c.order.Front())
	}
	c.byKey[key] = c.order.PushBack(e)
	c.bytes += e.size()
}

// dropExpired removes the expired entries, all at the front.
func (c *byteCache) dropExpired(now time.Time) {
	for el := c.order.Front(); el != nil && !now.Before(el.Value.(*cacheEntry).expires); el = c.order.Front() {
		c.remove(el)
	}
}

func (c *byteCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	delete(c.byKey, e.key)
	c.bytes -= e.size()
}

// size is the bytes the cache holds now, as counted against its budget.
func (c *byteCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
