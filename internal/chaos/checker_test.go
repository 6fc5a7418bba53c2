package chaos

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestItemModel holds the checker's model to histories it must accept and
// refuse, so that a verdict of the suite means what it says.
func TestItemModel(t *testing.T) {
	const a, b, c = "0xA", "0xB", "0xC"
	at := func(s int) int64 { return int64(s) * int64(time.Second) }
	op := func(from, to, d string, outcome int, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: itemInput{from: from, to: to, digest: d}, Output: itemOutput{outcome: outcome}, Call: call, Return: ret}
	}
	read := func(owner, applied string, call int64) porcupine.Operation {
		return porcupine.Operation{Input: itemInput{read: true}, Output: itemOutput{owner: owner, applied: applied}, Call: call, Return: call + 1}
	}
	model := itemModel
	model.Init = func() []any { return []any{itemState{owner: a}} }
	cases := []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"a chain of transfers", []porcupine.Operation{op(a, b, "d1", Applied, at(1), at(2)), op(b, c, "d2", Applied, at(3), at(4)), read(c, "d1,d2", at(5))}, true},
		{"a replay answers applied again", []porcupine.Operation{op(a, b, "d1", Applied, at(1), at(2)), op(a, b, "d1", Applied, at(3), at(4)), read(b, "d1", at(5))}, true},
		{"an unknown attempt that took effect", []porcupine.Operation{op(a, b, "d1", Unknown, at(1), 1<<62), read(b, "d1", at(5))}, true},
		{"an unknown attempt that did not", []porcupine.Operation{op(a, b, "d1", Unknown, at(1), 1<<62), read(a, "", at(5))}, true},
		{"a refusal changes nothing", []porcupine.Operation{op(a, b, "d1", Refused, at(1), at(2)), read(a, "", at(5))}, true},
		{"applied from a wallet that did not own it", []porcupine.Operation{op(b, c, "d1", Applied, at(1), at(2)), read(c, "d1", at(5))}, false},
		{"an applied transfer missing from the ledger", []porcupine.Operation{op(a, b, "d1", Applied, at(1), at(2)), read(a, "", at(5))}, false},
		{"a refused transfer in the ledger", []porcupine.Operation{op(a, b, "d1", Refused, at(1), at(2)), read(b, "d1", at(5))}, false},
		{"two owners spend the same item", []porcupine.Operation{op(a, b, "d1", Applied, at(1), at(2)), op(a, c, "d2", Applied, at(3), at(4)), read(c, "d1,d2", at(5))}, false},
	}
	for _, c := range cases {
		if got := porcupine.CheckOperations(model.ToModel(), c.history); got != c.ok {
			t.Errorf("%s: linearizable = %v, want %v", c.name, got, c.ok)
		}
	}
}
