package cache

import (
	"container/list"
	"time"
)

// lru is a size-bounded map with least-recently-used eviction and per-entry
// expiry. It is not safe for concurrent use; Cache guards it.
type lru struct {
	max   int
	items map[int64]*list.Element
	order *list.List // front is most recently used
}

type lruItem struct {
	id     int64
	entry  Entry
	stored time.Time
}

func newLRU(max int) *lru {
	return &lru{max: max, items: make(map[int64]*list.Element), order: list.New()}
}

// get returns the entry for id if stored less than ttl ago; an expired one
// is removed. Expiry is checked against the current TTL, so lowering it
// applies to entries already held.
func (c *lru) get(id int64, now time.Time, ttl time.Duration) (Entry, bool) {
	el, ok := c.items[id]
	if !ok {
		return Entry{}, false
	}
	it := el.Value.(*lruItem)
	if now.Sub(it.stored) >= ttl {
		c.removeElement(el)
		return Entry{}, false
	}
	c.order.MoveToFront(el)
	return it.entry, true
}

// put stores entry and returns how many entries were evicted to make room.
func (c *lru) put(id int64, e Entry, now time.Time) (evicted int) {
	if el, ok := c.items[id]; ok {
		it := el.Value.(*lruItem)
		it.entry, it.stored = e, now
		c.order.MoveToFront(el)
		return 0
	}
	c.items[id] = c.order.PushFront(&lruItem{id: id, entry: e, stored: now})
	return c.trim()
}

func (c *lru) remove(id int64) {
	if el, ok := c.items[id]; ok {
		c.removeElement(el)
	}
}

func (c *lru) removeElement(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*lruItem).id)
}

// resize sets the bound and returns how many entries it evicted.
func (c *lru) resize(max int) (evicted int) {
	c.max = max
	return c.trim()
}

func (c *lru) trim() (evicted int) {
	for len(c.items) > c.max {
		c.removeElement(c.order.Back())
		evicted++
	}
	return evicted
}

func (c *lru) clear() {
	c.items = make(map[int64]*list.Element)
	c.order.Init()
}

func (c *lru) len() int { return len(c.items) }
