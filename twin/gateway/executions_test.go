package gateway_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// TestExecutionsAreRecorded: a grant carried out is one line of the
// gateway's executions log, with its command hash and nonce, on disk by
// the time the realm has its acknowledgement; a refused grant (here the
// same grant again, a replay) adds nothing.
func TestExecutionsAreRecorded(t *testing.T) {
	dir := t.TempDir()
	b := newBench(t, benchOptions{executions: dir})
	ctx := context.Background()
	c := b.command("conveyor-1", "belt-speed", 1.5, "k1")
	sg := b.disp.Grant(c, "sess-1", nil)
	if _, err := b.disp.Deliver(ctx, sg); err != nil {
		t.Fatalf("Deliver = %v, want done", err)
	}
	if _, err := b.disp.Deliver(ctx, sg); twin.ReasonOf(err) != twin.ReasonReplayed {
		t.Fatalf("the same grant again = %v, want refused as replayed", err)
	}
	if _, err := b.disp.Deliver(ctx, b.disp.Grant(b.command("conveyor-1", "belt-speed", 9, "k2"), "sess-1", nil)); err == nil {
		t.Fatal("a value outside the envelope was carried out")
	}
	f, err := os.Open(filepath.Join(dir, "conveyor-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := gateway.ReadExecutions(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d executions recorded, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Command != c.Hash() || e.Nonce != sg.Grant.Nonce || e.Actuator != "belt-speed" || e.Op != twin.OpSet || e.ValueMicro != 1_500_000 || e.Operator != "av_ada" || e.At.IsZero() {
		t.Fatalf("execution %+v, want the grant's command %s, nonce %d, 1.5 m/s", e, c.Hash().Hex(), sg.Grant.Nonce)
	}
}

// TestReadExecutions: a torn last line (the gateway stopped while writing
// it) is left out; anything else that is not an execution is an error.
func TestReadExecutions(t *testing.T) {
	const line = `{"command":"0x0101010101010101010101010101010101010101010101010101010101010101","nonce":7,"actuator":"ram","op":"set","value_micro":1,"operator":"av_a","at":"2026-12-06T01:00:00Z"}`
	cases := []struct {
		name string
		log  string
		n    int
		err  bool
	}{
		{"empty", "", 0, false},
		{"two lines", line + "\n" + line + "\n", 2, false},
		{"a torn last line", line + "\n" + line[:40], 1, false},
		{"garbage in the middle", line + "\nnot json\n" + line + "\n", 0, true},
		{"an unknown field", strings.Replace(line, `"nonce"`, `"extra":1,"nonce"`, 1) + "\n", 0, true},
		{"no command", strings.Replace(line, "0x0101010101010101010101010101010101010101010101010101010101010101", "0x0000000000000000000000000000000000000000000000000000000000000000", 1) + "\n", 0, true},
		{"two values on a line", line + line + "\n", 0, true},
	}
	for _, c := range cases {
		got, err := gateway.ReadExecutions(strings.NewReader(c.log))
		if c.err {
			if !errors.Is(err, gateway.ErrBadExecutionLog) {
				t.Errorf("%s: err = %v, want ErrBadExecutionLog", c.name, err)
			}
			continue
		}
		if err != nil || len(got) != c.n {
			t.Errorf("%s: %d executions, %v; want %d", c.name, len(got), err, c.n)
		}
	}
}

func FuzzReadExecutions(f *testing.F) {
	f.Add([]byte(`{"command":"0x0101010101010101010101010101010101010101010101010101010101010101","nonce":7,"actuator":"ram","op":"set","value_micro":1,"operator":"av_a","at":"2026-12-06T01:00:00Z"}` + "\n"))
	f.Add([]byte("{}\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := gateway.ReadExecutions(strings.NewReader(string(data)))
		if err != nil && len(got) > 0 {
			t.Fatalf("executions returned with an error: %v", err)
		}
		for _, e := range got {
			if e.Actuator == "" {
				t.Fatalf("an execution without an actuator: %+v", e)
			}
		}
	})
}
