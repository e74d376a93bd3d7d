package webhook

import (
	"container/list"
	"sync"
)

// recentSet is a bounded LRU of delivery IDs. An entry is "pending" while its
// owner is offering the event and "queued" once the Sink took it; failed
// offers are removed so GitHub's redelivery is processed.
type recentSet struct {
	mu    sync.Mutex
	max   int
	byID  map[string]*list.Element // value: *recentEntry
	order *list.List               // front = most recently used
}

type recentEntry struct {
	id     string
	queued bool
	done   chan struct{} // closed when the pending offer finished
	elem   *list.Element
}

func newRecentSet(max int) *recentSet {
	return &recentSet{max: max, byID: make(map[string]*list.Element), order: list.New()}
}

// acquire returns exactly one of: dup (the ID was queued before), an entry the
// caller now owns and must release, or a channel to wait on while another
// request offers the same ID (then call acquire again).
func (s *recentSet) acquire(id string) (owned *recentEntry, dup bool, wait <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		e := el.Value.(*recentEntry)
		if e.queued {
			s.order.MoveToFront(el)
			return nil, true, nil
		}
		return nil, false, e.done
	}
	e := &recentEntry{id: id, done: make(chan struct{})}
	e.elem = s.order.PushFront(e)
	s.byID[id] = e.elem
	// Evict the least recently used queued IDs. Pending entries are never
	// evicted (that could let a twin through), so the set may exceed max by
	// the number of in-flight offers.
	for el := s.order.Back(); s.order.Len() > s.max && el != nil; {
		prev := el.Prev()
		if old := el.Value.(*recentEntry); old.queued {
			s.order.Remove(el)
			delete(s.byID, old.id)
		}
		el = prev
	}
	return e, false, nil
}

// release ends a pending offer: queued entries stay (as duplicates-to-be),
// failed ones are forgotten. Waiters are woken either way.
func (s *recentSet) release(e *recentEntry, queued bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if queued {
		e.queued = true
	} else {
		s.order.Remove(e.elem)
		delete(s.byID, e.id)
	}
	close(e.done)
}

func (s *recentSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
