package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/clock"
)

// TestLoadRedialsWebRTCAfterNodeBusy is TestLoadCountsNodeBusy's case for
// WebRTC, where the refusal answers the offer: the load tool counts it,
// offers nothing until the node's retry_after has passed on its clock,
// and then dials again, and the stream opens once there is room.
func TestLoadRedialsWebRTCAfterNodeBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("signs in avatars and streams over WebRTC")
	}
	url, _, stop := startRealm(t, []string{"--listen", "localhost:0", "--data", t.TempDir(), "--nats-listen", "", "--log-level", "warn", "--max-xr-streams", "1"})
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := clock.NewManual(time.Now())
	r := &loadRun{f: loadFlags{url: url, transport: "webrtc", hz: 40, batch: 2, seed: 1},
		hc: &http.Client{Timeout: 30 * time.Second}, clock: clk}
	holder, err := r.signUpAvatar(ctx, 0, "busy-holder")
	if err != nil {
		t.Fatal(err)
	}
	refused, err := r.signUpAvatar(ctx, 1, "busy-refused")
	if err != nil {
		t.Fatal(err)
	}
	r.avatars = []*loadAvatar{holder, refused}

	// The holder takes the node's one place: its stream opens at its first frames.
	if err := r.connect(ctx, holder); err != nil {
		t.Fatalf("the first avatar's connection: %v", err)
	}
	holderCtx, stopHolder := context.WithCancel(ctx)
	holderDone := make(chan struct{})
	go func() { defer close(holderDone); r.stream(holderCtx, holder) }()
	defer func() { stopHolder(); <-holderDone; holder.client.Close() }()
	waitFor(ctx, t, "the first avatar's stream to open", holder.admitted.Load)

	connected := make(chan error, 1)
	go func() { connected <- r.connect(ctx, refused) }()
	armed := make(chan error, 1)
	go func() { armed <- clk.WaitArmed(ctx, 1) }()
	select {
	case err := <-connected:
		t.Fatalf("the refused avatar's dial ended (%v) instead of waiting for its retry time", err)
	case err := <-armed:
		if err != nil {
			t.Fatalf("the refused avatar never waited for its retry time: %v", err)
		}
	}
	if busy, avatars := r.busy.Load(), r.busyAvatars.Load(); busy != 1 || avatars != 1 {
		t.Fatalf("counted %d refusals to %d avatars, want 1 to 1", busy, avatars)
	}
	if !refused.refused.Load() || refused.admitted.Load() || refused.client != nil {
		t.Fatalf("refused %v, admitted %v, connected %v: want a refused avatar without a connection",
			refused.refused.Load(), refused.admitted.Load(), refused.client != nil)
	}

	// The holder leaves; the refused avatar still waits out the 15 s the
	// node asked for.
	stopHolder()
	<-holderDone
	holder.client.Close()
	waitFor(ctx, t, "the node to free the holder's place", func() bool {
		m, err := r.scrape(ctx)
		return err == nil && m["zerorealm_xr_streams"] != nil && m.sum("zerorealm_xr_streams", "") == 0
	})
	// A timer of the manual clock fires within Advance: one still armed
	// has not let the dial go.
	clk.Advance(14 * time.Second)
	if clk.Armed() != 1 {
		t.Fatal("dialled again before the node's retry_after had passed")
	}

	clk.Advance(time.Second)
	select {
	case err := <-connected:
		if err != nil {
			t.Fatalf("the dial after retry_after: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no dial after retry_after")
	}
	go r.stream(ctx, refused)
	defer refused.client.Close()
	waitFor(ctx, t, "the refused avatar's stream to open", refused.admitted.Load)
	if busy := r.busy.Load(); busy != 1 {
		t.Errorf("%d refusals, want 1: the second offer was refused too", busy)
	}
}

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLoadTellsShedFromRefusal: a node-busy to an avatar whose stream had
// a status is the node shedding an open stream, one to an avatar without
// is a refusal to open one, and one that arrives while the avatar waits
// out an earlier one repeats it and is not counted again.
func TestLoadTellsShedFromRefusal(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r := &loadRun{clock: clk}
	a := &loadAvatar{}
	busy := &vr.RefusalError{Code: vr.CodeNodeBusy, Reason: "behind", RetryAfter: 15 * time.Second}
	counts := func() [4]int64 {
		return [4]int64{r.busy.Load(), r.busyAvatars.Load(), r.shed.Load(), r.shedAvatars.Load()}
	}
	check := func(step string, want [4]int64) {
		t.Helper()
		if got := counts(); got != want {
			t.Fatalf("%s: refusals, refused avatars, sheds, shed avatars %v, want %v", step, got, want)
		}
	}

	r.nodeBusy(a, busy)
	check("refused before any status", [4]int64{1, 1, 0, 0})
	clk.Advance(time.Second)
	r.nodeBusy(a, busy)
	check("the same refusal again while waiting", [4]int64{1, 1, 0, 0})
	if paused := time.Unix(0, a.pausedUntil.Load()).Sub(clk.Now()); paused != 15*time.Second {
		t.Fatalf("paused for %v after the repeat, want its retry_after", paused)
	}

	clk.Advance(16 * time.Second)
	r.streamStatus(a, vr.Status{Enrollment: "collecting"})
	r.nodeBusy(a, busy)
	check("told node-busy while streaming", [4]int64{1, 1, 1, 1})
	clk.Advance(time.Second)
	r.nodeBusy(a, busy)
	check("the shed's repeat", [4]int64{1, 1, 1, 1})

	clk.Advance(16 * time.Second)
	r.nodeBusy(a, busy)
	check("refused on its return", [4]int64{2, 1, 1, 1})
	clk.Advance(16 * time.Second)
	r.streamStatus(a, vr.Status{Enrollment: "enrolled"})
	r.nodeBusy(a, busy)
	check("shed a second time", [4]int64{2, 1, 2, 1})
	if !a.admitted.Load() || !a.refused.Load() || r.enrolled.Load() != 1 {
		t.Fatalf("admitted %v, refused %v, enrolled %d", a.admitted.Load(), a.refused.Load(), r.enrolled.Load())
	}
}
