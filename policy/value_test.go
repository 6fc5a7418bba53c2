package policy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// A Value decides as the Go value it was made from, in a context and in an
// entity's attributes, and encodes to the same JSON.
func TestValueDecidesAsItsGoValue(t *testing.T) {
	s, err := Parse("value.cedar", []byte(`permit (principal, action == Action::"go", resource)
when { context.limits.daily > 10 && context.chain.contains("ag_1") && principal.owner == Avatar::"av_1" };`))
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]any{"daily": int64(20), "risk": "low"}
	chain := []string{"ag_0", "ag_1"}
	owner := UID{"Avatar", "av_1"}
	decide := func(limits, chain, owner any) bool {
		t.Helper()
		d, err := s.Decide(context.Background(), Request{
			Principal: UID{"Agent", "ag_1"}, Action: UID{"Action", "go"}, Resource: UID{"Scene", "s"},
			Context:  map[string]any{"limits": limits, "chain": chain},
			Entities: []Entity{{UID: UID{"Agent", "ag_1"}, Attrs: map[string]any{"owner": owner}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow
	}
	mustValue := func(v any) Value {
		t.Helper()
		pv, err := NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return pv
	}
	if !decide(limits, chain, owner) || !decide(mustValue(limits), mustValue(chain), mustValue(owner)) {
		t.Fatal("want allow from Go values and from Values")
	}
	if decide(mustValue(map[string]any{"daily": int64(5)}), mustValue(chain), mustValue(owner)) ||
		decide(mustValue(limits), mustValue([]string{"ag_0"}), mustValue(owner)) {
		t.Fatal("want deny from Values that do not match")
	}
	if _, err := s.Decide(context.Background(), Request{Principal: UID{"Agent", "ag_1"}, Action: UID{"Action", "go"}, Resource: UID{"Scene", "s"},
		Context: map[string]any{"limits": Value{}}}); err == nil {
		t.Fatal("a zero Value was taken")
	}
	if _, err := NewValue(uint8(1)); err == nil {
		t.Fatal("NewValue accepted a type cedarValue refuses")
	}
	want, _ := json.Marshal(limits)
	if got, _ := json.Marshal(mustValue(limits)); string(got) != string(want) {
		t.Fatalf("JSON %s, want %s", got, want)
	}
}

// A prepared entity decides as the entity it was made from; one that
// cannot be converted is refused when prepared, as a request refuses it.
func TestPreparedEntityDecidesAsItsEntity(t *testing.T) {
	s, err := Parse("prepared.cedar", []byte(`permit (principal, action == Action::"go", resource)
when { principal.score.greaterThanOrEqual(decimal("0.9")) && principal.state == "trusted" && principal in Group::"g" };`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		score float64
		state string
		want  bool
	}{{1, "trusted", true}, {0.95, "trusted", true}, {0.85, "trusted", false}, {1, "step-up", false}, {0.89996, "trusted", true}} {
		e := Entity{UID: UID{"Agent", "ag_1"}, Parents: []UID{{"Group", "g"}}, Attrs: map[string]any{"score": c.score, "state": c.state}}
		p, err := e.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range []Entity{e, p} {
			d, err := s.Decide(context.Background(), Request{Principal: e.UID, Action: UID{"Action", "go"}, Resource: UID{"R", "r"}, Entities: []Entity{ent, {UID: UID{"Group", "g"}}}})
			if err != nil || d.Allow != c.want {
				t.Fatalf("%+v (prepared %v): allow %v, err %v", c, ent.prepared != nil, d.Allow, err)
			}
		}
	}
	if _, err := (Entity{UID: UID{"Agent", "ag_1"}, Attrs: map[string]any{"score": float32(1)}}).Prepare(); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Prepare of an unconvertible attribute: %v", err)
	}
}

// DecimalUnits is the decimal a request makes of a float, and the float it
// gives back makes the same decimal.
func TestDecimalUnits(t *testing.T) {
	for _, f := range []float64{0, 1, 0.29, 0.89996, 0.899949, -0.25, 1e10} {
		u, same, ok := DecimalUnits(f)
		want, err := cedarDecimal(f)
		if !ok || err != nil {
			t.Fatalf("%v: %v %v", f, ok, err)
		}
		got, err := cedarDecimal(same)
		if err != nil || got != want {
			t.Fatalf("%v: units %d, %v makes %v, want %v", f, u, same, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), 1e300} {
		if _, _, ok := DecimalUnits(f); ok {
			t.Fatalf("%v has units", f)
		}
	}
}
