// Package twin is the realm's side of digital-twin control: the registry of
// twins and actuators from the scenes, the per-command authorization of
// actuator commands, and the short-lived signed grants the realm sends to a
// twin's gateway over NATS.
//
// The realm's decision is never the last word: twin/gateway verifies every
// grant again beside the actuator and fails closed.
package twin
