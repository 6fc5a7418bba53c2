package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// An avatar whose stream opens after its sign-in's enrollment window (the
// realm's 2 minutes; 1 s here) is told not-enrolled, and no enrollment
// starts without a new passkey assertion. The load tool steps it up, as
// a headset's app asks its wearer to, and the realm enrolls it on that:
// before, such an avatar streamed unenrolled for the rest of the run.
func TestLoadStepsUpAnAvatarWhoseConsentPassed(t *testing.T) {
	if testing.Short() {
		t.Skip("signs in an avatar and streams its enrollment")
	}
	cfg := realm.Config{Listen: "localhost:0", CeremonyRate: -1, XREnrollment: 3 * time.Second, XREnrollWithin: time.Second}
	realmtest.Place(t, &cfg.Listen, &cfg.DataDir, &cfg.Logger)
	node, _ := realmtest.Run(t, func() (*realm.Realm, error) { return realm.New(cfg) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := clock.NewManual(time.Now())
	r := &loadRun{f: loadFlags{url: node.URL(), transport: "ws", hz: 40, batch: 4, seed: 1},
		hc: &http.Client{Timeout: 30 * time.Second}, clock: clk, ctx: ctx}
	a, err := r.signUpAvatar(ctx, 0, "late-consent")
	if err != nil {
		t.Fatal(err)
	}
	r.avatars = []*loadAvatar{a}
	time.Sleep(1500 * time.Millisecond) // past the realm's enrollment window

	if err := r.connect(ctx, a); err != nil {
		t.Fatal(err)
	}
	defer a.client.Close()
	go r.stream(ctx, a)
	waitFor(ctx, t, "the stream's first status", a.admitted.Load)
	// Told not-enrolled within consentAgainAfter of its sign-up, it waits:
	// such a status is one sent before an enrollment began.
	time.Sleep(2 * time.Second)
	if n := r.consented.Load(); n != 0 || a.enrolled.Load() {
		t.Fatalf("%d step-ups (enrolled %v) within %s of the sign-up, want none: the realm has no consent to enroll on", n, a.enrolled.Load(), consentAgainAfter)
	}
	clk.Advance(consentAgainAfter)
	enrolling, stop := context.WithTimeout(ctx, 30*time.Second) // 3 s of motion, and the step-up
	defer stop()
	waitFor(enrolling, t, "the avatar to enroll after its step-up", a.enrolled.Load)
	if n, failed := r.consented.Load(), r.consentFailed.Load(); n != 1 || failed != 0 {
		t.Errorf("%d step-ups, %d failed: want the one that enrolled the avatar", n, failed)
	}
}
