package scenes

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// generatedScene writes a valid scene with n zones, n twins of two
// actuators each, and n items.
func generatedScene(n int) []byte {
	var b strings.Builder
	b.WriteString("id: generated\nname: Generated\nzones:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: zone-%d\n    name: Zone %d\n    min: [%d, 0, 0]\n    max: [%d, 4, 10]\n", i, i, i*10, i*10+10)
	}
	b.WriteString("twins:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: twin-%d\n    name: Twin %d\n    zone: zone-%d\n    actuators:\n", i, i, i)
		b.WriteString("      - {id: speed, name: Speed, unit: m/s, min: 0, max: 2.5, max_rate: 0.5, risk: low}\n")
		b.WriteString("      - {id: position, name: Position, unit: mm, min: -100, max: 100, max_rate: 20, risk: high}\n")
	}
	b.WriteString("collections:\n  - id: badges\n    name: Badges\n    kind: unique\n    items:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {id: badge-%d, owner: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed}\n", i)
	}
	b.WriteString("policies:\n  - policies.cedar\n")
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		data := generatedScene(n)
		if _, err := Parse("g.yaml", data); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("zones=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse("g.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadBuiltin(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBuiltin(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZoneAt(b *testing.B) {
	for _, n := range []int{6, 64, 512} {
		s, err := Parse("g.yaml", generatedScene(n))
		if err != nil {
			b.Fatal(err)
		}
		p := [3]float64{float64(n*10) - 5, 1, 5} // in the last zone: the worst case
		b.Run(fmt.Sprintf("zones=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.ZoneAt(p); !ok {
					b.Fatal("no zone")
				}
			}
		})
	}
}

func BenchmarkFoundryDecide(b *testing.B) {
	s := loadFoundry(b)
	for _, bc := range []struct {
		name string
		req  foundryRequest
	}{
		{"join", foundryRequest{state: "trusted", action: ActionJoinScene, resource: SceneUID("foundry")}},
		{"command-critical", foundryRequest{roles: []string{"operator"}, state: "trusted", action: ActionCommandActuator,
			resource: ActuatorUID("press-1", "pressure"),
			context:  map[string]any{ContextAvatarZone: "control-room", ContextStepUp: true, ContextApproved: true}}},
	} {
		req := bc.req.build(s)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if d, err := s.Policies.Decide(ctx, req); err != nil || !d.Allow {
					b.Fatalf("Decide = %+v, %v; want allow", d, err)
				}
			}
		})
	}
}
