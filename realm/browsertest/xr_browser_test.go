package browsertest

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestBrowserHeadsetStreamsOverDataChannel signs up on the console in
// headless Chromium, opens the headset view (through the old headset page's
// address, which forwards to it) and streams a simulated person's motion
// over a WebRTC data channel; the realm must count the frames as accepted,
// the page must show what the realm reported, and handing the headset to
// someone else must cost the session its trust.
func TestBrowserHeadsetStreamsOverDataChannel(t *testing.T) {
	r := nodes.Start(t, realm.Config{Listen: "localhost:0", XREnrollment: 6 * time.Second})
	b := browsertest.Start(t, browsertest.Options{WebRTCLoopback: true})
	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(r.URL())); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.ready === "1"`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "headset"),
		chromedp.SendKeys(chromedp.CSS("#display"), "Headset Wearer"),
		chromedp.Click(chromedp.CSS("#register"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.state === "signed-in"`)); err != nil {
		t.Fatal(err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(r.URL()+"/headset.html")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.ready === "1" && document.body.dataset.state === "signed-in" && document.body.dataset.shown === "headset"`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#transport"), "webrtc"),
		chromedp.Click(chromedp.CSS("#start"))); err != nil {
		t.Fatal(err)
	}
	last, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.last`))
	if err != nil {
		t.Fatal(err)
	}
	if last != "start:ok" {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageResults))
		t.Fatalf("headset start = %q: %s", last, status)
	}
	if link, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.link`)); link != "data channel open" {
		t.Fatalf("link = %q, want the data channel open", link)
	}

	// The realm counts the frames as they arrive over the data channel,
	// and tells the page, which shows the count.
	const want = 144 // two seconds at 72 Hz
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`Number(document.body.dataset.accepted || 0) >= `+strconv.Itoa(want))); err != nil {
		t.Fatalf("page never showed %d accepted frames: %v", want, err)
	}
	if n := realmtest.Probe(r).XR.PeerConnections(); n != 1 {
		t.Fatalf("open peer connections = %d, want 1", n)
	}
	var accepted uint64
	var rejected map[string]uint64
	for _, id := range realmtest.Probe(r).XR.StreamingSessions() {
		accepted, rejected, _ = realmtest.Probe(r).XR.StreamCounts(id)
	}
	if accepted < want || len(rejected) != 0 {
		t.Fatalf("realm counted %d accepted and rejected %v, want at least %d and none rejected", accepted, rejected, want)
	}

	// The page's persona is enrolled from its motion, then every window is
	// scored and drawn on the chart.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.enrollment === "enrolled" && Number(document.body.dataset.scores || 0) >= 2`)); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(document.body.dataset)`))
		t.Fatalf("no scores after enrollment: %v (page state %s)", err, st)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.trust === "trusted"`)); err != nil {
		t.Fatalf("the enrolled wearer is not trusted: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#handover"))); err != nil {
		t.Fatal(err)
	}
	// The personas move like different people (the model the engine is
	// calibrated against), so another wearer loses the trust within a few
	// windows: step-up, or suspended when the evidence falls fast.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.trust !== "trusted"`)); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(document.body.dataset)`))
		t.Fatalf("still trusted after the hand-over: %v (page state %s)", err, st)
	}
}
