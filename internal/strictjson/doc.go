// Package strictjson checks JSON text before encoding/json decodes it, for
// what encoding/json lets through: an object member named twice (the last
// one wins, so a signed or logged first value is not the one acted on),
// names that differ only in case (encoding/json matches fields without
// regard to case, so they are the same field twice), and invalid UTF-8
// (silently replaced by U+FFFD). Every request body, WebSocket message and
// peer message the realm decodes passes through Check first.
package strictjson
