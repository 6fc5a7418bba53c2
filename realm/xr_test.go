package realm

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// swayFrames is plain, valid motion for transport tests: a head swaying
// and two hands circling. Identity tests use biometrics/synth instead.
func swayFrames(n int, startSeq uint32, hz float64) []vr.Frame {
	out := make([]vr.Frame, n)
	for i := range out {
		seq := startSeq + uint32(i)
		t := float64(seq) / hz
		a := 0.2 * math.Sin(t)
		out[i] = vr.Frame{
			TimeUS: uint64(t*1e6) + 1,
			Seq:    seq,
			Head:   vr.Pose{Pos: [3]float32{0, 1.7, float32(0.05 * math.Sin(t))}, Rot: [4]float32{0, float32(math.Sin(a / 2)), 0, float32(math.Cos(a / 2))}, Tracked: true},
			Left:   vr.Pose{Pos: [3]float32{-0.3, 1.2 + float32(0.1*math.Sin(3*t)), -0.3}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
			Right:  vr.Pose{Pos: [3]float32{0.3, 1.2 + float32(0.1*math.Cos(3*t)), -0.3}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true},
		}
	}
	return out
}

// dialXR signs up an avatar and opens the SDK's connection over transport.
func dialXR(t *testing.T, r *Realm, name string, transport vr.Transport, onStatus func(vr.Status)) (*vr.Client, sessionAnswer) {
	t.Helper()
	c := newClient(t, r)
	sess := c.Register(webauthntest.New(), name)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: transport, Logger: testLogger(t), OnStatus: onStatus})
	if err != nil {
		t.Fatalf("vr.Dial(%s) = %v", transport, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, sess
}

// The synthetic wearers of headsets (realmtest).
var (
	wear    = realmtest.Wear
	vrFrame = realmtest.VRFrame
)

// Enrollment states, as xr.status messages and the template API name
// them (clients/PROTOCOL.md).
const (
	enrollmentNone       = realmtest.EnrollmentNone
	enrollmentCollecting = realmtest.EnrollmentCollecting
	enrollmentDone       = realmtest.EnrollmentDone
)

// deleteTemplateDigest is the documented action a template's deletion is
// stepped up with: SHA-256("zerorealm/delete-template/v1" || 0x00 || avatar id).
func deleteTemplateDigest(avatarID string) []byte {
	d := sha256.Sum256([]byte("zerorealm/delete-template/v1\x00" + avatarID))
	return d[:]
}

// TestXRTransportsCountFrames streams the same valid motion over each
// transport and checks that the realm decodes every frame and counts one
// bad frame by its reason.
func TestXRTransportsCountFrames(t *testing.T) {
	r := startLocalRealm(t)
	const n = 8
	for _, transport := range []vr.Transport{vr.WebSocket, vr.WebRTC} {
		t.Run(string(transport), func(t *testing.T) {
			cl, sess := dialXR(t, r, "xr-"+string(transport), transport, nil)
			var seq uint32
			for range n {
				if err := cl.Send(swayFrames(4, seq, 72)); err != nil {
					t.Fatal(err)
				}
				seq += 4
				time.Sleep(20 * time.Millisecond)
			}
			bad := swayFrames(1, seq, 72)
			bad[0].Head.Rot = [4]float32{1, 1, 1, 1}
			if err := cl.Send(bad); err != nil {
				t.Fatal(err)
			}
			eventually(t, "every frame counted", func() bool {
				acc, rej, ok := r.xr.StreamCounts(sess.Session.ID)
				return ok && acc == 4*n && rej[biometrics.ReasonQuaternion] == 1
			})
		})
	}
	// Every message came with the kernel's receive stamp: the realm's
	// listener asks for it on every socket, and each peer connection's
	// sockets ask for it too.
	if got := socketQueueCount(t, r); got != 2*(n+1) {
		t.Errorf("messages stamped by the kernel: %d, want the %d sent over WebSocket and the %d over the data channel", got, n+1, n+1)
	}
}

// socketQueueCount is how many XR messages the realm read with the
// kernel's receive stamp (zerorealm_xr_socket_queue_seconds).
func socketQueueCount(t *testing.T, r *Realm) int {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == "zerorealm_xr_socket_queue_seconds" {
			return int(mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	t.Fatal("no zerorealm_xr_socket_queue_seconds")
	return 0
}

// TestXRRevocationClosesPeerConnection signs out while a data channel
// streams: the peer connection closes, and frames sent after it no longer
// count.
func TestXRRevocationClosesPeerConnection(t *testing.T) {
	r := startLocalRealm(t)
	cl, sess := dialXR(t, r, "revokee", vr.WebRTC, nil)
	if err := cl.Send(swayFrames(4, 0, 72)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first frames counted", func() bool {
		a, _, ok := r.xr.StreamCounts(sess.Session.ID)
		return ok && a == 4
	})
	if n := r.xr.PeerConnections(); n != 1 {
		t.Fatalf("open peer connections = %d, want 1", n)
	}
	newClient(t, r).With(sess.Token).Must("POST", "/v1/sessions/logout", nil, nil)
	select {
	case <-cl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client not closed 10s after sign-out")
	}
	if err := cl.Err(); !errors.Is(err, vr.ErrSessionEnded) {
		t.Fatalf("client Err() = %v, want ErrSessionEnded", err)
	}
	eventually(t, "peer connection closed", func() bool { return r.xr.PeerConnections() == 0 })
	eventually(t, "stream released", func() bool { _, _, ok := r.xr.StreamCounts(sess.Session.ID); return !ok })
}

// TestSDKFramesDecodeAsSent checks the SDK's encoder against the realm's
// decoder on synthetic motion with every optional block.
func TestSDKFramesDecodeAsSent(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		src := synth.NewPerson(seed).Session(0).Frames(32, 72)
		in := make([]vr.Frame, len(src))
		for i := range src {
			in[i] = vrFrame(src[i])
		}
		msg, err := vr.AppendMessage(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		got, rejects, err := biometrics.Decode(msg, nil)
		if err != nil || len(rejects) != 0 || len(got) != len(src) {
			t.Fatalf("Decode(AppendMessage(person %d)) = %d frames, %v rejected, %v; want %d", seed, len(got), rejects, err, len(src))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], src[i]) {
				t.Fatalf("person %d frame %d = %+v, want %+v", seed, i, got[i], src[i])
			}
		}
	}
}

// TestXRDataChannelTrustFollowsTheWearer is the XR path end to end: a pion
// client signs in with a passkey, streams a synthetic person's motion over
// a loopback data channel, is enrolled, and becomes trusted on the strength
// of its motion (a live biometric match, not the passkey alone); then
// another synthetic person takes the headset and the session drops to
// step-up.
func TestXRDataChannelTrustFollowsTheWearer(t *testing.T) {
	if testing.Short() {
		t.Skip("streams about half a minute of motion in real time")
	}
	// With the default per-window limit (3) the evidence can fall from a
	// confident match to below the suspension threshold in two windows, so
	// a change of wearer suspends the session at once; a limit of 1.5 lets
	// it pass through step-up first, which is what this test shows.
	r := startRealm(t, Config{Listen: "localhost:0", XREnrollment: 8 * time.Second,
		Biometrics: biometrics.Config{WindowLLRLimit: 1.5}})
	type event struct {
		kind  string
		state string
		prob  float64
		live  bool
	}
	events := make(chan event, 1024)
	send := func(e event) {
		select {
		case events <- e:
		default:
		}
	}
	c := newClient(t, r)
	sess := c.Register(webauthntest.New(), "wearer")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{
		URL: r.URL(), Token: sess.Token, Transport: vr.WebRTC, Logger: testLogger(t),
		OnTrust: func(tr vr.Trust) {
			live, _ := tr.Context["biometric"].(float64)
			send(event{kind: "trust", state: tr.State, live: live > 0})
		},
		OnScore:  func(s vr.Score) { send(event{kind: "score", state: s.State, prob: s.Probability}) },
		OnStatus: func(s vr.Status) { send(event{kind: "status", state: s.Enrollment}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	waitFor := func(what string, limit time.Duration, ok func(event) bool) event {
		t.Helper()
		deadline := time.After(limit)
		for {
			select {
			case e := <-events:
				if ok(e) {
					return e
				}
			case <-deadline:
				t.Fatalf("%s: not within %s", what, limit)
			}
		}
	}

	w := wear(cl, 11)
	waitFor("enrollment starts", 10*time.Second, func(e event) bool { return e.kind == "status" && e.state == enrollmentCollecting })
	waitFor("enrolled", 30*time.Second, func(e event) bool { return e.kind == "status" && e.state == enrollmentDone })
	got := waitFor("trusted on a live biometric match", 30*time.Second, func(e event) bool {
		return e.kind == "score" && e.state == "trusted" && e.prob > 0.9
	})
	t.Logf("enrolled wearer: match %.3f, %s", got.prob, got.state)
	// Each scored window is timed (observed before its score is sent).
	if n := observations(metricsText(t, r), "zerorealm_xr_window_score_duration_seconds"); n < 1 {
		t.Errorf("zerorealm_xr_window_score_duration_seconds observed %d times after a scored window", n)
	}
	tpl, err := r.xr.Templates().Get(context.Background(), sess.Avatar["id"].(string))
	if err != nil || tpl == nil {
		t.Fatalf("stored template = %v, %v; want the enrolled one", tpl, err)
	}

	w = w.HandOver(23)
	defer w.TakeOff()
	got = waitFor("a different wearer loses trust", 30*time.Second, func(e event) bool {
		return (e.kind == "score" || e.kind == "trust") && e.state != "trusted"
	})
	if got.state != "step-up" {
		t.Fatalf("after the hand-over the session is %q (%+v), want step-up", got.state, got)
	}
}

// TestXRTemplateEnrollAndDelete enrolls an avatar from motion streamed
// over the WebSocket right after sign-in, then deletes its template, which
// needs a step-up bound to the documented digest.
func TestXRTemplateEnrollAndDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("streams several seconds of motion in real time")
	}
	r := startRealm(t, Config{Listen: "localhost:0", XREnrollment: 4 * time.Second})
	auth := webauthntest.New()
	c := newClient(t, r)
	sess := c.Register(auth, "templated")
	me := c.With(sess.Token)
	avatarID := sess.Avatar["id"].(string)

	type templateView struct {
		Enrolled     bool   `json:"enrolled"`
		Enrollment   string `json:"enrollment"`
		DeleteDigest string `json:"delete_action_digest"`
	}
	var tv templateView
	me.Must("GET", "/v1/avatars/me/template", nil, &tv)
	if want := digestHex(deleteTemplateDigest(avatarID)); tv.Enrolled || tv.DeleteDigest != want {
		t.Fatalf("GET template before streaming = %+v, want not enrolled and digest %s", tv, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: sess.Token, Transport: vr.WebSocket, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := wear(cl, 5)
	eventuallyWithin(t, "template stored", 20*time.Second, func() bool {
		me.Must("GET", "/v1/avatars/me/template", nil, &tv)
		return tv.Enrolled && tv.Enrollment == enrollmentDone
	})
	w.TakeOff()

	if code, p := me.Call("DELETE", "/v1/avatars/me/template", nil, nil); code != 403 || !strings.Contains(p.Detail, tv.DeleteDigest) {
		t.Fatalf("DELETE template without a step-up = %d %+v, want 403 naming %s", code, p, tv.DeleteDigest)
	}
	if code, p := me.StepUp(auth, tv.DeleteDigest); code != 200 {
		t.Fatalf("step-up = %d %+v", code, p)
	}
	me.Must("DELETE", "/v1/avatars/me/template", nil, nil)
	if _, err := r.xr.Templates().Get(context.Background(), avatarID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("template after deletion: %v, want store.ErrNotFound", err)
	}
	me.Must("GET", "/v1/avatars/me/template", nil, &tv)
	if tv.Enrolled || tv.Enrollment != enrollmentNone {
		t.Fatalf("GET template after deletion = %+v, want not enrolled", tv)
	}
	if code, _ := me.Call("DELETE", "/v1/avatars/me/template", nil, nil); code != 403 {
		t.Fatalf("second DELETE with the spent step-up = %d, want 403", code)
	}
	eventuallyWithin(t, "enrollment and deletion audited", 10*time.Second, func() bool {
		seen := map[string]bool{}
		for _, ev := range r.view.Events(audit.Query{Actor: avatarID, Outcome: audit.Allow, Limit: 100}) {
			seen[ev.Action] = true
		}
		return seen["EnrollBiometrics"] && seen["DeleteTemplate"]
	})
}
