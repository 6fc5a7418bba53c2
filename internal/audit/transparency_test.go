package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/store"
)

const testRealm = "realm.test"

func testKey(t testing.TB, node string) *Key {
	t.Helper()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	k, err := NewKey(Origin(testRealm, node), seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// transparentLog opens node's log as a transparency log keeping its
// checkpoints in dir.
func transparentLog(t testing.TB, st *store.Store, node string, key *Key, dir string) *Log {
	t.Helper()
	return openLog(t, st, Config{Node: node, Logger: discard(), Key: key, Dir: dir, CheckpointEvery: 10 * time.Millisecond})
}

func startWitness(t testing.TB, st *store.Store, node string, key *Key, dir string) *Witness {
	t.Helper()
	w, err := StartWitness(context.Background(), st, WitnessConfig{Node: node, Key: key, Dir: dir, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// waitFor polls cond until it holds, failing the test after a generous
// limit (the machine may be busy; no duration is asserted).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roleDecision is decision i, every fourth one a ChangeRoles.
func roleDecision(i int) Event {
	ev := decision(i)
	if i%4 == 1 {
		ev.Action, ev.Outcome, ev.Reasons = "ChangeRoles", Allow, nil
	}
	return ev
}

// storedEvents reads node a's events as stored, one per block (each was
// committed alone), in order.
func storedEvents(t *testing.T, stream jetstream.Stream, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for seq := uint64(1); len(out) < n; seq++ {
		m, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("read seq %d: %v", seq, err)
		}
		out = append(out, m.Data)
	}
	return out
}

// republish replaces node a's chain with the given events, as an
// attacker with the store's credentials can.
func republish(t *testing.T, js jetstream.JetStream, stream jetstream.Stream, events [][]byte) {
	t.Helper()
	ctx := context.Background()
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject("zr.audit.a")); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if _, err := js.Publish(ctx, "zr.audit.a", e); err != nil {
			t.Fatal(err)
		}
	}
}

func mustEvent(t *testing.T, data []byte) Event {
	t.Helper()
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func mustJSON(t *testing.T, ev Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAttackerCannotHideFromTheAuditLog gives an attacker the store's own
// all-powerful NATS connection after node a recorded 12 decisions, signed
// checkpoints of them and node w witnessed them. Whatever the attacker
// does to a's chain (and to AUDITCP), VerifyAll with the anchors kept in
// the two nodes' data directories names it, node a notices at its next
// start, and the witness refuses a's next checkpoint.
func TestAttackerCannotHideFromTheAuditLog(t *testing.T) {
	const n = 12
	cases := []struct {
		name       string
		tamper     func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream)
		wantKind   string
		wantIndex  uint64 // 0: not checked
		wantDetail string
		// also expected, beside wantKind
		alsoKinds []string
	}{
		{
			name: "delete one event",
			tamper: func(t *testing.T, _ jetstream.JetStream, stream jetstream.Stream) {
				if err := stream.DeleteMsg(context.Background(), 5); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: KindDeleted, wantIndex: 5, wantDetail: "events 5 to 5 are missing",
			alsoKinds: []string{KindRewritten},
		},
		{
			name: "edit one event",
			tamper: func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream) {
				events := storedEvents(t, stream, n)
				ev := mustEvent(t, events[4])
				ev.Actor = "someone-else"
				events[4] = mustJSON(t, ev)
				republish(t, js, stream, events)
			},
			wantKind: KindEdited, wantIndex: 5, wantDetail: "event #5 was edited",
			alsoKinds: []string{KindRewritten},
		},
		{
			name: "insert one event",
			tamper: func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream) {
				events := storedEvents(t, stream, n)
				forged := mustJSON(t, Event{ID: "forged", Time: time.Now().UTC(), Node: "a", Index: 5, Prev: hashOf(events[3]),
					Actor: "mallory", Action: "ChangeRoles", Resource: `Avatar::"mallory"`, Outcome: Allow})
				republish(t, js, stream, append(events[:4:4], append([][]byte{forged}, events[4:]...)...))
			},
			wantKind: KindInserted, wantIndex: 6, wantDetail: "inserted",
			alsoKinds: []string{KindRewritten},
		},
		{
			name: "purge the chain",
			tamper: func(t *testing.T, _ jetstream.JetStream, stream jetstream.Stream) {
				if err := stream.Purge(context.Background(), jetstream.WithPurgeSubject("zr.audit.a")); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: KindVanished, wantDetail: "known node a has no chain",
		},
		{
			name: "purge the chain's first events",
			tamper: func(t *testing.T, _ jetstream.JetStream, stream jetstream.Stream) {
				if err := stream.Purge(context.Background(), jetstream.WithPurgeSubject("zr.audit.a"), jetstream.WithPurgeSequence(4)); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: KindPurged, wantIndex: 1, wantDetail: "events 1 to 3 were purged",
			alsoKinds: []string{KindRewritten},
		},
		{
			name: "truncate the chain",
			tamper: func(t *testing.T, _ jetstream.JetStream, stream jetstream.Stream) {
				for seq := uint64(10); seq <= n; seq++ {
					if err := stream.DeleteMsg(context.Background(), seq); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantKind: KindTruncated, wantIndex: 10, wantDetail: "events 10 to 12 were removed",
		},
		{
			name: "remove every ChangeRoles and re-hash",
			tamper: func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream) {
				var kept [][]byte
				prev := ""
				for _, data := range storedEvents(t, stream, n) {
					ev := mustEvent(t, data)
					if ev.Action == "ChangeRoles" {
						continue
					}
					ev.Index, ev.Prev = uint64(len(kept)+1), prev
					line := mustJSON(t, ev)
					prev = hashOf(line)
					kept = append(kept, line)
				}
				republish(t, js, stream, kept)
			},
			// Event #2 is the first ChangeRoles: the checkpoint of size
			// 1 still holds, the one of size 9 does not.
			wantKind: KindRehashed, wantIndex: 2, wantDetail: "rewritten after event #1",
			alsoKinds: []string{KindTruncated},
		},
		{
			name: "truncate the chain and purge AUDITCP",
			tamper: func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream) {
				for seq := uint64(7); seq <= n; seq++ {
					if err := stream.DeleteMsg(context.Background(), seq); err != nil {
						t.Fatal(err)
					}
				}
				cp, err := js.Stream(context.Background(), "ZR_AUDITCP")
				if err != nil {
					t.Fatal(err)
				}
				if err := cp.Purge(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: KindTruncated, wantIndex: 7, wantDetail: "events 7 to 12 were removed",
			alsoKinds: []string{KindCPsRemoved},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := testStore(t)
			dirA, dirW := t.TempDir(), t.TempDir()
			keyA, keyW := testKey(t, "a"), testKey(t, "w")
			w := startWitness(t, st, "w", keyW, dirW)
			la := transparentLog(t, st, "a", keyA, dirA)
			for i := range n {
				if err := la.Commit(ctx, roleDecision(i)); err != nil {
					t.Fatal(err)
				}
				// A checkpoint of every size, as a node whose decisions
				// come slower than one a second publishes.
				if _, err := la.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := la.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if c := la.LastCheckpoint(); c.Size != n {
				t.Fatalf("last checkpoint after Close has size %d, want %d", c.Size, n)
			}
			waitFor(t, "the witness to accept a's checkpoint of size 12", func() bool {
				c, ok := w.Accepted("a")
				return ok && c.Size == n
			})
			waitFor(t, "the witness's cosignature", func() bool { return w.Stats().Cosigned > 0 })
			w.Close()

			anchors := func() []Anchor {
				a1, err := LoadAnchors(dirA)
				if err != nil {
					t.Fatal(err)
				}
				a2, err := LoadAnchors(dirW)
				if err != nil {
					t.Fatal(err)
				}
				return append(a1, a2...)
			}
			before, err := VerifyAll(ctx, st, anchors())
			if err != nil {
				t.Fatal(err)
			}
			if !before.OK || len(before.Chains) != 1 || before.Chains[0].Size != n {
				t.Fatalf("VerifyAll before tampering = %+v, want ok with a's 12 events", before)
			}
			if cp := before.Chains[0].Checkpoint; cp == nil || !cp.Matches || cp.Size != n {
				t.Fatalf("newest checkpoint before tampering = %+v, want size 12 matching", cp)
			}

			js := st.JetStream()
			stream, err := js.Stream(ctx, "ZR_AUDIT")
			if err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, js, stream)

			res, err := VerifyAll(ctx, st, anchors())
			if err != nil {
				t.Fatal(err)
			}
			if res.OK {
				t.Fatalf("VerifyAll after %s = ok, want findings", tc.name)
			}
			for _, f := range res.Findings {
				t.Logf("finding: %s #%d size %d: %s", f.Kind, f.Index, f.Size, f.Detail)
			}
			found := func(kind string) *Finding {
				for i := range res.Findings {
					if res.Findings[i].Node == "a" && res.Findings[i].Kind == kind {
						return &res.Findings[i]
					}
				}
				return nil
			}
			f := found(tc.wantKind)
			if f == nil {
				t.Fatalf("findings after %s = %+v, want one of kind %s", tc.name, res.Findings, tc.wantKind)
			}
			if (tc.wantIndex != 0 && f.Index != tc.wantIndex) || !strings.Contains(f.Detail, tc.wantDetail) {
				t.Fatalf("finding = %+v, want index %d and detail containing %q", *f, tc.wantIndex, tc.wantDetail)
			}
			for _, k := range tc.alsoKinds {
				if found(k) == nil {
					t.Errorf("findings after %s = %+v, want also one of kind %s", tc.name, res.Findings, k)
				}
			}

			// Node a notices at its next start.
			la2 := transparentLog(t, st, "a", keyA, dirA)
			if len(la2.StartFindings()) == 0 || la2.Stats().StartFindings == 0 {
				t.Fatalf("node a reopened on the tampered chain reports nothing")
			}
			if err := la2.Commit(ctx, decision(99)); err != nil {
				t.Fatal(err)
			}
			if err := la2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			// Alone, without a witness, node a's data directory still
			// holds the contradicted checkpoint, so the rewrite stays
			// reported after a carried on.
			own, err := LoadAnchors(dirA)
			if err != nil {
				t.Fatal(err)
			}
			if alone, err := VerifyAll(ctx, st, own); err != nil || alone.OK {
				t.Fatalf("VerifyAll with node a's data directory after it carried on = %+v, %v; want findings", alone, err)
			}
			// The witness, restarted, refuses a's next checkpoint.
			w2 := startWitness(t, st, "w", keyW, dirW)
			waitFor(t, "the witness to refuse a's checkpoint", func() bool { return len(w2.Refusals()) > 0 })
			r := w2.Refusals()[0]
			if r.Node != "a" || r.Kind != KindRefused || !strings.Contains(r.Detail, "node a's chain was rewritten") {
				t.Fatalf("refusal = %+v, want node a's chain rewritten", r)
			}
			if c, _ := w2.Accepted("a"); c.Size != n {
				t.Fatalf("witness accepted a checkpoint of size %d after the rewrite, want it to keep 12", c.Size)
			}
		})
	}
}

// TestWitnessFollowsKeyRotationAndRefusesForeignKeys rotates node a's key:
// checkpoints signed by the new key and countersigned by the old one are
// accepted and the new key pinned; a checkpoint an attacker signs with a
// key of its own under a's name is refused by the witness and reported by
// VerifyAll.
func TestWitnessFollowsKeyRotationAndRefusesForeignKeys(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	dirA, dirW := t.TempDir(), t.TempDir()
	old, rotated, witnessKey := testKey(t, "a"), testKey(t, "a"), testKey(t, "w")
	w := startWitness(t, st, "w", witnessKey, dirW)
	accepted := func(size uint64, key *Key) func() bool {
		return func() bool {
			c, ok := w.Accepted("a")
			return ok && c.Size == size && c.Key == key.VerifierKey()
		}
	}

	la := transparentLog(t, st, "a", old, dirA)
	recordDecisions(t, la, 3)
	waitFor(t, "the witness to accept a's first checkpoint", accepted(3, old))

	la = openLog(t, st, Config{Node: "a", Logger: discard(), Key: rotated, PreviousKey: old, Dir: dirA, CheckpointEvery: 10 * time.Millisecond})
	if f := la.StartFindings(); len(f) != 0 {
		t.Fatalf("start after a rotation found %+v, want nothing", f)
	}
	recordDecisions(t, la, 2)
	waitFor(t, "the witness to follow a's rotation", accepted(5, rotated))
	if r := w.Refusals(); len(r) != 0 {
		t.Fatalf("refusals after a rotation = %+v", r)
	}

	// The attacker signs a checkpoint of its own under a's origin.
	attacker := testKey(t, "a")
	tree := &merkleTree{}
	for i := range 9 {
		_ = tree.append(fmt.Appendf(nil, "forged %d", i))
	}
	root, _ := tree.root(9)
	forged, err := attacker.sign(9, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(published{Checkpoint: string(forged.Note), Key: forged.Key})
	if _, err := st.JetStream().Publish(ctx, "zr.auditcp.a", data); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the witness to refuse the forged checkpoint", func() bool { return len(w.Refusals()) == 1 })
	if r := w.Refusals()[0]; r.Node != "a" || !strings.Contains(r.Detail, "does not verify with its key") {
		t.Fatalf("refusal = %+v", r)
	}
	if c, _ := w.Accepted("a"); c.Size != 5 {
		t.Fatalf("witness accepted size %d after the forgery, want 5", c.Size)
	}
	a1, _ := LoadAnchors(dirA)
	a2, _ := LoadAnchors(dirW)
	res, err := VerifyAll(ctx, st, append(a1, a2...))
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || len(res.Findings) != 1 || res.Findings[0].Kind != KindBadAnchor || !strings.Contains(res.Findings[0].Detail, "does not verify with node a's keys") {
		t.Fatalf("VerifyAll after the forgery = %+v, want one checkpoint-invalid finding", res.Findings)
	}
}

// TestKeptCheckpointProvesALaterRewrite is a client that kept node a's
// checkpoint of 5 events. The attacker edits event 3 and re-hashes the
// chain, and node a, restarted on it, signs checkpoints of the rewritten
// chain; the client, given a's newer checkpoint and a consistency proof
// computed from the store, proves the rewrite with VerifyExtends.
func TestKeptCheckpointProvesALaterRewrite(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	dir, key := t.TempDir(), testKey(t, "a")
	la := transparentLog(t, st, "a", key, dir)
	for i := range 5 {
		if err := la.Commit(ctx, decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	old, err := la.Checkpoint(ctx)
	if err != nil || old.Size != 5 {
		t.Fatalf("checkpoint = %+v, %v", old, err)
	}
	kept := anchorOf(old)
	if err := la.Close(ctx); err != nil {
		t.Fatal(err)
	}

	js := st.JetStream()
	stream, err := js.Stream(ctx, "ZR_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	prev := ""
	for i, data := range storedEvents(t, stream, 5) {
		ev := mustEvent(t, data)
		if i == 2 {
			ev.Outcome, ev.Reasons, ev.Actor = Allow, nil, "mallory"
		}
		ev.Prev = prev
		line := mustJSON(t, ev)
		prev = hashOf(line)
		lines = append(lines, line)
	}
	republish(t, js, stream, lines)

	la = transparentLog(t, st, "a", key, dir)
	for i := range 2 {
		if err := la.Commit(ctx, decision(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	newer, err := la.Checkpoint(ctx)
	if err != nil || newer.Size != 7 {
		t.Fatalf("checkpoint after the rewrite = %+v, %v", newer, err)
	}
	if err := la.Close(ctx); err != nil {
		t.Fatal(err)
	}
	prover, err := Prove(ctx, st, "a")
	if err != nil {
		t.Fatal(err)
	}
	proof, err := prover.Consistency(5, 7)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyExtends(kept, newer.Note, proof)
	if !errors.Is(err, ErrRewritten) || !strings.Contains(err.Error(), "node a's chain was rewritten after size 5") {
		t.Fatalf("VerifyExtends after the rewrite = %v, want ErrRewritten after size 5", err)
	}
	// Without the rewrite the same check passes: an honest extension.
	honest := transparentLog(t, testStore(t), "a", key, t.TempDir())
	for i := range 7 {
		if err := honest.Commit(ctx, decision(i)); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			if old, err = honest.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if newer, err = honest.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if proof, err = honest.Prover().Consistency(5, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyExtends(anchorOf(old), newer.Note, proof); err != nil {
		t.Fatalf("VerifyExtends of an honest extension = %v", err)
	}
	_ = honest.Close(ctx)
}

// TestFileTreeMatchesMemoryTree grows a file-backed tree (which keeps only
// its compact range in memory) beside an in-memory one: every root and
// proof is the same, and the proofs verify.
func TestFileTreeMatchesMemoryTree(t *testing.T) {
	mem := &merkleTree{}
	file, err := newFileTree(filepath.Join(t.TempDir(), "tree-hashes"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.close()
	const n = 5000 // past flushEvery stored hashes, so proofs read the file
	for i := range n {
		leaf := fmt.Appendf(nil, "event %d", i)
		if err := mem.append(leaf); err != nil {
			t.Fatal(err)
		}
		if err := file.append(leaf); err != nil {
			t.Fatal(err)
		}
		if len(file.edge) > 64 {
			t.Fatalf("file tree keeps %d hashes in memory at size %d", len(file.edge), i+1)
		}
		size := uint64(i + 1)
		rm, err1 := mem.root(size)
		rf, err2 := file.root(size)
		if err1 != nil || err2 != nil || rm != rf {
			t.Fatalf("root at %d: memory %v (%v), file %v (%v)", size, rm, err1, rf, err2)
		}
	}
	if file.flushed == 0 {
		t.Fatal("the file tree wrote nothing to its file")
	}
	for _, c := range [][2]uint64{{1, 2}, {3, 700}, {64, 65}, {100, 511}, {512, 700}, {699, 700}, {1, 5000}, {4095, 4097}, {3000, 4999}} {
		pm, err1 := mem.consistency(c[0], c[1])
		pf, err2 := file.consistency(c[0], c[1])
		if err1 != nil || err2 != nil || !slices.Equal(pm, pf) {
			t.Fatalf("consistency %v: memory %v (%v), file %v (%v)", c, pm, err1, pf, err2)
		}
		from, _ := file.root(c[0])
		to, _ := file.root(c[1])
		if err := VerifyConsistency(pf, c[0], from, c[1], to); err != nil {
			t.Fatalf("consistency %v does not verify: %v", c, err)
		}
		pi, err := file.inclusion(c[0]-1, c[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(pi, c[1], to, c[0], fmt.Appendf(nil, "event %d", c[0]-1)); err != nil {
			t.Fatalf("inclusion of %d in %d does not verify: %v", c[0], c[1], err)
		}
	}
}
