package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestTemplateChangesReachEveryNode: an avatar enrolls through node a; node
// b learns the template from the store's change feed before the avatar
// ever connects there, and scores the avatar's stream against it. The
// avatar then deletes its template through node a, and node b's stream of
// the same avatar stops scoring at once, as a's would: a deletion is a
// promise to the avatar, whichever node it was made through.
func TestTemplateChangesReachEveryNode(t *testing.T) {
	_, urls := nodes.Cluster(t)
	a := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-a", XREnrollment: 4 * time.Second})
	b := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: realmtest.Probe(a).Origins(), XREnrollment: 4 * time.Second})

	auth := webauthntest.New()
	sess := nodes.Client(t, a).Register(auth, "roaming")
	avatarID := sess.Avatar["id"].(string)
	viaA := nodes.Client(t, a).With(sess.Token)
	viaB := nodes.Client(t, b).With(sess.Token)
	type templateView struct {
		Enrolled     bool   `json:"enrolled"`
		Enrollment   string `json:"enrollment"`
		DeleteDigest string `json:"delete_action_digest"`
	}
	stream := func(r *realm.Realm) (*vr.Client, *realmtest.Wearer) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: realmtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return cl, realmtest.Wear(cl, 5)
	}

	clA, w := stream(a)
	var tv templateView
	get := func(via *realmtest.Client) templateView {
		tv = templateView{} // an answer without a field must not keep the last one's
		via.Must("GET", "/v1/avatars/me/template", nil, &tv)
		return tv
	}
	realmtest.EventuallyWithin(t, "enrolled through node a", 20*time.Second, func() bool {
		get(viaA)
		return tv.Enrolled && tv.Enrollment == realmtest.EnrollmentDone
	})
	w.TakeOff()
	clA.Close()
	realmtest.EventuallyWithin(t, "node b learns the template from the feed", 5*time.Second, func() bool { return realmtest.Probe(b).XR.KnowsTemplate(avatarID) })

	clB, w := stream(b)
	defer clB.Close()
	defer w.TakeOff()
	realmtest.EventuallyWithin(t, "node b's stream scores against the template", 10*time.Second, func() bool {
		get(viaB)
		return tv.Enrolled && tv.Enrollment == realmtest.EnrollmentDone
	})

	if code, p := viaA.StepUp(auth, tv.DeleteDigest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	viaA.Must("DELETE", "/v1/avatars/me/template", nil, nil)
	deleted := time.Now()
	realmtest.EventuallyWithin(t, "node b's stream forgets the deleted template", 5*time.Second, func() bool {
		get(viaB)
		return !tv.Enrolled && tv.Enrollment == realmtest.EnrollmentNone && !realmtest.Probe(b).XR.KnowsTemplate(avatarID)
	})
	t.Logf("node b forgot the template %v after node a deleted it", time.Since(deleted).Round(time.Millisecond))

	// The step-up that authorized the deletion does not enroll the avatar
	// again, neither on the stream that goes on nor on a new connection
	// through either node, though it is well within the enrollment window.
	time.Sleep(time.Second)
	if got := get(viaB); got.Enrolled || got.Enrollment != realmtest.EnrollmentNone {
		t.Fatalf("node b's stream after the deletion: %+v, want not enrolled and not enrolling", got)
	}
	clB.Close()
	for _, r := range []*realm.Realm{b, a} {
		cl, w := stream(r)
		via := nodes.Client(t, r).With(sess.Token)
		realmtest.EventuallyWithin(t, "a new connection's stream opens through "+r.Node(), 5*time.Second, func() bool { return get(via).Enrollment != "" })
		time.Sleep(time.Second)
		if got := get(via); got.Enrolled || got.Enrollment != realmtest.EnrollmentNone {
			t.Fatalf("streaming through %s after the deletion: %+v, want not enrolled and not enrolling", r.Node(), got)
		}
		w.TakeOff()
		cl.Close()
	}
	// A new user-verified assertion consents again.
	if code, p := viaA.StepUp(auth, tv.DeleteDigest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	cl, w := stream(a)
	defer cl.Close()
	defer w.TakeOff()
	realmtest.EventuallyWithin(t, "enrolling after a new assertion", 5*time.Second, func() bool {
		return get(viaA).Enrollment == realmtest.EnrollmentCollecting
	})
}
