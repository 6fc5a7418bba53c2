// Package sessiontrust keeps the trust of the sessions this realm node
// serves: one trust.Tracker per live session, fed the evidence the other
// parts observe (passkey assertions, the sign-in's context, a change of
// client address, a cloned credential, what an XR stream's motion shows),
// and the evidence behind it in the sealed "trust" bucket, so that any node
// can rebuild a session's tracker (a load balancer may send the next
// request elsewhere) and read its state.
//
// Every change of state is audited (AssessTrust) and announced through
// the hooks the composition root passes in: to the session's live
// connections, to the XR edge after a passkey, and to whatever stops an
// avatar's agents when its trust is suspended. A loop (Hub.Run) turns
// decay into a change of state without waiting for a request.
//
// The hub speaks no HTTP and imports no other part of the realm.
package sessiontrust
