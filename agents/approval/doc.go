// Package approval is the owner's approval queue: an agent's action that
// its delegation or its trust says the owner must approve (a transfer over
// the auto-approval value, a high-risk command, any action of an agent in
// step-up) waits here until the owner approves it with a passkey step-up
// bound to that very action, rejects it, the agent cancels it, or it
// expires. Approving runs the action once, on whichever node the owner
// reached: the queue's records live in a sealed JetStream bucket and every
// change of state is a compare-and-set, so two nodes never both run it.
//
// The queue knows no action's details. A part enqueues a Request with its
// own payload and registers, once, the Executor of its kind; the executor
// decides the action again when it runs (the chain may be revoked, the
// limits spent, the policy changed since it was asked).
package approval
