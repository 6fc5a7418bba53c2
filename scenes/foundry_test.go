package scenes

import (
	"context"
	"slices"
	"testing"

	"github.com/zerorealm/zerorealm/policy"
)

func loadFoundry(tb testing.TB) *Scene {
	tb.Helper()
	c, err := LoadBuiltin()
	if err != nil {
		tb.Fatalf("LoadBuiltin() error:\n%v", err)
	}
	s, ok := c.Scene("foundry")
	if !ok {
		tb.Fatal(`Scene("foundry") not found`)
	}
	return s
}

func TestFoundryScene(t *testing.T) {
	s := loadFoundry(t)
	wantZones := []string{"lobby", "press-bay", "conveyor-line", "robot-cell", "walkway", "control-room"}
	var zones []string
	for _, z := range s.Zones {
		zones = append(zones, z.ID)
	}
	if !slices.Equal(zones, wantZones) {
		t.Errorf("foundry zones = %q, want %q", zones, wantZones)
	}
	// Later features rely on these twins, actuators and risks.
	wantActuators := []struct {
		twin, zone, actuator, unit string
		risk                       Risk
	}{
		{"press-1", "press-bay", "ram", "mm", RiskHigh},
		{"press-1", "press-bay", "pressure", "bar", RiskCritical},
		{"conveyor-1", "conveyor-line", "belt-speed", "m/s", RiskLow},
		{"robot-1", "robot-cell", "base-joint", "deg", RiskHigh},
		{"robot-1", "robot-cell", "gripper", "mm", RiskMedium},
	}
	for _, w := range wantActuators {
		tw, ok := s.Twin(w.twin)
		if !ok || tw.Zone != w.zone {
			t.Errorf("Twin(%q) = %v, %v; want it in %s", w.twin, tw, ok, w.zone)
			continue
		}
		a, ok := tw.Actuator(w.actuator)
		if !ok || a.Unit != w.unit || a.Risk != w.risk {
			t.Errorf("%s.Actuator(%q) = %+v, %v; want unit %s, risk %s", w.twin, w.actuator, a, ok, w.unit, w.risk)
		}
	}
	// Every twin stands where its zone says.
	for _, tw := range s.Twins {
		z, _ := s.Zone(tw.Zone)
		centre := [3]float64{(z.Min[0] + z.Max[0]) / 2, 0.5, (z.Min[2] + z.Max[2]) / 2}
		if at, ok := s.ZoneAt(centre); !ok || at.ID != tw.Zone {
			t.Errorf("ZoneAt(centre of %s) = %v, %v; want %s", tw.Zone, at, ok, tw.Zone)
		}
	}
	badges, ok := s.Collection("badges")
	if !ok || badges.Kind != KindUnique || !badges.Soulbound || len(badges.Items) == 0 {
		t.Errorf(`Collection("badges") = %+v, %v; want unique soulbound items`, badges, ok)
	}
	credits, ok := s.Collection("credits")
	if !ok || credits.Kind != KindFungible || credits.Soulbound || len(credits.Mints) == 0 || credits.Mints[0].To != RealmOwner {
		t.Errorf(`Collection("credits") = %+v, %v; want a fungible currency minted to the realm`, credits, ok)
	}
}

func TestSceneEntities(t *testing.T) {
	s := loadFoundry(t)
	byUID := map[policy.UID]policy.Entity{}
	for _, e := range s.Entities() {
		if _, dup := byUID[e.UID]; dup {
			t.Errorf("Entities() has %v twice", e.UID)
		}
		byUID[e.UID] = e
	}
	if n, want := len(byUID), 1+6+3+5; n != want {
		t.Errorf("len(Entities()) = %d, want %d", n, want)
	}
	ram, ok := byUID[ActuatorUID("press-1", "ram")]
	if !ok {
		t.Fatalf("Entities() lacks %v", ActuatorUID("press-1", "ram"))
	}
	wantAttrs := map[string]any{"twin": "press-1", "zone": "press-bay", "risk": "high", "unit": "mm"}
	for k, v := range wantAttrs {
		if ram.Attrs[k] != v {
			t.Errorf("ram.Attrs[%q] = %v, want %v", k, ram.Attrs[k], v)
		}
	}
	if !slices.Equal(ram.Parents, []policy.UID{TwinUID("press-1")}) {
		t.Errorf("ram.Parents = %v, want [%v]", ram.Parents, TwinUID("press-1"))
	}
	if p := byUID[TwinUID("press-1")].Parents; !slices.Equal(p, []policy.UID{ZoneUID("press-bay")}) {
		t.Errorf("press-1 parents = %v, want the press bay", p)
	}
	if p := byUID[ZoneUID("press-bay")].Parents; !slices.Equal(p, []policy.UID{SceneUID("foundry")}) {
		t.Errorf("press-bay parents = %v, want the scene", p)
	}
}

// foundryRequest describes one request against the foundry policies in the
// terms the realm uses.
type foundryRequest struct {
	roles     []string
	state     string // "" leaves the trust record out
	biometric float64
	action    string
	resource  policy.UID
	context   map[string]any
}

func (r foundryRequest) build(s *Scene) policy.Request {
	avatar := policy.Entity{
		UID:   policy.UID{Type: TypeAvatar, ID: "ana"},
		Attrs: map[string]any{"roles": r.roles, "name": "Ana"},
	}
	if avatar.Attrs["roles"] == nil {
		avatar.Attrs["roles"] = []string{}
	}
	ctx := map[string]any{}
	if r.state != "" {
		ctx[ContextTrust] = map[string]any{
			TrustState:           r.state,
			TrustScore:           0.92,
			TrustBiometric:       r.biometric,
			TrustPasskeyAgeS:     120,
			TrustDeviceAssurance: 0.8,
		}
	}
	for k, v := range r.context {
		ctx[k] = v
	}
	entities := append(s.Entities(), avatar)
	for _, c := range s.Collections {
		entities = append(entities, c.AssetEntity(""))
		for _, it := range c.Items {
			entities = append(entities, c.AssetEntity(it.ID))
		}
	}
	return policy.Request{
		Principal: avatar.UID,
		Action:    ActionUID(r.action),
		Resource:  r.resource,
		Context:   ctx,
		Entities:  entities,
	}
}

func TestFoundryPolicies(t *testing.T) {
	s := loadFoundry(t)
	operator := []string{"operator"}
	supervisor := []string{"supervisor"}
	ram := ActuatorUID("press-1", "ram")
	pressure := ActuatorUID("press-1", "pressure")
	belt := ActuatorUID("conveyor-1", "belt-speed")
	gripper := ActuatorUID("robot-1", "gripper")
	credits := AssetUID("credits", "")
	badge := AssetUID("badges", "first-shift")
	at := func(zone string, kv ...any) map[string]any {
		m := map[string]any{ContextAvatarZone: zone}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	// sum24h is what the avatar moved out in 24 hours, this transfer included.
	split := func(amount, sum24h int64, highValue bool) map[string]any {
		return map[string]any{ContextAmount: amount, ContextHighValue: highValue, ContextVelocity: map[string]any{
			VelocitySum1h: amount, VelocitySum24h: sum24h, VelocityCount1h: int64(1), VelocityCount24h: int64(2)}}
	}
	transfer := func(amount int64, highValue bool) map[string]any {
		return split(amount, amount, highValue)
	}
	tests := []struct {
		name       string
		req        foundryRequest
		allow      bool
		policies   []string
		wantErrors bool // evaluation errors are expected (malformed context)
	}{
		// joining
		{"visitor joins", foundryRequest{state: "trusted", action: ActionJoinScene, resource: SceneUID("foundry")}, true, []string{"join-scene"}, false},
		{"visitor in step-up joins", foundryRequest{state: "step-up", action: ActionJoinScene, resource: SceneUID("foundry")}, true, []string{"join-scene"}, false},
		{"suspended visitor cannot join", foundryRequest{state: "suspended", action: ActionJoinScene, resource: SceneUID("foundry")}, false, []string{"forbid-suspended"}, false},
		{"request without trust is refused", foundryRequest{roles: supervisor, action: ActionJoinScene, resource: SceneUID("foundry")}, false, []string{"forbid-suspended"}, true},

		// zones
		{"visitor enters the lobby", foundryRequest{state: "trusted", action: ActionEnterZone, resource: ZoneUID("lobby"), context: at("")}, true, []string{"enter-open-zone"}, false},
		{"visitor walks to the conveyor", foundryRequest{state: "step-up", action: ActionEnterZone, resource: ZoneUID("conveyor-line"), context: at("walkway")}, true, []string{"enter-open-zone"}, false},
		{"visitor kept out of the press bay", foundryRequest{state: "trusted", action: ActionEnterZone, resource: ZoneUID("press-bay"), context: at("walkway")}, false, nil, false},
		{"operator enters the press bay", foundryRequest{roles: operator, state: "trusted", action: ActionEnterZone, resource: ZoneUID("press-bay"), context: at("walkway")}, true, []string{"enter-restricted-zone"}, false},
		{"operator in step-up kept out of the robot cell", foundryRequest{roles: operator, state: "step-up", action: ActionEnterZone, resource: ZoneUID("robot-cell"), context: at("walkway")}, false, nil, false},
		{"supervisor enters the control room", foundryRequest{roles: supervisor, state: "trusted", action: ActionEnterZone, resource: ZoneUID("control-room"), context: at("lobby")}, true, []string{"enter-restricted-zone"}, false},
		{"suspended operator kept out of the lobby", foundryRequest{roles: operator, state: "suspended", action: ActionEnterZone, resource: ZoneUID("lobby"), context: at("")}, false, []string{"forbid-suspended"}, false},

		// commands
		{"operator beside the conveyor sets its speed", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: belt, context: at("conveyor-line")}, true, []string{"command-actuator"}, false},
		{"operator in the control room sets the speed", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: belt, context: at("control-room")}, true, []string{"command-actuator"}, false},
		{"operator on the walkway cannot", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: belt, context: at("walkway")}, false, nil, false},
		{"visitor beside the conveyor cannot", foundryRequest{state: "trusted", action: ActionCommandActuator, resource: belt, context: at("conveyor-line")}, false, nil, false},
		{"supervisor alone cannot command", foundryRequest{roles: supervisor, state: "trusted", action: ActionCommandActuator, resource: belt, context: at("control-room")}, false, nil, false},
		{"operator in step-up cannot", foundryRequest{roles: operator, state: "step-up", action: ActionCommandActuator, resource: belt, context: at("conveyor-line")}, false, nil, false},
		{"suspended operator cannot", foundryRequest{roles: operator, state: "suspended", action: ActionCommandActuator, resource: belt, context: at("conveyor-line")}, false, []string{"forbid-suspended"}, false},
		{"medium risk gripper needs no step-up", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: gripper, context: at("robot-cell")}, true, []string{"command-actuator"}, false},
		{"high risk ram without step-up", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: ram, context: at("press-bay", ContextStepUp, false)}, false, []string{"command-high-risk-needs-step-up"}, false},
		{"high risk ram with step_up missing", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: ram, context: at("press-bay")}, false, []string{"command-high-risk-needs-step-up"}, false},
		{"high risk ram with step-up", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: ram, context: at("press-bay", ContextStepUp, true)}, true, []string{"command-actuator"}, false},
		{"critical pressure without approval", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: pressure, context: at("control-room", ContextStepUp, true, ContextApproved, false)}, false, []string{"command-critical-needs-approval"}, false},
		{"critical pressure with neither", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: pressure, context: at("control-room")}, false, []string{"command-critical-needs-approval", "command-high-risk-needs-step-up"}, false},
		{"critical pressure approved without step-up", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: pressure, context: at("control-room", ContextApproved, true)}, false, []string{"command-high-risk-needs-step-up"}, false},
		{"critical pressure with step-up and approval", foundryRequest{roles: operator, state: "trusted", action: ActionCommandActuator, resource: pressure, context: at("press-bay", ContextStepUp, true, ContextApproved, true)}, true, []string{"command-actuator"}, false},

		// approvals
		{"supervisor approves", foundryRequest{roles: supervisor, state: "trusted", action: ActionApproveCommand, resource: pressure}, true, []string{"approve-command"}, false},
		{"operator cannot approve", foundryRequest{roles: operator, state: "trusted", action: ActionApproveCommand, resource: pressure}, false, nil, false},
		{"supervisor in step-up cannot approve", foundryRequest{roles: supervisor, state: "step-up", action: ActionApproveCommand, resource: pressure}, false, nil, false},

		// reading twins
		{"operator views a twin", foundryRequest{roles: operator, state: "trusted", action: ActionViewTwin, resource: TwinUID("press-1")}, true, []string{"view-twin"}, false},
		{"supervisor in step-up views a twin", foundryRequest{roles: supervisor, state: "step-up", action: ActionViewTwin, resource: TwinUID("robot-1")}, true, []string{"view-twin"}, false},
		{"visitor cannot view a twin", foundryRequest{state: "trusted", action: ActionViewTwin, resource: TwinUID("press-1")}, false, nil, false},
		{"suspended operator cannot view a twin", foundryRequest{roles: operator, state: "suspended", action: ActionViewTwin, resource: TwinUID("conveyor-1")}, false, []string{"forbid-suspended"}, false},

		// transfers
		{"small credit transfer", foundryRequest{state: "step-up", biometric: 0.5, action: ActionTransferAsset, resource: credits, context: transfer(500, false)}, true, []string{"transfer-asset"}, false},
		{"high value transfer, trusted and recognised", foundryRequest{state: "trusted", biometric: 0.95, action: ActionTransferAsset, resource: credits, context: transfer(5_000_000, true)}, true, []string{"transfer-asset"}, false},
		{"high value transfer, weak biometric", foundryRequest{state: "trusted", biometric: 0.85, action: ActionTransferAsset, resource: credits, context: transfer(5_000_000, true)}, false, []string{"high-value-transfer-needs-biometric", "high-value-velocity-needs-biometric"}, false},
		{"high value transfer in step-up", foundryRequest{state: "step-up", biometric: 0.99, action: ActionTransferAsset, resource: credits, context: transfer(5_000_000, true)}, false, []string{"high-value-transfer-needs-biometric", "high-value-velocity-needs-biometric"}, false},
		{"transfer without high_value judged", foundryRequest{state: "trusted", biometric: 0.5, action: ActionTransferAsset, resource: credits, context: map[string]any{ContextAmount: int64(1), ContextVelocity: map[string]any{VelocitySum24h: int64(1)}}}, false, []string{"high-value-transfer-needs-biometric"}, false},
		{"fungible transfer without velocity", foundryRequest{state: "trusted", biometric: 0.5, action: ActionTransferAsset, resource: credits, context: map[string]any{ContextAmount: int64(1), ContextHighValue: false}}, false, []string{"high-value-velocity-needs-biometric"}, false},
		{"split high value transfer, weak biometric", foundryRequest{state: "trusted", biometric: 0.5, action: ActionTransferAsset, resource: credits, context: split(6000, 12000, false)}, false, []string{"high-value-velocity-needs-biometric"}, false},
		{"split high value transfer, trusted and recognised", foundryRequest{state: "trusted", biometric: 0.95, action: ActionTransferAsset, resource: credits, context: split(6000, 12000, false)}, true, []string{"transfer-asset"}, false},
		{"small transfers under the 24h limit", foundryRequest{state: "step-up", biometric: 0.5, action: ActionTransferAsset, resource: credits, context: split(3000, 9999, false)}, true, []string{"transfer-asset"}, false},
		{"soulbound badge never moves", foundryRequest{roles: supervisor, state: "trusted", biometric: 0.99, action: ActionTransferAsset, resource: badge, context: transfer(1, false)}, false, []string{"soulbound-never-transfers"}, false},
		{"suspended owner cannot transfer", foundryRequest{state: "suspended", biometric: 0.99, action: ActionTransferAsset, resource: credits, context: transfer(1, false)}, false, []string{"forbid-suspended"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s.Policies.Decide(context.Background(), tt.req.build(s))
			if err != nil {
				t.Fatalf("Decide(%q) error: %v", tt.name, err)
			}
			got := slices.Sorted(slices.Values(d.Policies))
			if d.Allow != tt.allow || !slices.Equal(got, tt.policies) {
				t.Errorf("Decide(%q) = allow %v by %q, want allow %v by %q (reason: %s)", tt.name, d.Allow, got, tt.allow, tt.policies, d.Reason)
			}
			if (len(d.Errors) > 0) != tt.wantErrors {
				t.Errorf("Decide(%q) evaluation errors = %q, want errors: %v", tt.name, d.Errors, tt.wantErrors)
			}
		})
	}
}
