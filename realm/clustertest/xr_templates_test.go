package clustertest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/natstest"
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
		cl := dialWS(t, r, sess.Token, vr.Config{})
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

// TestStreamAdoptsATemplateEnrolledThroughAnotherNode: an avatar streams
// through node b without a template and without consent to enroll there
// (its sign-in is older than b's enrollment window), while its other
// session enrolls through node a. Node b's stream takes the template up
// from the store's change feed and scores its wearer from then on, as a
// stream opened after the enrollment would: before, it went on unjudged
// for the rest of its life.
func TestStreamAdoptsATemplateEnrolledThroughAnotherNode(t *testing.T) {
	_, urls := nodes.Cluster(t)
	a := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-a", XREnrollment: 4 * time.Second})
	b := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: realmtest.Probe(a).Origins(),
		XREnrollment: 4 * time.Second, XREnrollWithin: time.Second})

	auth := webauthntest.New()
	first := nodes.Client(t, a).Register(auth, "two-headsets")
	second := nodes.Client(t, a).Login(auth, "two-headsets") // a second session, streaming through b
	time.Sleep(1500 * time.Millisecond)                      // past b's enrollment window

	var scores atomic.Int64
	var enrollment atomic.Value // string
	clB := dialWS(t, b, second.Token, vr.Config{
		OnStatus: func(s vr.Status) { enrollment.Store(s.Enrollment) },
		OnScore:  func(vr.Score) { scores.Add(1) }})
	defer clB.Close()
	wB := realmtest.Wear(clB, 31)
	defer wB.TakeOff()
	realmtest.EventuallyWithin(t, "node b streams the avatar, unenrolled", 10*time.Second, func() bool {
		return enrollment.Load() == realmtest.EnrollmentNone
	})

	clA := dialWS(t, a, first.Token, vr.Config{})
	wA := realmtest.Wear(clA, 31)
	realmtest.EventuallyWithin(t, "node a enrolls the avatar", 20*time.Second, func() bool { return realmtest.Probe(a).XR.KnowsTemplate(first.Avatar["id"].(string)) })
	wA.TakeOff()
	clA.Close()
	if n := scores.Load(); n != 0 {
		t.Fatalf("node b scored %d windows before any template existed", n)
	}
	realmtest.EventuallyWithin(t, "node b's stream adopts the template and scores its wearer", 15*time.Second, func() bool {
		return enrollment.Load() == realmtest.EnrollmentDone && scores.Load() >= 3
	})
}

// TestStreamReadsItsTemplateAgainAfterTheStoreStalled: a node whose store
// answers nothing when a headset's first frames arrive cannot tell
// whether the avatar has a biometric template. It neither scores against
// nothing nor enrolls over a template that may exist, and it does not
// give up either: once the store answers again, the stream reads again,
// and goes on as if it had known from the start. An enrolled avatar's
// stream then scores its wearer; an avatar without a template, who has
// just signed in with a user-verified passkey, enrolls.
func TestStreamReadsItsTemplateAgainAfterTheStoreStalled(t *testing.T) {
	servers, _ := nodes.Cluster(t)
	proxy := natstest.NewStallingProxy(t, servers[0].Addr().String())
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: []string{proxy.URL()}, Node: "realm-a", XREnrollment: 4 * time.Second})
	metric := func(what string) float64 {
		v, _ := realmtest.Metric(t, r.URL(), `zerorealm_xr_template_unknown_total{what="`+what+`"}`)
		return v
	}
	var lastStatus atomic.Value // vr.Status
	var scores atomic.Int64
	var lastProbability atomic.Value // float64
	dial := func(token string) *vr.Client {
		t.Helper()
		return dialWS(t, r, token, vr.Config{
			OnStatus: func(s vr.Status) { lastStatus.Store(s) },
			OnScore: func(s vr.Score) {
				scores.Add(1)
				lastProbability.Store(s.Probability)
			}})
	}
	enrollment := func() string {
		s, _ := lastStatus.Load().(vr.Status)
		return s.Enrollment
	}
	// streamThroughAStall connects, stalls the store, puts the headset on
	// and lets the store go once the stream has opened without knowing.
	streamThroughAStall := func(token string, seed int64, before float64) (*vr.Client, *realmtest.Wearer) {
		t.Helper()
		cl := dial(token)
		proxy.Stall()
		stalled := time.Now()
		w := realmtest.Wear(cl, seed)
		realmtest.EventuallyWithin(t, "the stream opens without knowing the template", 20*time.Second, func() bool { return metric("at-open") > before })
		// The client is told so, rather than "not-enrolled".
		realmtest.EventuallyWithin(t, "the status says the enrollment is unknown", 10*time.Second, func() bool { return enrollment() == realmtest.EnrollmentUnknown })
		proxy.Resume()
		t.Logf("the store answered nothing for %v", time.Since(stalled).Round(time.Millisecond))
		return cl, w
	}

	t.Run("enrolled", func(t *testing.T) {
		sess := nodes.Client(t, r).Register(webauthntest.New(), "stalled-enrolled")
		cl := dial(sess.Token)
		w := realmtest.Wear(cl, 21)
		realmtest.EventuallyWithin(t, "enrolled", 30*time.Second, func() bool { return enrollment() == realmtest.EnrollmentDone })
		w.TakeOff()
		cl.Close()

		found := metric("found")
		scores.Store(0)
		lastStatus.Store(vr.Status{})
		cl, w = streamThroughAStall(sess.Token, 21, metric("at-open"))
		defer cl.Close()
		defer w.TakeOff()
		if n := scores.Load(); n != 0 {
			t.Fatalf("a stream that could not read its template scored %d windows", n)
		}
		realmtest.EventuallyWithin(t, "the stream reads its template again and scores its wearer", 30*time.Second, func() bool {
			p, _ := lastProbability.Load().(float64)
			return metric("found") > found && scores.Load() >= 5 && p >= 0.5
		})
		if got := enrollment(); got != realmtest.EnrollmentDone {
			t.Fatalf("status after the template was read again: enrollment %q, want %q", got, realmtest.EnrollmentDone)
		}
	})

	t.Run("not enrolled", func(t *testing.T) {
		sess := nodes.Client(t, r).Register(webauthntest.New(), "stalled-new")
		none := metric("none")
		lastStatus.Store(vr.Status{})
		cl, w := streamThroughAStall(sess.Token, 22, metric("at-open"))
		defer cl.Close()
		defer w.TakeOff()
		realmtest.EventuallyWithin(t, "the stream learns the avatar has no template and enrolls on the sign-in's consent", 40*time.Second, func() bool {
			return metric("none") > none && enrollment() == realmtest.EnrollmentDone
		})
	})
}

// TestEnrollmentIsStoredAfterTheStoreStalled: the store answers nothing
// when a headset's enrollment finishes. The node keeps the template in
// memory and stores it once the store answers, with the enrollment's
// audit record: before, the node scored the avatar against a template
// that no other node learnt and that a restart lost.
func TestEnrollmentIsStoredAfterTheStoreStalled(t *testing.T) {
	servers, _ := nodes.Cluster(t)
	proxy := natstest.NewStallingProxy(t, servers[0].Addr().String())
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: []string{proxy.URL()}, Node: "realm-a", XREnrollment: 4 * time.Second})
	unstored := func() float64 {
		v, _ := realmtest.Metric(t, r.URL(), "zerorealm_xr_templates_unstored")
		return v
	}
	sess := nodes.Client(t, r).Register(webauthntest.New(), "stalled-enrollment")
	avatarID := sess.Avatar["id"].(string)
	var progress atomic.Value // float64
	cl := dialWS(t, r, sess.Token, vr.Config{
		OnStatus: func(s vr.Status) {
			if s.EnrollmentProgress != nil {
				progress.Store(*s.EnrollmentProgress)
			}
		}})
	defer cl.Close()
	w := realmtest.Wear(cl, 41)
	defer w.TakeOff()
	realmtest.EventuallyWithin(t, "enrolling", 20*time.Second, func() bool {
		p, _ := progress.Load().(float64)
		return p >= 0.25
	})
	proxy.Stall()
	stalled := time.Now()
	realmtest.EventuallyWithin(t, "the enrolled template waits to be stored", 20*time.Second, func() bool { return unstored() == 1 })
	if !realmtest.Probe(r).XR.KnowsTemplate(avatarID) {
		t.Fatal("the node does not score against the template it enrolled")
	}
	proxy.Resume()
	t.Logf("the store answered nothing for %v", time.Since(stalled).Round(time.Millisecond))
	realmtest.EventuallyWithin(t, "the template is stored once the store answers", 40*time.Second, func() bool { return unstored() == 0 })
	// The template view reads the store.
	var tv struct {
		Enrolled bool `json:"enrolled"`
	}
	if nodes.Client(t, r).With(sess.Token).Must("GET", "/v1/avatars/me/template", nil, &tv); !tv.Enrolled {
		t.Fatal("the template is not in the store")
	}
	var page struct {
		Events []struct {
			Action string `json:"action"`
		} `json:"events"`
	}
	realmtest.EventuallyWithin(t, "the enrollment's audit record", 10*time.Second, func() bool {
		nodes.Client(t, r).With(sess.Token).Must("GET", "/v1/audit?action=EnrollBiometrics&actor="+avatarID, nil, &page)
		return len(page.Events) == 1
	})
}

// dialWS connects to r's realm WebSocket with token, and cfg's callbacks.
func dialWS(t *testing.T, r *realm.Realm, token string, cfg vr.Config) *vr.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg.URL, cfg.Token, cfg.Transport, cfg.Logger = r.URL(), token, vr.WebSocket, realmtest.Logger(t)
	cl, err := vr.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
