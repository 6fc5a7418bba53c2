// Package policy is the criteria-based half of the realm's policy engine: it
// loads Cedar policies, keeps them as an immutable Set, and decides requests
// with the reasons an auditor needs.
//
// Decisions follow Cedar: the default is deny, a matching forbid overrides
// every permit, and a policy whose evaluation fails is skipped (its error is
// reported in the Decision) rather than allowed to decide.
//
// A realm holds thousands of policies but any single request can only match
// the few written for its action and resource type, so a Set indexes each
// policy by the action and resource type its scope names and evaluates only
// that slice. A scope the index cannot pin down (an unconstrained action,
// `resource in Group::"g"`) puts the policy in every slice: slicing may
// evaluate too much, never too little, so it never changes a decision.
// `action in` is indexed under the named actions or groups, and a request's
// action ancestry (from the request's entities) selects the groups it falls
// in.
//
// Converting a request's entities to Cedar values is most of a decision's
// cost, and many requests carry the same ones (a scene's zones, twins and
// actuators): NewEntities converts such a set once, and a Request passes it
// as Shared next to its own few Entities.
//
// Every policy has an id that decisions and audit records cite: the value of
// its @id("...") annotation, unique across the Set, or else "<file>#<n>" with
// n its index in the file from 0.
package policy
