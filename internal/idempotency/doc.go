// Package idempotency remembers Idempotency-Keys, so that a client may
// retry a request whose answer it never got and receive the first answer
// instead of having the request carried out twice.
//
// The behaviour follows the IETF draft "The Idempotency-Key HTTP Header
// Field": a key is scoped to who sent it (the caller's principal) and
// names one request, identified by a fingerprint of what it asks (an
// intent's or a command's digest). A key sent again with the same
// fingerprint gets the first request's answer, or, while the first
// request is still being processed, ErrInProgress (409 Conflict, retry
// shortly); a key sent again with another fingerprint is ErrKeyReused
// (422 Unprocessable Content) and changes nothing. A request that was
// refused releases its key, so it can be retried under the same key once
// the cause is fixed (after a step-up, say).
//
// Keys live in a store bucket, so every realm node answers a retry the
// same way, for as long as the bucket's TTL keeps them. Store keys are a
// hash of the scope, the principal and the client's key: the client's key
// is never stored, and two principals can use the same key.
package idempotency
