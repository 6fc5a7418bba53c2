// Package edge is the realm's HTTP plumbing, shared by every API package
// under realm/internal: the one mapping from an error to an RFC 9457
// problem answer, strict JSON request bodies, request ids and deadlines,
// the instrumentation around every request, the session check that turns
// a request into a Principal, the origin check, client addresses behind
// trusted proxies, and the token-bucket rate limiter.
//
// It owns no state of the realm's: what it needs to authenticate (the
// session manager, the avatar directory) and to report (tampering, the
// address a session was seen from) comes in as small interfaces, bound by
// the composition root before the realm reports ready. The API packages
// import it and nothing of each other.
package edge
