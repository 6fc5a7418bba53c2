package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// A revocation takes effect on every realm node before the store has it
// (package agents/cascade): the node that makes it denies it here (Deny),
// tells the other live nodes over core NATS, each of which denies it too,
// and then stores it (Store), retrying while the agent-revocations bucket
// cannot be written. A told revocation is kept apart from what the store
// says, so that reloading the mirror from a store that does not have it
// yet cannot forget it; it is kept for as long as a delegation it stops
// could live.

// RevocationKind says what a Revocation stops.
type RevocationKind string

// The kinds a revocation told between nodes can have.
const (
	// KindDelegation revokes one delegation and every delegation derived
	// from it; the Revocation's ID is the delegation's (dg_...).
	KindDelegation RevocationKind = "delegation"
	// KindOwner revokes every delegation an owner issued up to the
	// Revocation's time; its ID is the owner's avatar id.
	KindOwner RevocationKind = "owner"
)

// Revocation is one revocation as nodes tell each other of it, before the
// store has it.
type Revocation struct {
	Kind   RevocationKind
	ID     string
	By     string
	Reason string
	At     time.Time
}

// Maximum lengths of a Revocation's By and Reason: they are kept for the
// audit, and a notice from another node is bounded.
const (
	maxRevocationBy     = 128
	maxRevocationReason = 512
)

// Validate checks what a revocation says on its own.
func (rev Revocation) Validate() error {
	switch {
	case rev.Kind == KindDelegation && !validDelegationID(rev.ID):
		return deny(ReasonMalformed, "delegation id %.40q: want dg_ and 32 lower-case hex digits", rev.ID)
	case rev.Kind == KindOwner && !validOwner(rev.ID):
		return deny(ReasonMalformed, "owner %.70q: want an avatar id", rev.ID)
	case rev.Kind != KindDelegation && rev.Kind != KindOwner:
		return deny(ReasonMalformed, "revocation kind %.20q: want delegation or owner", rev.Kind)
	case rev.At.IsZero():
		return deny(ReasonMalformed, "revocation of %s without a time", rev.ID)
	case len(rev.By) > maxRevocationBy || len(rev.Reason) > maxRevocationReason:
		return deny(ReasonMalformed, "revocation of %s: by or reason too long", rev.ID)
	}
	return nil
}

func (rev Revocation) key() string {
	if rev.Kind == KindOwner {
		return ownerPrefix + rev.ID
	}
	return revokedPrefix + rev.ID
}

// Make validates a revocation of kind for id, made now by this node's
// clock.
func (r *Revocations) Make(kind RevocationKind, id, by, reason string) (Revocation, error) {
	rev := Revocation{Kind: kind, ID: id, By: by, Reason: reason, At: r.clock().UTC()}
	return rev, rev.Validate()
}

// Deny makes rev, a revocation this node makes, take effect in its mirror
// at once, without the store, and tells the OnRevoke function if it is
// new here. It outlives reloads of the mirror until the change feed shows
// it stored, or no delegation it stops can still be valid. It fails, changing nothing, for a revocation
// that does not validate.
func (r *Revocations) Deny(rev Revocation) error { return r.deny(rev, false) }

// Hear is Deny for a revocation another node made and told this one of:
// its maker told the twin gateways already, so what is new here goes to
// the OnHear function instead of OnRevoke.
func (r *Revocations) Hear(rev Revocation) error { return r.deny(rev, true) }

// OnHear has fn told of each revocation new here that another node made
// (Hear). The realm repeats them in its gateways' heartbeats. fn must not
// block; it replaces any earlier one.
func (r *Revocations) OnHear(fn func(ids ...string)) {
	r.mu.Lock()
	r.heard = fn
	r.mu.Unlock()
}

func (r *Revocations) deny(rev Revocation, heard bool) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	rev.At = rev.At.UTC()
	r.mu.Lock()
	now := r.clock()
	for k, t := range r.told {
		if now.Sub(t.At) > MaxLifetime+time.Hour {
			delete(r.told, k)
		}
	}
	if r.told == nil {
		r.told = map[string]Revocation{}
	}
	if prev, ok := r.told[rev.key()]; !ok || rev.At.After(prev.At) {
		r.told[rev.key()] = rev
	}
	fresh := r.denyLocked(rev)
	notify := r.notify
	if heard {
		notify = r.heard
	}
	r.mu.Unlock()
	if fresh && notify != nil {
		notify(rev.ID)
	}
	return nil
}

// denyLocked adds rev to the mirror's maps and reports whether it stops
// anything the maps did not stop already.
func (r *Revocations) denyLocked(rev Revocation) bool {
	if rev.Kind == KindOwner {
		if at, ok := r.owners[rev.ID]; ok && !rev.At.After(at) {
			return false
		}
		r.owners[rev.ID] = rev.At
		return true
	}
	if _, ok := r.ids[rev.ID]; ok {
		return false
	}
	r.ids[rev.ID] = struct{}{}
	return true
}

// Store writes rev to the agent-revocations bucket unless the bucket holds
// it already (an owner's revocation at rev's time or later): idempotent,
// so the node that made it and every node told of it may all run it. rev
// must have been denied here first (Deny or Hear): one whose record the
// change feed has brought since is stored, which costs no read.
func (r *Revocations) Store(ctx context.Context, rev Revocation) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	r.mu.RLock()
	t, pending := r.told[rev.key()]
	r.mu.RUnlock()
	if !pending || t.At.After(rev.At) {
		// Stored already, or a later revocation of the same owner, which
		// stops more, is to be stored instead.
		return nil
	}
	e, err := r.bucket.Get(ctx, rev.key())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("agents: revoke %s: %w", rev.key(), err)
	case rev.Kind == KindDelegation:
		return nil
	default:
		var stored revocationRecord
		if json.Unmarshal(e.Value, &stored) == nil && !stored.At.Before(rev.At) {
			return nil
		}
		// An owner's earlier revocation is replaced with compare-and-set,
		// so that a later one stored meanwhile is never put back to an
		// earlier time; a conflict is retried.
		data, err := json.Marshal(revocationRecord{By: rev.By, Reason: rev.Reason, At: rev.At})
		if err != nil {
			return err
		}
		if _, err := r.bucket.Update(ctx, rev.key(), data, e.Revision); err != nil {
			return fmt.Errorf("agents: revoke %s: %w", rev.key(), err)
		}
		return nil
	}
	return r.put(ctx, rev.key(), revocationRecord{By: rev.By, Reason: rev.Reason, At: rev.At})
}
