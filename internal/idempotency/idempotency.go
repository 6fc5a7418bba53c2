package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zerorealm/zerorealm/internal/store"
)

// MaxKeyLength is the longest Idempotency-Key accepted.
const MaxKeyLength = 255

var (
	// ErrKeyTooLong: the key is longer than MaxKeyLength.
	ErrKeyTooLong = fmt.Errorf("idempotency: key longer than %d characters", MaxKeyLength)
	// ErrKeyReused: the key was first used for a request with another
	// digest.
	ErrKeyReused = errors.New("idempotency: key used for another request")
)

// Keys is one namespace of idempotency keys in a bucket. Several
// namespaces may share a bucket: each key is stored under its namespace.
type Keys struct {
	bucket    *store.Bucket
	namespace string
}

// New keeps keys in bucket under namespace (a bucket key token, such as
// "assets").
func New(bucket *store.Bucket, namespace string) *Keys {
	return &Keys{bucket: bucket, namespace: namespace}
}

// Claim ties caller's key to the request whose digest is given, the first
// time the key is seen. It returns first = true when the request is new
// and the caller should carry it out: the key was not used before, or is
// empty (without a key every request is new). It returns first = false
// when the key was used before for the same digest: the caller answers as
// the first request did (or, if that one has not finished, says so). A
// key used before for another digest is ErrKeyReused; a store failure is
// returned as it is, and nothing is claimed.
func (k *Keys) Claim(ctx context.Context, caller, key string, digest []byte) (first bool, err error) {
	if key == "" {
		return true, nil
	}
	if len(key) > MaxKeyLength {
		return false, ErrKeyTooLong
	}
	name := k.storeKey(caller, key)
	_, err = k.bucket.Create(ctx, name, digest)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrConflict) {
		return false, err
	}
	e, err := k.bucket.Get(ctx, name)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(e.Value, digest) {
		return false, ErrKeyReused
	}
	return false, nil
}

// storeKey is where caller's key is kept: hashed, because a key is any
// text the client chose and a bucket key allows few characters, and
// joined with the caller by a byte neither can hold, so two callers'
// keys never meet.
func (k *Keys) storeKey(caller, key string) string {
	sum := sha256.Sum256([]byte(caller + "\x00" + key))
	return k.namespace + "." + hex.EncodeToString(sum[:])
}
