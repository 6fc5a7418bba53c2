package realm

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

// stepUpProofs remembers, for a short while, that a session completed a
// step-up bound to an action digest, so the action itself (deleting a
// passkey; later, a transfer or an actuator command) can require it. A
// proof is used once.
type stepUpProofs struct {
	bucket *store.Bucket

	// spent remembers, until they expire, the proofs this node used (key
	// and the proof's time): a used proof put back in the store (within
	// the store's clock skew, which its own check allows) is refused.
	mu    sync.Mutex
	spent map[string]time.Time
	// onReplay is told of a used proof put back (the realm audits it).
	onReplay func(key string)
}

// stepUpValidity is how long a completed step-up authorizes its action.
const stepUpValidity = 2 * time.Minute

func newStepUpProofs(ctx context.Context, st *store.Store) (*stepUpProofs, error) {
	// A proof is consumed right after the step-up that recorded it, often
	// on the same node: the replica a read lands on may not hold it yet,
	// and its absence refuses the action, so the leader confirms it.
	b, err := st.Bucket(ctx, store.BucketConfig{Name: "stepups", TTL: stepUpValidity, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		return nil, err
	}
	return &stepUpProofs{bucket: b}, nil
}

func proofKey(sessionID string, digest []byte) string {
	return sessionID + "." + hex.EncodeToString(digest)
}

func (p *stepUpProofs) record(ctx context.Context, sessionID string, digest []byte) error {
	_, err := p.bucket.Put(ctx, proofKey(sessionID, digest), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

var errStepUpRequired = errors.New("step-up required")

// consume spends the session's proof for digest. Deleting with the read
// revision makes two concurrent uses of one proof fail but one.
func (p *stepUpProofs) consume(ctx context.Context, sessionID string, digest []byte) error {
	key := proofKey(sessionID, digest)
	e, err := p.bucket.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return &edge.Error{Status: http.StatusForbidden, Err: errStepUpRequired,
			Detail: fmt.Sprintf("confirm this action with a passkey step-up first: POST /v1/webauthn/stepup/begin with action_digest %s", digestHex(digest))}
	}
	if err != nil {
		return err
	}
	at, perr := time.Parse(time.RFC3339Nano, string(e.Value))
	if perr != nil || time.Since(at) > stepUpValidity {
		_ = p.bucket.Delete(ctx, key, e.Revision)
		return &edge.Error{Status: http.StatusForbidden, Err: errStepUpRequired, Detail: "the step-up for this action has expired; confirm it again"}
	}
	if p.used(key, at) {
		if p.onReplay != nil {
			p.onReplay(key)
		}
		return &edge.Error{Status: http.StatusForbidden, Err: errStepUpRequired, Detail: "this step-up was already used (and its record put back); confirm the action again"}
	}
	if err := p.bucket.Delete(ctx, key, e.Revision); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &edge.Error{Status: http.StatusForbidden, Err: errStepUpRequired, Detail: "this step-up was already used; confirm the action again"}
		}
		return err
	}
	p.spend(key, at)
	return nil
}

// maxSpentProofs is the size at which expired entries of spent are
// dropped.
const maxSpentProofs = 1024

func (p *stepUpProofs) used(key string, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	spentAt, ok := p.spent[key]
	return ok && spentAt.Equal(at)
}

func (p *stepUpProofs) spend(key string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spent == nil {
		p.spent = map[string]time.Time{}
	}
	if len(p.spent) >= maxSpentProofs {
		for k, t := range p.spent {
			if time.Since(t) > stepUpValidity {
				delete(p.spent, k)
			}
		}
	}
	p.spent[key] = at
}
