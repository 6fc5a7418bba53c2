// Package clustercast tells every live realm node of something over core
// NATS, which needs no JetStream leader, and counts who heard; and it
// retries a durable write in the background until it is stored. It is
// the shared half of the revocations that must take effect before the
// store has them (sessions in avatar/session/revocation, delegations in
// agents/cascade): each of those owns its notice format and what a node
// does with one.
//
// Whoever can publish on NATS could otherwise answer for a node that never
// heard, so every notice and every acknowledgement carries a tag under the
// cluster's message key (an Authenticator, internal/clustermsg): an
// acknowledgement that does not verify, over the request's own reply
// subject, is not counted, and a notice that does not verify is refused
// by Teller.Heard.
package clustercast
