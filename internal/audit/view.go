package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/zerorealm/zerorealm/internal/store"
)

// View is a read model of recent audit events from every node's chain, kept
// current by following the AUDIT stream. Each realm node has its own, so the
// audit viewer works through any node.
//
// It keeps the events as stored and decodes them only when asked: every
// decision of the cluster passes through every node's view, and far fewer
// are ever looked at.
type View struct {
	mu       sync.RWMutex
	ring     []stored // newest at (next-1) mod len; positions grow with the index
	next     int
	full     bool
	follower *store.Follower
}

// stored is one event as stored, with its place in the AUDIT stream.
type stored struct {
	data []byte
	pos  Cursor
}

// DefaultViewSize is how many recent events a View keeps when not told.
const DefaultViewSize = 10000

// NewView replays the AUDIT stream into memory (the last size events) and
// follows it until ctx ends or Close is called. WaitApplied takes stream
// sequences, which count blocks, not events.
func NewView(ctx context.Context, st *store.Store, size int) (*View, error) {
	if size <= 0 {
		size = DefaultViewSize
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	v := &View{ring: make([]stored, size)}
	f, err := stream.Follow(ctx, "audit.>", func(m store.Msg) error {
		v.add(m.Seq, m.Data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: follow: %w", err)
	}
	v.follower = f
	return v, nil
}

// add keeps each event of a stored block (one per line), with the block's
// stream sequence and the line's number as its place.
func (v *View) add(seq uint64, data []byte) {
	v.mu.Lock()
	for line := uint32(0); len(data) > 0; line++ {
		ev := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ev, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		v.ring[v.next] = stored{data: ev, pos: Cursor{Seq: seq, Line: line}}
		v.next++
		if v.next == len(v.ring) {
			v.next, v.full = 0, true
		}
	}
	v.mu.Unlock()
}

// Close stops following.
func (v *View) Close() { v.follower.Stop() }

// WaitApplied blocks until the view has applied the given stream sequence.
func (v *View) WaitApplied(ctx context.Context, seq uint64) error {
	return v.follower.WaitApplied(ctx, seq)
}

// Events returns the newest events that match q, newest first.
func (v *View) Events(q Query) []Event {
	return v.Page(q).Events
}

// Page is one page of a query's answer.
type Page struct {
	// Events match the query, newest first (in the order they were
	// stored in the AUDIT stream, the same on every node).
	Events []Event
	// Next is the cursor for the following, older page; zero when no
	// older event in the view matches.
	Next Cursor
	// Truncated says the view's window ended before the page was full:
	// the view keeps only its newest events, so older matches may exist
	// in the stream (where Verify reads them) but are not listed.
	Truncated bool
}

// Page returns the newest events that match q and are older than q.Before
// (when set), newest first, and the cursor for the next page. A cursor
// stays valid while new events arrive, since it names a place in the
// stream rather than an offset from the newest event.
func (v *View) Page(q Query) Page {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	page := Page{Events: make([]Event, 0, min(limit, 64))}
	var last Cursor // the place of the last event on the page
	scanned := q.Before
	for chunk := 128; ; chunk = min(2*chunk, 4096) {
		older, truncated := v.older(scanned, chunk)
		for i := range older {
			s := &older[i]
			scanned = s.pos
			var head eventHead
			if err := json.Unmarshal(s.data, &head); err != nil {
				// A foreign message is Verify's business; the view skips it.
				continue
			}
			if !q.matches(&head) {
				continue
			}
			if len(page.Events) == limit {
				// One more match exists, so there is a next page: the
				// events older than this page's last one.
				page.Next = last
				return page
			}
			var ev Event
			if err := json.Unmarshal(s.data, &ev); err != nil {
				continue
			}
			page.Events = append(page.Events, ev)
			last = s.pos
		}
		if len(older) < chunk {
			page.Truncated = truncated
			return page
		}
	}
}

// older copies, newest first, up to n events stored before the place
// before (the zero cursor: from the newest event). Copying in chunks and
// decoding after releasing the lock keeps a query from holding up the
// stream feeding the view; places, unlike ring slots, do not move when
// events arrive between chunks. truncated says the view has dropped older
// events to make room, so fewer than n may not be the log's beginning.
func (v *View) older(before Cursor, n int) (events []stored, truncated bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	size, oldest := v.next, 0
	if v.full {
		size, oldest = len(v.ring), v.next
	}
	// at(i) is the i-th oldest event; the candidates are at(0..end-1).
	at := func(i int) *stored { return &v.ring[(oldest+i)%len(v.ring)] }
	end := size
	if !before.IsZero() {
		end = sort.Search(size, func(i int) bool { return !at(i).pos.Less(before) })
	}
	events = make([]stored, min(n, end))
	for i := range events {
		events[i] = *at(end - 1 - i)
	}
	return events, v.full
}

// Stored returns a node's event at index (from 1) exactly as stored: the
// leaf of the node's Merkle tree, which an inclusion proof proves. Only
// events still in the view's window are found.
func (v *View) Stored(node string, index uint64) ([]byte, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	size := v.next
	if v.full {
		size = len(v.ring)
	}
	var head struct {
		Node  string `json:"node"`
		Index uint64 `json:"index"`
	}
	for i := range size {
		s := &v.ring[(v.next-1-i+len(v.ring))%len(v.ring)]
		if !bytes.Contains(s.data, []byte(`"index":`+strconv.FormatUint(index, 10)+`,`)) {
			continue // most events are skipped without decoding
		}
		head.Node, head.Index = "", 0
		if json.Unmarshal(s.data, &head) == nil && head.Node == node && head.Index == index {
			return bytes.Clone(s.data), true
		}
	}
	return nil, false
}
