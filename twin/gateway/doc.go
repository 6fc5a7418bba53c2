// Package gateway is the policy enforcement point that runs beside an
// actuator: it verifies each command grant's signature against pinned realm
// keys, its expiry, nonce, scope and the gateway's own interlocks before
// anything moves, and answers with a signed acknowledgement.
//
// It trusts the realm only as far as a valid, fresh, unrevoked grant goes, and
// refuses whatever it cannot verify.
package gateway
