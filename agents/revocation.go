package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Revocations is the realm's list of revoked delegations, durable in the
// sealed bucket agent-revocations and mirrored in memory on every node:
//
//	dg.<delegation id>  a revoked block: it and every block derived from it
//	owner.<avatar id>   every delegation of the avatar issued up to the
//	                    record's time (sign out everywhere, a suspended owner)
//	agent.<agent id>    a suspended agent: its behaviour suspended it, on
//	                    whichever node saw it; every chain through it stops
//
// A chain is revoked when any of its blocks is, so revoking a delegation
// revokes everything derived from it without knowing what was derived. A
// delegation lives at most MaxLifetime after it was issued, so a record
// need not outlive that: the bucket's TTL drops it after MaxLifetime and
// an hour.
//
// The mirror follows the bucket's change feed. While the feed may be
// missing changes it fails closed: every check answers unavailable.
type Revocations struct {
	bucket *store.Bucket
	log    *slog.Logger
	clock  func() time.Time

	mu      sync.RWMutex
	ids     map[string]struct{}
	owners  map[string]time.Time
	agents  map[string]struct{} // suspended
	current bool                // the mirror has every change
	notify  func(ids ...string) // told of each revocation new to the mirror
	// told are revocations other nodes (or this one) told of before the
	// store had them, by key (told.go): each reload keeps them, until
	// the change feed brings their records.
	told  map[string]Revocation
	heard func(ids ...string) // told of each revocation another node made

	stop context.CancelFunc
	done chan struct{}
}

// ErrRevocationsUnknown reports that this node cannot vouch for its list
// of revocations right now (its change feed is lost): agents are refused
// until it can. It wraps store.ErrUnavailable.
var ErrRevocationsUnknown = fmt.Errorf("agents: revocations unknown on this node: %w", store.ErrUnavailable)

type revocationRecord struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

const (
	revokedPrefix = "dg."
	ownerPrefix   = "owner."
	agentPrefix   = "agent."
)

// openRevocations declares the bucket, loads it and follows its changes
// until Close.
func openRevocations(ctx context.Context, st *store.Store, log *slog.Logger, clock func() time.Time) (*Revocations, error) {
	b, err := st.Bucket(ctx, store.BucketConfig{Name: "agent-revocations", TTL: MaxLifetime + time.Hour, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		return nil, fmt.Errorf("agents: revocations bucket: %w", err)
	}
	feedCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	// The feed starts before the load, so nothing written between the two
	// is missed.
	feed, err := b.Changes(feedCtx, ">")
	if err != nil {
		stop()
		return nil, fmt.Errorf("agents: revocations feed: %w", err)
	}
	r := &Revocations{bucket: b, log: log, clock: clock, stop: stop, done: make(chan struct{})}
	if err := r.reload(ctx); err != nil {
		stop()
		for range feed {
		}
		return nil, err
	}
	go r.follow(feedCtx, feed)
	return r, nil
}

// Close stops following the bucket.
func (r *Revocations) Close() {
	r.stop()
	<-r.done
}

func (r *Revocations) reload(ctx context.Context) error {
	keys, err := r.bucket.Keys(ctx)
	if err != nil {
		return fmt.Errorf("agents: load revocations: %w", err)
	}
	ids, owners, agents := map[string]struct{}{}, map[string]time.Time{}, map[string]struct{}{}
	for _, k := range keys {
		if err := r.load(ctx, k, ids, owners, agents); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.ids, r.owners, r.agents, r.current = ids, owners, agents, true
	for _, rev := range r.told {
		r.denyLocked(rev)
	}
	r.mu.Unlock()
	return nil
}

// load reads one record into ids, owners or agents.
func (r *Revocations) load(ctx context.Context, key string, ids map[string]struct{}, owners map[string]time.Time, agents map[string]struct{}) error {
	if id, ok := strings.CutPrefix(key, revokedPrefix); ok {
		ids[id] = struct{}{}
		return nil
	}
	if id, ok := strings.CutPrefix(key, agentPrefix); ok {
		agents[id] = struct{}{}
		return nil
	}
	owner, ok := strings.CutPrefix(key, ownerPrefix)
	if !ok {
		return nil
	}
	e, err := r.bucket.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agents: revocation %s: %w", key, err)
	}
	var rec revocationRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return fmt.Errorf("agents: revocation %s: %w", key, err)
	}
	owners[owner] = rec.At
	return nil
}

func (r *Revocations) follow(ctx context.Context, feed <-chan store.Change) {
	defer close(r.done)
	// A feed that ended (Close, or the connection closed for good) hears
	// nothing more: the mirror must not vouch for the list any longer.
	defer func() {
		r.mu.Lock()
		r.current = false
		r.mu.Unlock()
	}()
	for ch := range feed {
		switch {
		case ch.Lost:
			r.log.Warn("agent revocations feed lost: refusing agents until it resumes")
			r.mu.Lock()
			r.current = false
			r.mu.Unlock()
		case ch.Resumed:
			if err := r.reload(ctx); err != nil {
				r.log.Warn("agent revocations feed resumed but the list did not load; still refusing agents", "err", err)
				continue
			}
			r.log.Info("agent revocations feed resumed")
		case ch.Deleted:
			r.mu.Lock()
			delete(r.ids, strings.TrimPrefix(ch.Key, revokedPrefix))
			delete(r.owners, strings.TrimPrefix(ch.Key, ownerPrefix))
			delete(r.agents, strings.TrimPrefix(ch.Key, agentPrefix))
			r.mu.Unlock()
		default:
			if err := r.apply(ctx, ch.Key); err != nil {
				// A revocation this node cannot read must not be ignored.
				r.log.Warn("agent revocation unreadable: refusing agents until the list reloads", "key", ch.Key, "err", err)
				r.mu.Lock()
				r.current = false
				r.mu.Unlock()
				if err := r.reload(ctx); err != nil {
					r.log.Warn("agent revocations did not reload", "err", err)
				}
			}
		}
	}
}

func (r *Revocations) apply(ctx context.Context, key string) error {
	ids, owners, agents := map[string]struct{}{}, map[string]time.Time{}, map[string]struct{}{}
	if err := r.load(ctx, key, ids, owners, agents); err != nil {
		return err
	}
	// Only what is new to the mirror is told on: a revocation told
	// between nodes before the store had it was told on then.
	var named []string
	r.mu.Lock()
	for id := range ids {
		delete(r.told, revokedPrefix+id) // stored: the store keeps it now
		if r.denyLocked(Revocation{Kind: KindDelegation, ID: id}) {
			named = append(named, id)
		}
	}
	for id := range agents {
		if _, ok := r.agents[id]; !ok {
			r.agents[id] = struct{}{}
			named = append(named, id)
		}
	}
	for o, at := range owners {
		if t, ok := r.told[ownerPrefix+o]; ok && !at.Before(t.At) {
			delete(r.told, ownerPrefix+o)
		}
		if r.denyLocked(Revocation{Kind: KindOwner, ID: o, At: at}) {
			named = append(named, o)
		}
	}
	notify := r.notify
	r.mu.Unlock()
	if notify != nil && len(named) > 0 {
		notify(named...)
	}
	return nil
}

// OnRevoke has fn told, on every node, of each revocation as it becomes
// known here, from another node's word (Deny) or the change feed, once: a delegation id (dg_...), a suspended
// agent (ag_...) or an owner who revoked every agent (av_...). The realm
// passes them on to twin gateways. fn must not block; it replaces any
// earlier one.
func (r *Revocations) OnRevoke(fn func(ids ...string)) {
	r.mu.Lock()
	r.notify = fn
	r.mu.Unlock()
}

// Revoke revokes delegation id and, through the chain check, every
// delegation derived from it. Idempotent. Who may revoke what is the
// caller's decision (the owner, an administrator, or the holder of a block
// above it); by and reason are kept for the audit.
func (r *Revocations) Revoke(ctx context.Context, id, by, reason string) error {
	return r.denyAndStore(ctx, KindDelegation, id, by, reason)
}

// denyAndStore makes a revocation take effect here, then stores it. A
// revocation denied here stays denied when the store fails: the mirror
// fails closed.
func (r *Revocations) denyAndStore(ctx context.Context, kind RevocationKind, id, by, reason string) error {
	rev, err := r.Make(kind, id, by, reason)
	if err != nil {
		return err
	}
	if err := r.Deny(rev); err != nil {
		return err
	}
	return r.Store(ctx, rev)
}

// RevokeOwner revokes every delegation owner has issued up to now: what
// "sign out everywhere", or the owner's own trust becoming suspended,
// does to the owner's agents. Delegations confirmed later are not
// affected.
func (r *Revocations) RevokeOwner(ctx context.Context, owner, by, reason string) error {
	return r.denyAndStore(ctx, KindOwner, owner, by, reason)
}

// Suspend stops agent (an agent id) on every node, and every chain that
// passes through it, until Reinstate.
func (r *Revocations) Suspend(ctx context.Context, agent, by, reason string) error {
	if !validAgentID(agent) {
		return deny(ReasonMalformed, "agent id %.40q: want ag_ and 32 hex digits", agent)
	}
	if err := r.put(ctx, agentPrefix+agent, revocationRecord{By: by, Reason: reason, At: r.clock().UTC()}); err != nil {
		return err
	}
	r.mu.Lock()
	r.agents[agent] = struct{}{}
	r.mu.Unlock()
	return nil
}

// Reinstate lifts an agent's suspension: the owner's decision, after
// looking at what the agent did.
func (r *Revocations) Reinstate(ctx context.Context, agent string) error {
	if !validAgentID(agent) {
		return deny(ReasonMalformed, "agent id %.40q: want ag_ and 32 hex digits", agent)
	}
	e, err := r.bucket.Get(ctx, agentPrefix+agent)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agents: reinstate %s: %w", agent, err)
	}
	if err := r.bucket.Delete(ctx, agentPrefix+agent, e.Revision); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("agents: reinstate %s: %w", agent, err)
	}
	r.mu.Lock()
	delete(r.agents, agent)
	r.mu.Unlock()
	return nil
}

// Suspended reports whether agent is suspended.
func (r *Revocations) Suspended(agent string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.agents[agent]
	return ok
}

func (r *Revocations) put(ctx context.Context, key string, rec revocationRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := r.bucket.Put(ctx, key, data); err != nil {
		return fmt.Errorf("agents: revoke %s: %w", key, err)
	}
	return nil
}

// Check refuses a chain any block of which is revoked, or whose owner
// revoked every delegation issued up to a time after the chain's root.
func (r *Revocations) Check(c *Chain) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// What is known revoked is refused as revoked even while the feed is
	// lost: a revocation told between nodes needs no feed.
	for i := range c.Blocks {
		if _, ok := r.ids[c.Blocks[i].Grant.ID]; ok {
			if i == len(c.Blocks)-1 {
				return deny(ReasonRevoked, "delegation %s was revoked", c.Blocks[i].Grant.ID)
			}
			return deny(ReasonRevoked, "delegation %s was revoked, and %s derives from it", c.Blocks[i].Grant.ID, c.Leaf().ID)
		}
	}
	if at, ok := r.owners[c.Owner()]; ok && !c.Root().IssuedAt.After(at) {
		return deny(ReasonRevoked, "owner %s revoked every delegation issued up to %s", c.Owner(), at.Format(time.RFC3339))
	}
	if !r.current {
		return ErrRevocationsUnknown
	}
	if len(r.agents) > 0 {
		for _, a := range c.Agents() {
			if _, ok := r.agents[a]; ok {
				return deny(ReasonSuspended, "agent %s is suspended, and this delegation passes through it", a)
			}
		}
	}
	return nil
}
