// Package risk is the one vocabulary of how dangerous a command to an
// actuator is: the four levels (low, medium, high, critical), their order,
// and the parser that refuses any other word with [ErrUnknown].
//
// Scenes declare an actuator's level, the twin command service and its
// gateways demand more of a commander as it rises, and an agent's
// delegation caps it; each of those domains names the level with a type
// alias of [Level], so a level passes between them without conversion and
// is spelled the same on every wire (JSON, Cedar attributes, audit records).
// What each level requires stays with the domain that requires it (a
// step-up, a second operator, never delegating critical): this package only
// says what the levels are and how they compare.
//
// It is a leaf: it imports nothing of the module, so that every domain may
// take it without pulling anything else in.
package risk
