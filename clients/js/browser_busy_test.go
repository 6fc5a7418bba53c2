package sdkjs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// busyPage asks a node at its cap for a WebRTC stream through connectXR:
// it marks the refusal in window.zrRefused as onNodeBusy is told of it,
// then streams frames over the channel connectXR resolves with once the
// node lets it in, and leaves what it saw in window.sdkResult.
const busyPage = `<!doctype html>
<meta charset="utf-8">
<title>SDK on a busy node</title>
` + sdkModule + `
const out = { refusals: [] };
try {
  const client = new sdk.RealmClient();
  await new sdk.Passkeys(client).register("busy-" + Math.random().toString(36).slice(2, 8), { useCookie: true });
  const socket = new sdk.RealmSocket(client);
  await socket.connect();
  const transport = await sdk.connectXR(socket, {
    timeoutMs: 15000,
    onNodeBusy: (busy) => {
      out.refusals.push({ isNodeBusyError: busy instanceof sdk.NodeBusyError, retryAfter: busy.retryAfter, reason: busy.message });
      window.zrRefused = true;
    },
  });
  out.xr = await streamUntilAccepted(socket, transport);
  transport.close();
  socket.close();
} catch (err) {
  out.error = String(err && err.stack || err);
}
window.sdkResult = JSON.stringify(out);
</script>
`

// TestSDKOffersAgainAfterNodeBusy has a browser ask a node that holds its
// one XR stream for a WebRTC stream: the SDK tells the page of the
// refusal (a NodeBusyError with the realm's 15 s), offers nothing more
// while the wait lasts (the node counts one refused offer, although the
// place stays taken for part of the wait), and offers again once it is
// over, when the place is free: the data channel opens and frames flow.
func TestSDKOffersAgainAfterNodeBusy(t *testing.T) {
	dist := builtSDK(t)
	b := browsertest.Start(t, browsertest.Options{WebRTCLoopback: true})
	site, r := serveBesideRealm(t, dist, busyPage, realm.Config{MaxXRStreams: 1})

	// A headset streaming over the WebSocket holds the node's one place.
	direct := realmtest.NewClient(t, r.URL())
	direct.Origin = site
	holder := direct.Register(webauthntest.New(), "holder")
	opened := make(chan struct{}, 1)
	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: holder.Token, Transport: vr.WebSocket, Logger: realmtest.Logger(t),
		OnStatus: func(vr.Status) {
			select {
			case opened <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	wearer := realmtest.Wear(cl, 5)
	defer wearer.TakeOff()
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the holder's stream did not open")
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.zrRefused === true`)); err != nil {
		t.Fatalf("the page was not told of a refusal: %v", err)
	}
	// The place stays taken a third of the wait: an offer made in it
	// would be refused again.
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	wearer.TakeOff()
	cl.Close()

	raw, err := chromedp.Run(ctx, chromedp.Poll[string](`window.sdkResult`))
	if err != nil {
		t.Fatalf("the page did not finish: %v", err)
	}
	var got struct {
		Error    string `json:"error"`
		Refusals []struct {
			IsNodeBusyError bool    `json:"isNodeBusyError"`
			RetryAfter      float64 `json:"retryAfter"`
			Reason          string  `json:"reason"`
		} `json:"refusals"`
		XR struct {
			Transport string `json:"transport"`
			Reported  string `json:"reported"`
			Accepted  int    `json:"accepted"`
		} `json:"xr"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("page result %q: %v", raw, err)
	}
	if got.Error != "" {
		t.Fatalf("the page failed: %s", got.Error)
	}
	if len(got.Refusals) != 1 {
		t.Fatalf("the page was told of %d refusals, want 1 (an offer made again before retry_after is refused again)", len(got.Refusals))
	}
	if f := got.Refusals[0]; !f.IsNodeBusyError || f.RetryAfter != 15 || !strings.Contains(f.Reason, "at capacity") {
		t.Errorf("refusal %+v, want a NodeBusyError at capacity with retryAfter 15", f)
	}
	if got.XR.Transport != "webrtc" || got.XR.Reported != "webrtc" || got.XR.Accepted < 8 {
		t.Errorf("XR %+v, want frames accepted over a WebRTC data channel", got.XR)
	}
	if refused := refusedStreams(ctx, t, r.URL()); refused != 1 {
		t.Errorf("the node refused %d new streams, want 1: the page offered again before retry_after", refused)
	}
}

// refusedStreams reads how many new XR streams the node refused for its
// cap from its metrics.
func refusedStreams(ctx context.Context, t *testing.T, realmURL string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realmURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	const series = `zerorealm_xr_streams_refused_total{reason="capacity"} `
	for line := range strings.Lines(string(body)) {
		if count, ok := strings.CutPrefix(strings.TrimSpace(line), series); ok {
			n, err := strconv.Atoi(count)
			if err != nil {
				t.Fatalf("%s%q: %v", series, count, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the node's metrics", series)
	return 0
}
