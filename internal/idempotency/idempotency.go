package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

var (
	// ErrKeyReused reports a key already used for a request with another
	// fingerprint. Answer 422.
	ErrKeyReused = errors.New("idempotency: this Idempotency-Key was used for another request")
	// ErrInProgress reports a key whose first request has no answer yet.
	// Answer 409 with Retry-After.
	ErrInProgress = errors.New("idempotency: a request with this Idempotency-Key is still being processed")
	// ErrInvalidKey reports a key that is empty or too long.
	ErrInvalidKey = errors.New("idempotency: invalid Idempotency-Key")
)

// MaxKeyLen bounds a client's key.
const MaxKeyLen = 255

// Keys remembers the Idempotency-Keys of one kind of request in a bucket.
// It is safe for concurrent use.
type Keys struct {
	bucket bucket
	scope  string
}

// bucket is what Keys uses of a store.Bucket.
type bucket interface {
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Get(ctx context.Context, key string) (store.Entry, error)
	Last(ctx context.Context, key string) (store.Entry, error)
	Delete(ctx context.Context, key string, revision uint64) error
}

// New remembers keys in bucket under scope, which names the kind of
// request ("assets", "twin-commands"): one bucket may hold several.
func New(bucket *store.Bucket, scope string) *Keys {
	return &Keys{bucket: bucket, scope: scope}
}

// Record is what a key remembers: the fingerprint of its request and,
// once there is one, the answer.
type Record struct {
	Fingerprint []byte          `json:"fingerprint"`
	Status      int             `json:"status,omitempty"`
	Answer      json.RawMessage `json:"answer,omitempty"`
	// Revision and Created are the store's, as the claim read them: what
	// ReleaseHeld needs to free exactly this record, and its age.
	Revision uint64    `json:"-"`
	Created  time.Time `json:"-"`
}

// Done reports whether the record holds an answer.
func (r *Record) Done() bool { return r.Status != 0 }

// Claim takes key for the request with fingerprint. A new key returns
// (nil, nil): the caller carries the request out, then calls Complete or,
// if it refused the request, Release. A key taken for the same
// fingerprint returns its record, whose answer may not be there yet; a
// key taken for another fingerprint is ErrKeyReused.
func (k *Keys) Claim(ctx context.Context, principal, key string, fingerprint []byte) (*Record, error) {
	id, err := k.id(principal, key)
	if err != nil {
		return nil, err
	}
	value, _ := json.Marshal(Record{Fingerprint: fingerprint})
	var e store.Entry
	for attempt := 0; ; attempt++ {
		if _, err := k.bucket.Create(ctx, id, value); err == nil {
			return nil, nil
		} else if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("idempotency: claim: %w", err)
		}
		e, err = k.bucket.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTampered) {
			// The create's own check of a freed key (its delete marker)
			// may be answered by a replica that lags and knows no such
			// key, and call it held. The stream's leader tells: a key
			// it has freed is taken at the marker's revision, so that
			// of several claims one wins.
			last, lerr := k.bucket.Last(ctx, id)
			switch {
			case lerr == nil && last.Deleted:
				if _, uerr := k.bucket.Update(ctx, id, value, last.Revision); uerr == nil {
					return nil, nil
				} else if !errors.Is(uerr, store.ErrConflict) {
					return nil, fmt.Errorf("idempotency: claim: %w", uerr)
				}
			case lerr == nil:
				e, err = last, nil
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			if attempt < 2 {
				continue // released between the two calls: free again
			}
			// The create keeps finding the key held and every read finds
			// none: the replicas disagree while they catch up after an
			// outage. The key is neither free nor answered yet, which is
			// no 404 (the chaos suite saw one): ask for a retry.
			return nil, fmt.Errorf("idempotency: key %s is held but cannot be read yet: %w", id, store.ErrUnavailable)
		}
		if err != nil {
			return nil, fmt.Errorf("idempotency: read: %w", err)
		}
		break
	}
	var rec Record
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("idempotency: record %s: %w", id, err)
	}
	if !bytes.Equal(rec.Fingerprint, fingerprint) {
		return nil, ErrKeyReused
	}
	rec.Revision, rec.Created = e.Revision, e.Created
	return &rec, nil
}

// Complete records the answer to key's request.
func (k *Keys) Complete(ctx context.Context, principal, key string, fingerprint []byte, status int, answer []byte) error {
	id, err := k.id(principal, key)
	if err != nil {
		return err
	}
	value, err := json.Marshal(Record{Fingerprint: fingerprint, Status: status, Answer: answer})
	if err != nil {
		return fmt.Errorf("idempotency: encode: %w", err)
	}
	if _, err := k.bucket.Put(ctx, id, value); err != nil {
		return fmt.Errorf("idempotency: complete: %w", err)
	}
	return nil
}

// Release frees key after its request was refused, so that it may be
// sent again.
func (k *Keys) Release(ctx context.Context, principal, key string) error {
	id, err := k.id(principal, key)
	if err != nil {
		return err
	}
	if err := k.bucket.Delete(ctx, id, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("idempotency: release: %w", err)
	}
	return nil
}

// ReleaseHeld frees key if its record is still the one a claim read at
// revision (Record.Revision), and reports whether it did: for a caller
// that has established that the request holding the key can never be
// carried out. Of several callers that decide so at once, one frees it;
// a key answered or claimed anew meanwhile stays as it is.
func (k *Keys) ReleaseHeld(ctx context.Context, principal, key string, revision uint64) (bool, error) {
	id, err := k.id(principal, key)
	if err != nil {
		return false, err
	}
	if revision == 0 {
		return false, fmt.Errorf("%w: release %s held at revision 0", store.ErrInvalid, id)
	}
	switch err := k.bucket.Delete(ctx, id, revision); {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("idempotency: release held key: %w", err)
	}
}

// id is the bucket key of a client's key.
func (k *Keys) id(principal, key string) (string, error) {
	if key == "" || len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: want 1 to %d characters", ErrInvalidKey, MaxKeyLen)
	}
	sum := sha256.Sum256([]byte(k.scope + "\x00" + principal + "\x00" + key))
	return k.scope + "." + hex.EncodeToString(sum[:]), nil
}
