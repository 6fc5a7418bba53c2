package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Info is a realm node's entry in the shared node registry.
type Info struct {
	Node     string    `json:"node"`
	URL      string    `json:"url"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
}

// Registry publishes this node's heartbeat to the "nodes" bucket and keeps
// a live view of every node's, so any node can say who else is serving. A
// node that stops beating drops out of the view after three missed beats;
// the bucket's TTL removes it from storage.
type Registry struct {
	bucket   *store.Bucket
	self     Info
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu    sync.RWMutex
	known map[string]Info

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// StartRegistry writes this node's first beat and starts its heartbeat and
// its view of the others; Stop ends both. now dates the beats and judges
// which nodes are live (time.Now if nil); the beats themselves are paced
// in real time, as they keep the bucket's time to live, which the NATS
// server counts.
func StartRegistry(ctx context.Context, st *store.Store, self Info, interval time.Duration, now func() time.Time, log *slog.Logger) (*Registry, error) {
	if now == nil {
		now = time.Now
	}
	bucket, err := st.Bucket(ctx, store.BucketConfig{Name: "nodes", TTL: 6 * interval, Sealed: true})
	if err != nil {
		return nil, err
	}
	self.Version = buildinfo.Get().Version
	reg := &Registry{bucket: bucket, self: self, interval: interval, now: now, log: log, known: map[string]Info{}}
	if err := reg.beat(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	reg.cancel = cancel
	updates, err := bucket.Watch(runCtx, ">")
	if err != nil {
		cancel()
		return nil, err
	}
	reg.done.Add(2)
	go reg.follow(updates)
	go reg.heartbeat(runCtx)
	return reg, nil
}

func (n *Registry) beat(ctx context.Context) error {
	n.self.LastSeen = n.now().UTC()
	data, err := json.Marshal(n.self)
	if err != nil {
		return err
	}
	_, err = n.bucket.Put(ctx, n.self.Node, data)
	return err
}

// heartbeat refreshes this node's entry every interval of real time: it
// keeps the entry within the bucket's time to live, which the NATS server
// counts on its own clock, so a realm on a manual clock stays listed.
// The entry's date, and whether another node is stale, read n.now.
func (n *Registry) heartbeat(ctx context.Context) {
	defer n.done.Done()
	clock.Every(ctx, clock.Real{}, n.interval, func(ctx context.Context) {
		if err := n.beat(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("node heartbeat failed", "err", err)
		}
	})
}

func (n *Registry) follow(updates <-chan store.Entry) {
	defer n.done.Done()
	for e := range updates {
		n.mu.Lock()
		if e.Deleted {
			delete(n.known, e.Key)
		} else {
			var info Info
			if err := json.Unmarshal(e.Value, &info); err != nil {
				n.log.Warn("ignoring malformed node registry entry", "key", e.Key, "err", err)
			} else {
				n.known[e.Key] = info
			}
		}
		n.mu.Unlock()
	}
}

// Live lists the nodes seen within three heartbeats, by name.
func (n *Registry) Live() []Info {
	cutoff := n.now().Add(-3 * n.interval)
	n.mu.RLock()
	out := make([]Info, 0, len(n.known))
	for _, info := range n.known {
		if info.LastSeen.After(cutoff) {
			out = append(out, info)
		}
	}
	n.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// HandleList serves GET /v1/nodes: this node's name and the live nodes.
func (n *Registry) HandleList(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": n.self.Node, "nodes": n.Live()})
}

// Stop ends the heartbeat and removes this node's entry so others stop
// listing it at once rather than after it expires. A nil registry (a
// start that failed before it) does nothing.
func (n *Registry) Stop(ctx context.Context) {
	if n == nil {
		return
	}
	n.cancel()
	n.done.Wait()
	if err := n.bucket.Delete(ctx, n.self.Node, 0); err != nil {
		n.log.Warn("remove node from registry", "err", err)
	}
}

// Others names the other nodes believed live: those the registry lists
// and those heard otherwise (presence heartbeats, over core NATS, so
// heard while JetStream elects leaders), each once.
func (n *Registry) Others(heard []string) []string {
	seen := map[string]bool{n.self.Node: true}
	var out []string
	for _, info := range n.Live() {
		if !seen[info.Node] {
			seen[info.Node] = true
			out = append(out, info.Node)
		}
	}
	for _, node := range heard {
		if !seen[node] {
			seen[node] = true
			out = append(out, node)
		}
	}
	return out
}
