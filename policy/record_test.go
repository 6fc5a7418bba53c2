package policy

import (
	"encoding/json"
	"errors"
	"testing"
)

// A record made from a RecordBase and a request's members is the record
// of the whole map, converted per request, for Cedar and for JSON.
func TestRecordBaseWithIsTheWholeRecord(t *testing.T) {
	chain := mustNewValue(t, []string{"ag_1", "ag_2"})
	base, err := NewRecordBase(map[string]any{"id": "ag_2", "chain": chain, "depth": int64(2), "limits": map[string]any{"daily": int64(500)}})
	if err != nil {
		t.Fatal(err)
	}
	used, err := RecordBase{}.With(Member{Name: "day_value", Value: int64(40)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := base.With(Member{Name: "used", Value: used}, Member{Name: "approved", Value: false}, Member{Name: "trust", Value: map[string]any{"score": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	whole := map[string]any{"id": "ag_2", "chain": []string{"ag_1", "ag_2"}, "depth": int64(2), "limits": map[string]any{"daily": int64(500)},
		"used": map[string]any{"day_value": int64(40)}, "approved": false, "trust": map[string]any{"score": 0.5}}
	want := mustNewValue(t, whole)
	if !got.Equal(want) {
		t.Fatalf("With = %v, want %v", got.v, want.v)
	}
	gj, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wj, _ := json.Marshal(whole)
	if string(gj) != string(wj) {
		t.Fatalf("With encodes as %s, want %s", gj, wj)
	}
	if gj, _ := json.Marshal(got.Go()); string(gj) != string(wj) {
		t.Fatalf("With's Go() = %v, want %v", got.Go(), whole)
	}
	if _, ok := got.Go().(map[string]any); !ok {
		t.Fatalf("With's Go() is a %T, want a map", got.Go())
	}
	// The scratch map is cleared between records: the next is not the last.
	other, err := base.With(Member{Name: "approved", Value: true})
	if err != nil {
		t.Fatal(err)
	}
	if other.Equal(got) || !other.Equal(mustNewValue(t, map[string]any{"id": "ag_2", "chain": []string{"ag_1", "ag_2"}, "depth": int64(2), "limits": map[string]any{"daily": int64(500)}, "approved": true})) {
		t.Fatalf("the second record = %v", other.v)
	}
	empty, err := RecordBase{}.With()
	if err != nil || !empty.Equal(mustNewValue(t, map[string]any{})) {
		t.Fatalf("an empty record = %v, %v", empty.v, err)
	}
}

// A member the base holds, or one Cedar cannot hold, is refused.
func TestRecordBaseWithRefuses(t *testing.T) {
	base, err := NewRecordBase(map[string]any{"id": "ag_2"})
	if err != nil {
		t.Fatal(err)
	}
	var ve *valueError
	if _, err := base.With(Member{Name: "id", Value: "ag_3"}); !errors.As(err, &ve) || err.Error() != "id: member given twice" {
		t.Fatalf("a member given twice: %v", err)
	}
	if _, err := base.With(Member{Name: "n", Value: uint8(1)}); err == nil || err.Error() != "n: unsupported value type uint8" {
		t.Fatalf("an unconvertible member: %v", err)
	}
	if _, err := NewRecordBase(map[string]any{"x": nil}); err == nil {
		t.Fatal("NewRecordBase took a nil member")
	}
	if (Value{}).Equal(mustNewValue(t, "x")) || !(Value{}).Equal(Value{}) {
		t.Fatal("Equal of zero Values")
	}
}

func mustNewValue(t *testing.T, v any) Value {
	t.Helper()
	pv, err := NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}
