// Package scenes defines scenes, the worlds a realm hosts, and loads them
// from folders of YAML and Cedar files.
//
// A scene is a folder holding a scene.yaml and the Cedar policy files it
// names. The YAML declares the scene's zones (axis-aligned boxes in metres,
// OpenXR right-handed, y up), its digital twins and their actuators (value
// envelope, rate limit, risk), and its asset collections (unique or
// fungible, with their initial mints). The full schema reference is
// docs/scenes.md; the shipped example is builtin/foundry.
//
// Scene files are written by hand and may come from outside the operator's
// control, so the loader is strict: unknown fields, missing fields, bad ids,
// duplicates, dangling references, non-finite or unordered numbers, unknown
// enums, addresses not in EIP-55 checksum form and Cedar syntax errors are
// all problems, and a load reports every problem it finds, each placed at
// its file, line and column, in one *LoadError. A catalog either loads whole
// or not at all.
//
// # Cedar vocabulary
//
// Scene policies, and the code that builds requests for them, share one
// vocabulary (the Type*, Action* and Context* constants):
//
// Entity types:
//   - Avatar, with attributes roles (Set of String) and name (String).
//   - Scene, the parent of its zones; Zone, the parent of the twins in it;
//     Twin, the parent of its actuators.
//   - Actuator, id "twin/actuator", with attributes twin, zone, risk
//     ("low", "medium", "high" or "critical") and unit, all String.
//   - Asset, id "collection/item" for a unique item or "collection" for a
//     fungible balance, with attributes collection (String), soulbound (Bool)
//     and kind ("unique" or "fungible").
//
// [Scene.Entities] and [Collection.AssetEntity] build these entities.
//
// Actions (entity type Action) and the resource each takes: JoinScene
// (Scene), EnterZone (Zone), TransferAsset (Asset), CommandActuator
// (Actuator), ApproveCommand (Actuator), ViewTwin (Twin: its envelopes,
// gateway key and live state, and the commands and approvals about it).
//
// Context keys:
//   - trust, on every action: a record of state ("trusted", "step-up" or
//     "suspended"), score (decimal 0..1), biometric (decimal 0..1, the
//     probability that the streamed motion is the enrolled person's),
//     passkey_age_s (Long, seconds since the last user-verified passkey
//     assertion) and device_assurance (decimal 0..1).
//   - avatar_zone, on EnterZone and CommandActuator: the zone the avatar
//     stands in, "" if none.
//   - amount (Long, base units) and high_value (Bool), on TransferAsset.
//   - velocity, on TransferAsset of a fungible asset: a record of sum_1h,
//     sum_24h (Long, base units the avatar moved out of the collection in
//     the last hour and 24 hours), count_1h and count_24h (Long, transfers),
//     this transfer included; absent for unique assets.
//   - step_up (Bool: a fresh step-up is bound to this very command) and
//     approved (Bool: a second person approved it through ApproveCommand),
//     on CommandActuator.
//
// Policies should fail closed on missing context: a permit that reads a
// missing key fails to match, and a forbid should test with `has` so that a
// missing key makes it fire (see builtin/foundry/policies.cedar).
package scenes
