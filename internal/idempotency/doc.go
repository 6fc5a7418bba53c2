// Package idempotency remembers which request an Idempotency-Key was first
// used for, so that a client retrying a write after a lost answer gets
// the first answer instead of doing the write twice, and a key reused for
// a different request is refused instead of answered with another
// request's result.
//
// It knows nothing of HTTP: callers read the key from wherever their
// protocol carries it, digest their request as they define it, and decide
// how to answer each outcome. Keys are scoped per caller (the same key
// from two avatars names two requests) and kept in a sealed store bucket,
// whose TTL is how long a key is remembered.
package idempotency
