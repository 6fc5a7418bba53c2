package audit

import (
	"context"
	"encoding/json"
	"fmt"
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
	ring     [][]byte // stored events, newest at (next-1) mod len
	next     int
	full     bool
	follower *store.Follower
}

// DefaultViewSize is how many recent events a View keeps when not told.
const DefaultViewSize = 10000

// Query filters a View.
type Query struct {
	Node    string  // only this node's events, if set
	Actor   string  // only this actor's, if set
	Outcome Outcome // only allows or denies, if set
	Limit   int     // at most this many, newest first; default 100, at most 1000
}

// NewView replays the AUDIT stream into memory (the last size events) and
// follows it until ctx ends or Close is called.
func NewView(ctx context.Context, st *store.Store, size int) (*View, error) {
	if size <= 0 {
		size = DefaultViewSize
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	v := &View{ring: make([][]byte, size)}
	f, err := stream.Follow(ctx, "audit.>", func(m store.Msg) error {
		v.add(m.Data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: follow: %w", err)
	}
	v.follower = f
	return v, nil
}

func (v *View) add(data []byte) {
	v.mu.Lock()
	v.ring[v.next] = data
	v.next++
	if v.next == len(v.ring) {
		v.next, v.full = 0, true
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
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	// Copy the references newest first and decode after releasing the
	// lock, so a query never holds up the stream feeding the view.
	v.mu.RLock()
	n := v.next
	if v.full {
		n = len(v.ring)
	}
	newest := make([][]byte, n)
	for i := range n {
		newest[i] = v.ring[(v.next-1-i+len(v.ring))%len(v.ring)]
	}
	v.mu.RUnlock()
	out := make([]Event, 0, min(limit, n))
	for _, data := range newest {
		if len(out) == limit {
			break
		}
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			// A foreign message is Verify's business; the view skips it.
			continue
		}
		if (q.Node != "" && ev.Node != q.Node) || (q.Actor != "" && ev.Actor != q.Actor) || (q.Outcome != "" && ev.Outcome != q.Outcome) {
			continue
		}
		out = append(out, ev)
	}
	return out
}
