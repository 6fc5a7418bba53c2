package realm

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// stepUpProofs remembers, for a short while, that a session completed a
// step-up bound to an action digest, so the action itself (deleting a
// passkey; later, a transfer or an actuator command) can require it. A
// proof is used once.
type stepUpProofs struct {
	bucket *store.Bucket
}

// stepUpValidity is how long a completed step-up authorizes its action.
const stepUpValidity = 2 * time.Minute

func newStepUpProofs(ctx context.Context, st *store.Store) (*stepUpProofs, error) {
	b, err := st.Bucket(ctx, store.BucketConfig{Name: "stepups", TTL: stepUpValidity, Sealed: true})
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
		return &httpError{Status: http.StatusForbidden, Err: errStepUpRequired,
			Detail: fmt.Sprintf("confirm this action with a passkey step-up first: POST /v1/webauthn/stepup/begin with action_digest %s", digestHex(digest))}
	}
	if err != nil {
		return err
	}
	if at, perr := time.Parse(time.RFC3339Nano, string(e.Value)); perr != nil || time.Since(at) > stepUpValidity {
		_ = p.bucket.Delete(ctx, key, e.Revision)
		return &httpError{Status: http.StatusForbidden, Err: errStepUpRequired, Detail: "the step-up for this action has expired; confirm it again"}
	}
	if err := p.bucket.Delete(ctx, key, e.Revision); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &httpError{Status: http.StatusForbidden, Err: errStepUpRequired, Detail: "this step-up was already used; confirm the action again"}
		}
		return err
	}
	return nil
}
