package scenes

import "github.com/zerorealm/zerorealm/policy"

// Cedar entity types of the scene vocabulary. Scene policies are written
// against exactly these names, so requests must be built from them.
const (
	TypeAvatar   = "Avatar"
	TypeScene    = "Scene"
	TypeZone     = "Zone"
	TypeTwin     = "Twin"
	TypeActuator = "Actuator"
	TypeAsset    = "Asset"
	TypeAction   = "Action"
)

// Cedar action ids of the scene vocabulary (entity type [TypeAction]).
const (
	ActionJoinScene       = "JoinScene"       // resource: Scene
	ActionEnterZone       = "EnterZone"       // resource: Zone
	ActionTransferAsset   = "TransferAsset"   // resource: Asset
	ActionCommandActuator = "CommandActuator" // resource: Actuator
	ActionApproveCommand  = "ApproveCommand"  // resource: Actuator
	// ActionViewTwin is reading a twin: its actuators' envelopes, its
	// gateway's key, its live state, and the commands and approvals that
	// concern it.
	ActionViewTwin = "ViewTwin" // resource: Twin
)

// Context keys of the scene vocabulary; doc.go says which action carries which.
const (
	ContextTrust = "trust" // record, see the Trust* keys
	// ContextAuthenticator is a record about the passkey that signed the
	// session in, every action: see the Authenticator* keys. A scene that
	// requires attested authenticators forbids unless
	// context.authenticator.attested.
	ContextAuthenticator = "authenticator"
	ContextAvatarZone    = "avatar_zone" // String: zone the avatar stands in, "" if none
	ContextAmount        = "amount"      // Long: base units moved by a transfer
	ContextHighValue     = "high_value"  // Bool: the realm judged the transfer high value
	ContextStepUp        = "step_up"     // Bool: a fresh step-up is bound to this command
	ContextApproved      = "approved"    // Bool: a second person approved this command (ApproveCommand)
	// ContextVelocity is a record, on TransferAsset of a fungible asset:
	// what the avatar moved out of the collection recently, this transfer
	// included (see the Velocity* keys). Absent for unique assets.
	ContextVelocity = "velocity"

	TrustState           = "state"            // String: "trusted", "step-up" or "suspended"
	TrustScore           = "score"            // decimal 0..1
	TrustBiometric       = "biometric"        // decimal 0..1: probability the motion is the enrolled person's
	TrustPasskeyAgeS     = "passkey_age_s"    // Long: seconds since the last user-verified passkey assertion
	TrustDeviceAssurance = "device_assurance" // decimal 0..1

	VelocitySum1h    = "sum_1h"    // Long: base units moved out in the last hour, this transfer included
	VelocitySum24h   = "sum_24h"   // Long: base units moved out in the last 24 hours, this transfer included
	VelocityCount1h  = "count_1h"  // Long: transfers in the last hour, this one included
	VelocityCount24h = "count_24h" // Long: transfers in the last 24 hours, this one included

	AuthenticatorAttested = "attested" // Bool: its attestation statement verified (not "none", not self-attestation)
	AuthenticatorFormat   = "format"   // String: attestation format, e.g. "packed", "tpm", "none"
	AuthenticatorAAGUID   = "aaguid"   // String: the authenticator model, 32 hex digits
	AuthenticatorSynced   = "synced"   // Bool: backup eligible (a synced passkey)
)

// ActionUID returns the Cedar UID of one of the Action* ids.
func ActionUID(action string) policy.UID { return policy.UID{Type: TypeAction, ID: action} }

// SceneUID returns the Cedar UID of a scene.
func SceneUID(scene string) policy.UID { return policy.UID{Type: TypeScene, ID: scene} }

// ZoneUID returns the Cedar UID of a zone.
func ZoneUID(zone string) policy.UID { return policy.UID{Type: TypeZone, ID: zone} }

// TwinUID returns the Cedar UID of a twin.
func TwinUID(twin string) policy.UID { return policy.UID{Type: TypeTwin, ID: twin} }

// ActuatorUID returns the Cedar UID of an actuator. Actuator ids are unique
// only within their twin, so the UID carries both: "twin/actuator".
func ActuatorUID(twin, actuator string) policy.UID {
	return policy.UID{Type: TypeActuator, ID: twin + "/" + actuator}
}

// AssetUID returns the Cedar UID of an asset: "collection/item" for a unique
// item, "collection" for the balance of a fungible collection (item "").
func AssetUID(collection, item string) policy.UID {
	if item == "" {
		return policy.UID{Type: TypeAsset, ID: collection}
	}
	return policy.UID{Type: TypeAsset, ID: collection + "/" + item}
}

// Entities returns the scene's static Cedar entities: the scene, its zones
// (children of the scene), its twins (children of their zone) and their
// actuators (children of their twin, with the attributes twin, zone, risk
// and unit). The hierarchy lets a policy say `resource in Zone::"press-bay"`.
func (s *Scene) Entities() []policy.Entity {
	n := 1 + len(s.Zones) + len(s.Twins)
	for _, t := range s.Twins {
		n += len(t.Actuators)
	}
	sceneUID := SceneUID(s.ID)
	entities := make([]policy.Entity, 0, n)
	entities = append(entities, policy.Entity{UID: sceneUID})
	for _, z := range s.Zones {
		entities = append(entities, policy.Entity{UID: ZoneUID(z.ID), Parents: []policy.UID{sceneUID}})
	}
	for _, t := range s.Twins {
		twinUID := TwinUID(t.ID)
		entities = append(entities, policy.Entity{UID: twinUID, Parents: []policy.UID{ZoneUID(t.Zone)}})
		for _, a := range t.Actuators {
			entities = append(entities, policy.Entity{
				UID:     ActuatorUID(t.ID, a.ID),
				Parents: []policy.UID{twinUID},
				Attrs: map[string]any{
					"twin": t.ID,
					"zone": t.Zone,
					"risk": string(a.Risk),
					"unit": a.Unit,
				},
			})
		}
	}
	return entities
}

// AssetEntity returns the Cedar entity of an asset of c (item "" for a
// fungible balance), with the attributes collection, soulbound and kind.
func (c *Collection) AssetEntity(item string) policy.Entity {
	return policy.Entity{
		UID: AssetUID(c.ID, item),
		Attrs: map[string]any{
			"collection": c.ID,
			"soulbound":  c.Soulbound,
			"kind":       string(c.Kind),
		},
	}
}
