package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// StepUps remembers, for a short while, that a session completed a step-up
// bound to an action digest, so the action itself (deleting a passkey,
// changing roles, a transfer, an actuator command) can require it. A proof
// is used once.
type StepUps struct {
	bucket *store.Bucket
	now    func() time.Time
	// onReplay is told of a used proof put back (the realm audits it).
	onReplay func(key string)

	// spent remembers, until they expire, the proofs this node used (key
	// and the proof's time): a used proof put back in the store (within
	// the store's clock skew, which its own check allows) is refused.
	mu    sync.Mutex
	spent map[string]time.Time
}

// StepUpValidity is how long a completed step-up authorizes its action.
const StepUpValidity = 2 * time.Minute

// StepUpsBucket is the bucket the proofs live in.
const StepUpsBucket = "stepups"

// ErrStepUpRequired is behind every refusal of an action for want of a
// valid step-up proof.
var ErrStepUpRequired = errors.New("step-up required")

// NewStepUps opens the proofs' bucket. now is the clock their validity is
// judged by (time.Now if nil); onReplay (may be nil) is told the key of a
// used proof that was put back into the store.
func NewStepUps(ctx context.Context, st *store.Store, now func() time.Time, onReplay func(key string)) (*StepUps, error) {
	// A proof is consumed right after the step-up that recorded it, often
	// on the same node: the replica a read lands on may not hold it yet,
	// and its absence refuses the action, so the leader confirms it.
	b, err := st.Bucket(ctx, store.BucketConfig{Name: StepUpsBucket, TTL: StepUpValidity, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		return nil, err // the realm says which part failed to start
	}
	if now == nil {
		now = time.Now
	}
	return &StepUps{bucket: b, now: now, onReplay: onReplay}, nil
}

// proofKey is the key of a session's proof for digest in the bucket.
func proofKey(sessionID string, digest []byte) string {
	return sessionID + "." + hex.EncodeToString(digest)
}

// Record notes that the session completed a step-up bound to digest.
func (p *StepUps) Record(ctx context.Context, sessionID string, digest []byte) error {
	_, err := p.bucket.Put(ctx, proofKey(sessionID, digest), []byte(p.now().UTC().Format(time.RFC3339Nano)))
	return err
}

// Consume spends the session's proof for digest. Deleting with the read
// revision makes two concurrent uses of one proof fail but one.
func (p *StepUps) Consume(ctx context.Context, sessionID string, digest []byte) error {
	key := proofKey(sessionID, digest)
	e, err := p.bucket.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return &edge.Error{Status: http.StatusForbidden, Err: ErrStepUpRequired,
			Detail: fmt.Sprintf("confirm this action with a passkey step-up first: POST /v1/webauthn/stepup/begin with action_digest %s", edge.DigestHex(digest))}
	}
	if err != nil {
		return err
	}
	at, perr := time.Parse(time.RFC3339Nano, string(e.Value))
	if perr != nil || p.now().Sub(at) > StepUpValidity {
		_ = p.bucket.Delete(ctx, key, e.Revision)
		return &edge.Error{Status: http.StatusForbidden, Err: ErrStepUpRequired, Detail: "the step-up for this action has expired; confirm it again"}
	}
	if p.used(key, at) {
		if p.onReplay != nil {
			p.onReplay(key)
		}
		return &edge.Error{Status: http.StatusForbidden, Err: ErrStepUpRequired, Detail: "this step-up was already used (and its record put back); confirm the action again"}
	}
	if err := p.bucket.Delete(ctx, key, e.Revision); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &edge.Error{Status: http.StatusForbidden, Err: ErrStepUpRequired, Detail: "this step-up was already used; confirm the action again"}
		}
		return err
	}
	p.spend(key, at)
	return nil
}

// maxSpentProofs is the size at which expired entries of spent are
// dropped.
const maxSpentProofs = 1024

func (p *StepUps) used(key string, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	spentAt, ok := p.spent[key]
	return ok && spentAt.Equal(at)
}

func (p *StepUps) spend(key string, at time.Time) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spent == nil {
		p.spent = map[string]time.Time{}
	}
	if len(p.spent) >= maxSpentProofs {
		for k, t := range p.spent {
			if now.Sub(t) > StepUpValidity {
				delete(p.spent, k)
			}
		}
	}
	p.spent[key] = at
}
