package biometrics_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestTemplateKeyRotation walks a rotation of the template key across two
// nodes of one store:
//   - node A seals under the old key; node B starts with the new key first
//     and the old one retired, and rotates the cluster;
//   - B reads what A sealed, and A (still running, not yet rotated) reads
//     what B sealed, because its file already holds the new key below the
//     old one, as the rollout's first step has every node do;
//   - a node that would start sealing under the retired key is refused;
//   - the rotated node counts what it read under the retired key, less
//     what was deleted since;
//   - Reseal seals everything under a retired key again, A's last write
//     too, and skips what is current, and nothing is counted any more;
//   - a node whose file holds the new key alone then reads every template.
func TestTemplateKeyRotation(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	oldKey, newKey := testKey(1), testKey(2)
	a, err := biometrics.NewTemplateStore(ctx, st, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := enrolledTemplate(t, 7)
	for _, id := range []string{"ada", "grace", "edsger"} {
		if err := a.Put(ctx, id, tmpl); err != nil {
			t.Fatal(err)
		}
	}
	// The rollout's first step: A learns the new key, still sealing under
	// the old one.
	a, err = biometrics.NewTemplateStore(ctx, st, oldKey, newKey)
	if err != nil || a.Rotated() {
		t.Fatalf("a node holding the new key below the old one: rotated %v, %v; want no rotation", a != nil && a.Rotated(), err)
	}
	b, err := biometrics.NewTemplateStore(ctx, st, newKey, oldKey)
	if err != nil || !b.Rotated() {
		t.Fatalf("the first node with the new key first: rotated %v, %v; want the rotation", b != nil && b.Rotated(), err)
	}
	if again, err := biometrics.NewTemplateStore(ctx, st, newKey, oldKey); err != nil || again.Rotated() {
		t.Fatalf("the next node with the new key first: rotated %v, %v; want no second rotation", again != nil && again.Rotated(), err)
	}
	for _, ring := range [][][]byte{{oldKey}, {oldKey, newKey}} {
		if _, err := biometrics.NewTemplateStore(ctx, st, ring[0], ring[1:]...); !errors.Is(err, biometrics.ErrKeyRetired) {
			t.Fatalf("a node sealing under the retired key (ring of %d) started: %v; want ErrKeyRetired", len(ring), err)
		}
	}

	if got, err := b.Get(ctx, "ada"); err != nil || !reflect.DeepEqual(got.Mean, tmpl.Mean) {
		t.Fatalf("the rotated node reads a template sealed under the retired key: %v", err)
	}
	if err := b.Put(ctx, "barbara", tmpl); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "barbara"); err != nil {
		t.Fatalf("a node not yet rotated reads a template sealed under the new key: %v", err)
	}
	// A, still running, writes once more under the old key.
	if err := a.Put(ctx, "grace", tmpl); err != nil {
		t.Fatal(err)
	}
	if _, err := biometrics.NewTemplateStore(ctx, st, newKey); err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := biometrics.NewTemplateStore(ctx, st, newKey)
	if _, skipped, _ := onlyNew.All(ctx); skipped != 3 {
		t.Fatalf("before the reseal, the new key alone opens all but %d templates; want all but the 3 sealed under the old one", skipped)
	}

	if _, _, err := b.All(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.UnderRetiredKeys(); got != 3 {
		t.Fatalf("the rotated node read %d templates under the retired key, want the 3 sealed under it", got)
	}
	if err := b.Delete(ctx, "edsger"); err != nil {
		t.Fatal(err)
	}
	if got := b.UnderRetiredKeys(); got != 2 {
		t.Fatalf("after a delete, %d under the retired key, want 2", got)
	}
	stats, err := b.Reseal(ctx)
	if want := (biometrics.ResealStats{Resealed: 2, Current: 1}); err != nil || stats != want {
		t.Fatalf("Reseal = %+v, %v; want %+v", stats, err, want)
	}
	if got := b.UnderRetiredKeys(); got != 0 {
		t.Fatalf("after the reseal, %d under the retired key, want none", got)
	}
	if stats, err := b.Reseal(ctx); err != nil || stats != (biometrics.ResealStats{Current: 3}) {
		t.Fatalf("a second Reseal = %+v, %v; want all 3 current", stats, err)
	}
	all, skipped, err := onlyNew.All(ctx)
	if err != nil || skipped != 0 || len(all) != 3 {
		t.Fatalf("after the reseal, the new key alone: %d templates, %d skipped, %v; want 3, 0", len(all), skipped, err)
	}
	for id, got := range all {
		if !reflect.DeepEqual(got.Mean, tmpl.Mean) || !reflect.DeepEqual(got.Drift, tmpl.Drift) {
			t.Errorf("template of %q changed in the reseal", id)
		}
	}
	if stats, err := onlyNew.Reseal(ctx); err != nil || stats != (biometrics.ResealStats{}) {
		t.Fatalf("Reseal with no retired key = %+v, %v; want nothing done", stats, err)
	}
}

// TestAsideStoreOpensUnderARetiredKey: an enrollment set aside under the
// old template key is taken up by a node that rotated to the new one.
func TestAsideStoreOpensUnderARetiredKey(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	before, err := biometrics.NewAsideStore(ctx, st, testKey(1), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	en, _, clock := setAside(t, newEngine(t), "ada", 42, 10)
	sealed, err := before.Seal(biometrics.AsideEnrollment{Session: "session-1", Enrollment: en, ConsentAt: clock.Add(-time.Minute), ClosedAt: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.Put(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	after, err := biometrics.NewAsideStore(ctx, st, testKey(2), time.Minute, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := after.Claim(ctx, "ada", "session-1")
	if err != nil || !ok || got.Session != "session-1" || got.Enrollment.Collected() != en.Collected() {
		t.Fatalf("Claim after the rotation = %+v, %v, %v; want the enrollment set aside before it", got, ok, err)
	}
}

// TestReplayCaughtAcrossATemplateKeyRotation: on one NATS server, node A
// still hashes and seals its cells under the old template key while node B
// has rotated to the new one. A replay through B of motion first streamed
// through A is caught, because B looks its windows up under the retired
// key too; a node that holds the new key alone does not catch it (the
// control: the old key is what finds A's cells).
func TestReplayCaughtAcrossATemplateKeyRotation(t *testing.T) {
	srv := natstest.RunServer(t)
	node := func(name string, key []byte, retired ...[]byte) (*biometrics.Engine, *biometrics.PathFeed) {
		e, f, _ := clusterNodeKeyed(t, srv.ClientURL(), name, 50*time.Millisecond, key, retired...)
		return e, f
	}
	oldKey, newKey := testKey(9), testKey(10)
	a, feedA := node("node-a", oldKey)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := streamVictim(t, a, feedA, &clock)

	b, feedB := node("node-b", newKey, oldKey)
	c, feedC := node("node-c", newKey)
	waitFor(t, "nodes B and C to read node A's batches", func() bool {
		return feedB.Stats().ReceivedCells == feedA.Stats().SentCells && feedC.Stats().Rejected > 0
	})

	copyFrames := append([]biometrics.Frame(nil), frames...)
	for i := range copyFrames {
		copyFrames[i].TimeUS += 3_600_000_000
	}
	clock = clock.Add(time.Minute)
	if r := livenessReasons(push(c.NewStream("mallory", nil), copyFrames, &clock)); len(r) != 0 {
		t.Fatalf("a node without the old key flagged the replay (%v): the test cannot tell the retired key's lookups from the node's own checks", r)
	}
	clock = clock.Add(time.Minute)
	other := b.NewStream("bystander", nil)
	if r := livenessReasons(push(other, synth.NewPerson(4).Session(1).Frames(20*72, 72), &clock)); len(r) != 0 {
		t.Errorf("another person's motion through the rotated node failed liveness: %v", r)
	}
	other.Close()
	clock = clock.Add(time.Minute)
	r := livenessReasons(push(b.NewStream("mallory", nil), copyFrames, &clock))
	if len(r) == 0 || r[0] != biometrics.LivenessReplay {
		t.Errorf("replay through the rotated node of motion a node under the old key shared: liveness %v, want %q", r, biometrics.LivenessReplay)
	}
}
