// Package scenesapi serves the public reads of what a node serves: its
// build's version (GET /v1/version), its scenes (GET /v1/scenes) and one
// scene with its zones, twins, collections and policy ids
// (GET /v1/scenes/{id}), as wire views kept apart from the scenes
// package's model so the published JSON stays stable when the model
// changes.
//
// At start-up it audits the scenes and policies the node serves
// (RecordServed).
//
// It imports the scenes domain, internal/audit, internal/buildinfo and the shared
// realm/internal/edge; never the realm nor another part.
package scenesapi
