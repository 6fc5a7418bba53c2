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

// TestCommandChecker holds the twin commands' checks to histories they
// must accept and refuse: the attempts of one command (by its hash) and
// what the gateway carried out.
func TestCommandChecker(t *testing.T) {
	const h1, h2 = "0xaa01", "0xbb02"
	sent := map[string]Op{
		h1: {Kind: KindCommand, Digest: h1, Key: "w0-c0", Actuator: "valve-0"},
		h2: {Kind: KindCommand, Digest: h2, Key: "w0-c1", Actuator: "valve-0"},
	}
	attempt := func(h string, status int, typ, result string) Op {
		return Op{Kind: KindCommand, Digest: h, Key: sent[h].Key, Actuator: "valve-0", Status: status, Type: typ, Result: result}
	}
	ran := func(h string, nonce uint64) Execution {
		return Execution{Command: h, Actuator: "valve-0", Nonce: nonce}
	}
	cases := []struct {
		name       string
		ops        []Op
		executions []Execution
		ok         bool
		unresolved int // h2 unsent counts too
	}{
		{"done and carried out once", []Op{attempt(h1, 200, "", "done"), attempt(h2, 200, "", "done")}, []Execution{ran(h1, 1), ran(h2, 2)}, true, 0},
		{"a lost answer, then the first answer replayed", []Op{attempt(h1, 0, "", ""), attempt(h1, 200, "", "done")}, []Execution{ran(h1, 1)}, true, 1},
		{"refused by the gateway, not carried out", []Op{attempt(h1, 200, "", "refused"), attempt(h2, 409, "gateway-refused", "")}, nil, true, 0},
		{"never answered, carried out once", []Op{attempt(h1, 503, "unavailable", ""), attempt(h1, 409, "idempotency-key-in-progress", "")}, []Execution{ran(h1, 1)}, true, 2},
		{"never answered, never carried out", []Op{attempt(h1, 0, "", "")}, nil, true, 2},
		{"carried out twice", []Op{attempt(h1, 503, "gateway-unavailable", ""), attempt(h1, 200, "", "done")}, []Execution{ran(h1, 1), ran(h1, 2)}, false, 0},
		{"twice, never answered", []Op{attempt(h1, 0, "", "")}, []Execution{ran(h1, 1), ran(h1, 2)}, false, 1},
		{"done, never carried out", []Op{attempt(h1, 200, "", "done")}, nil, false, 0},
		{"refused, yet carried out by an earlier attempt", []Op{attempt(h1, 503, "gateway-unavailable", ""), attempt(h1, 200, "", "refused")}, []Execution{ran(h1, 1)}, false, 0},
		{"a command no one sent", []Op{attempt(h1, 200, "", "done")}, []Execution{ran(h1, 1), ran("0xcc03", 3)}, false, 0},
		{"carried out at another valve", []Op{attempt(h1, 200, "", "done")}, []Execution{{Command: h1, Actuator: "valve-1", Nonce: 1}}, false, 0},
		{"an answer for another command", []Op{func() Op { o := attempt(h1, 200, "", "done"); o.Err = "answered for command 0xdd"; return o }()}, []Execution{ran(h1, 1)}, false, 0},
	}
	for _, c := range cases {
		bad, unresolved := checkCommands(c.ops, sent, c.executions)
		if (len(bad) == 0) != c.ok {
			t.Errorf("%s: findings %v, want ok = %v", c.name, bad, c.ok)
		}
		if c.ok && len(unresolved) != c.unresolved {
			t.Errorf("%s: unresolved %v, want %d", c.name, unresolved, c.unresolved)
		}
	}
}
