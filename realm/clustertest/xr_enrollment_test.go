package clustertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestEnrollmentGoesOnThroughAnotherNode: a headset whose connection to
// node a drops half way through its enrollment comes back, with the same
// session, through node b (a load balancer's choice, or a's shedding),
// and the enrollment goes on there where it stopped, as its status
// messages show, instead of asking for the whole minute of motion again.
// Node b takes it from the store, sealed, and node a no longer holds it.
func TestEnrollmentGoesOnThroughAnotherNode(t *testing.T) {
	_, urls := nodes.Cluster(t)
	a := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-a", XREnrollment: 10 * time.Second})
	b := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: realmtest.Probe(a).Origins(),
		XREnrollment: 10 * time.Second})
	sess := nodes.Client(t, a).Register(webauthntest.New(), "moved-mid-enrollment")

	watch := realmtest.NewEnrollmentWatch()
	clA := dialWS(t, a, sess.Token, vr.Config{OnStatus: watch.OnStatus})
	w := realmtest.Wear(clA, 5)
	before := watch.Wait(t, "half the enrollment collected on a", func(p float64) bool { return p >= 0.4 })
	if before.Enrollment != realmtest.EnrollmentCollecting {
		t.Fatalf("status %+v, want enrolling", before)
	}
	w.TakeOff()
	clA.Close()
	realmtest.EventuallyWithin(t, "node a sets the enrollment aside", 10*time.Second, func() bool {
		n, _ := realmtest.Metric(t, a.URL(), `zerorealm_xr_enrollments_total{what="set-aside"}`)
		return n == 1
	})
	realmtest.EventuallyWithin(t, "the enrollment reaches the store", 10*time.Second, func() bool {
		return len(asideKeys(t, a)) == 1
	})
	watch.Forget()

	// The same session comes back through b, the same person moving afresh.
	goesOnThrough(t, b, sess.Token, watch, 5, before)
	for node, want := range map[*realm.Realm]map[string]float64{
		a: {"set-aside": 1, "claimed": 0, "resumed": 0},
		b: {"started": 0, "claimed": 1, "resumed": 1, "not-resumed": 0},
	} {
		for what, n := range want {
			if got, _ := realmtest.Metric(t, node.URL(), fmt.Sprintf(`zerorealm_xr_enrollments_total{what=%q}`, what)); got != n {
				t.Errorf("%s: enrollments %s = %v, want %v", node.URL(), what, got, n)
			}
		}
	}
	if keys := asideKeys(t, a); len(keys) != 0 {
		t.Errorf("the store still holds %d enrollments set aside after b took it up", len(keys))
	}
	realmtest.EventuallyWithin(t, "node a learns the template b enrolled", 10*time.Second, func() bool {
		return realmtest.Probe(a).XR.KnowsTemplate(sess.Avatar["id"].(string))
	})
}

// TestEnrollmentGoesOnAfterItsNodeStops: node a stops (a rolling
// restart) while a headset is half way through its enrollment there; the
// headset reconnects through node b and goes on where it stopped.
func TestEnrollmentGoesOnAfterItsNodeStops(t *testing.T) {
	_, urls := nodes.Cluster(t)
	a, stopA := nodes.Run(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-a", XREnrollment: 10 * time.Second})
	b := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: realmtest.Probe(a).Origins(),
		XREnrollment: 10 * time.Second})
	sess := nodes.Client(t, a).Register(webauthntest.New(), "node-restarted")
	watch := realmtest.NewEnrollmentWatch()

	clA := dialWS(t, a, sess.Token, vr.Config{OnStatus: watch.OnStatus})
	w := realmtest.Wear(clA, 6)
	before := watch.Wait(t, "half the enrollment collected on a", func(p float64) bool { return p >= 0.4 })
	stopA()
	w.TakeOff()
	clA.Close()
	watch.Forget()

	goesOnThrough(t, b, sess.Token, watch, 6, before)
	if n, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_enrollments_total{what="claimed"}`); n != 1 {
		t.Errorf("b claimed %v enrollments, want 1", n)
	}
}

// goesOnThrough reconnects the session's headset through node r, person
// seed moving afresh, and checks that its enrollment goes on from at
// least before's progress to the end. The headset streams until the test
// ends.
func goesOnThrough(t *testing.T, r *realm.Realm, token string, watch *realmtest.EnrollmentWatch, seed int64, before vr.Status) {
	t.Helper()
	cl := dialWS(t, r, token, vr.Config{OnStatus: watch.OnStatus})
	t.Cleanup(func() { cl.Close() })
	w := realmtest.WearSession(cl, seed, 1)
	t.Cleanup(w.TakeOff)
	first := watch.Wait(t, "the enrollment's progress on "+r.URL(), func(float64) bool { return true })
	if first.Enrollment != realmtest.EnrollmentCollecting || first.EnrollmentProgress == nil || *first.EnrollmentProgress < *before.EnrollmentProgress {
		t.Fatalf("on %s: %+v, want enrolling from at least %.2f", r.URL(), first, *before.EnrollmentProgress)
	}
	if done := watch.Wait(t, "enrolled on "+r.URL(), func(float64) bool { return false }); done.Enrollment != realmtest.EnrollmentDone {
		t.Fatalf("status %+v, want enrolled", done)
	}
}

// asideKeys lists the keys of the bucket of enrollments set aside, read
// through node r's connection.
func asideKeys(t *testing.T, r *realm.Realm) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(realmtest.Probe(r).NATS)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "ZR_"+biometrics.AsideBucket)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lister.Stop()
	var keys []string
	for k := range lister.Keys() {
		if !strings.HasPrefix(k, "meta.") {
			keys = append(keys, k)
		}
	}
	return keys
}
