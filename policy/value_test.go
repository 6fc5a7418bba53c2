package policy

import (
	"context"
	"encoding/json"
	"errors"
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

// An entity's attributes converted once (Entity.Converted) decide as the
// attributes themselves; converted attributes that are not a record are
// refused, not read as none.
func TestConvertedAttrsDecideAsAttrs(t *testing.T) {
	s, err := Parse("attrs.cedar", []byte(`permit (principal, action == Action::"go", resource)
when { principal.roles.contains("operator") && principal.name == "judy" };`))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(e Entity) (bool, error) {
		t.Helper()
		d, err := s.Decide(context.Background(), Request{
			Principal: UID{"Avatar", "av_1"}, Action: UID{"Action", "go"}, Resource: UID{"Scene", "s"},
			Entities: []Entity{e},
		})
		return d.Allow, err
	}
	operator := map[string]any{"roles": []any{"operator"}, "name": "judy"}
	visitor := map[string]any{"roles": []any{"visitor"}, "name": "judy"}
	for _, c := range []struct {
		attrs map[string]any
		want  bool
	}{{operator, true}, {visitor, false}} {
		v, err := NewValue(c.attrs)
		if err != nil {
			t.Fatal(err)
		}
		plain, err1 := decide(Entity{UID: UID{"Avatar", "av_1"}, Attrs: c.attrs})
		converted, err2 := decide(Entity{UID: UID{"Avatar", "av_1"}, Attrs: c.attrs, Converted: v})
		if err1 != nil || err2 != nil || plain != c.want || converted != c.want {
			t.Fatalf("%v: plain %v (%v), converted %v (%v), want %v", c.attrs, plain, err1, converted, err2, c.want)
		}
	}
	notRecord, _ := NewValue("judy")
	if _, err := decide(Entity{UID: UID{"Avatar", "av_1"}, Attrs: operator, Converted: notRecord}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("converted attributes that are a string: err %v, want ErrInvalidRequest", err)
	}
}
