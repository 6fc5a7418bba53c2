// Package ident is the one definition of the identifiers the realm's
// domains share: scene, zone, twin, actuator, collection and item ids are
// 1 to 64 of a-z, 0-9 and '-'.
//
// The alphabet is chosen so that an id is safe everywhere it travels
// without escaping: as a NATS subject token, a JetStream key, a URL path
// segment and a file name. scenes, twin and assets all validate with it,
// so an id a scene file declares is always one the twin registry and the
// ledger accept.
package ident
