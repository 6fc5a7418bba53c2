package sdkjs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerorealm/zerorealm/internal/browsertest"
	"github.com/zerorealm/zerorealm/realm"
)

// sdkPage runs the built SDK in the browser, as a WebXR page or a console
// served beside the realm would: a cookie session from a passkey made by
// Chromium's virtual authenticator (through the browser's own JSON parsers
// where it has them, then through the SDK's fallback encoder), typed calls
// and a ProblemError, the realm WebSocket, XR frames over a WebRTC data
// channel signaled on it, sessions, and signing out. It
// leaves what it saw in window.sdkResult.
const sdkPage = `<!doctype html>
<meta charset="utf-8">
<title>SDK in the browser</title>
` + sdkModule + `
const out = { steps: [] };
const step = (name, value) => out.steps.push(name) && (out[name] = value);
try {
  const client = new sdk.RealmClient();
  const name = "chromium-" + Math.random().toString(36).slice(2, 8);
  const reg = await new sdk.Passkeys(client).register(name, { displayName: "Chromium", useCookie: true });
  step("registered", { name: reg.avatar.name, token: reg.token ?? "", csrf: Boolean(reg.csrf) });
  const me = await client.call("getMe");
  step("me", { name: me.avatar.name, passkeys: me.avatar.passkeys.length });
  step("nativeJSON", typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function");

  try {
    await client.call("getScene", { path: { id: "nowhere" } });
    step("problem", "no error");
  } catch (err) {
    step("problem", { isProblemError: err instanceof sdk.ProblemError, notFound: err.is?.("not-found"), status: err.status });
  }

  const socket = new sdk.RealmSocket(client);
  const hello = await socket.connect();
  const joined = await socket.join("foundry");
  step("socket", { avatar: hello.avatar.name, scene: joined.scene });

  // XR frames over a WebRTC data channel signaled on the socket, until the
  // realm reports them accepted on that transport.
  const transport = await sdk.connectXR(socket, { timeoutMs: 15000 });
  step("xr", await streamUntilAccepted(socket, transport));
  transport.close();
  socket.close();

  // The SDK's own encoder, as on a browser without the JSON parsers.
  const fallback = new sdk.Passkeys(client, sdk.browserAuthenticator(navigator.credentials, {}));
  const again = await fallback.signIn({ useCookie: true });
  step("fallbackSignIn", again.avatar.name);
  const stepped = await fallback.stepUp("0x" + "cd".repeat(32));
  step("fallbackStepUp", stepped.verified);

  const sessions = await new sdk.Sessions(client).list();
  step("sessions", { count: sessions.length, current: sessions.filter((s) => s.current).length });
  await new sdk.Sessions(client).signOutEverywhere();
  try {
    await client.call("getMe");
    step("signedOut", "still signed in");
  } catch (err) {
    step("signedOut", err.status);
  }
} catch (err) {
  out.error = String(err && err.stack || err);
}
window.sdkResult = JSON.stringify(out);
</script>
`

// sdkModule opens a page's module script: the built SDK imported as sdk
// (its dependencies mapped to node_modules), and streamUntilAcceptedJS.
const sdkModule = `<script type="importmap">
{"imports": {"@noble/curves/": "/node_modules/@noble/curves/", "@noble/hashes/": "/node_modules/@noble/hashes/"}}
</script>
<script type="module">
import * as sdk from "/sdk/index.js";
` + streamUntilAcceptedJS

// streamUntilAcceptedJS defines, in a page that imported the SDK as sdk,
// streamUntilAccepted(socket, transport): it sends messages of four
// frames every 45 ms, stamped from the page's monotonic clock as a device
// stamps them, a head swaying a little, until the realm reports 8
// accepted on the transport; it resolves with the transport's kind, the
// one the realm reported and the count.
const streamUntilAcceptedJS = `
async function streamUntilAccepted(socket, transport) {
  const status = socket.next("xr", (m) => m.type === "xr.status" && m.xr.transport === transport.kind && m.xr.frames_accepted >= 8);
  let reported = false;
  status.then(() => (reported = true), () => (reported = true));
  for (let n = 0; !reported && n < 4 * 400; n += 4) {
    const frames = [];
    const now = Math.round(performance.now() * 1000);
    for (let i = n; i < n + 4; i++) {
      frames.push({ timeUs: now - (n + 3 - i) * 11111, seq: i, head: { pos: [0.01 * Math.sin(i / 9), 1.7, 0.01 * Math.cos(i / 9)], rot: [0, 0, 0, 1], tracked: true } });
    }
    transport.send(sdk.encodeFrames(frames));
    await new Promise((r) => setTimeout(r, 45));
  }
  const xr = await status;
  return { transport: transport.kind, reported: xr.xr.transport, accepted: xr.xr.frames_accepted };
}
`

// TestSDKInChromium loads the built SDK (dist/, from npm run build) in
// headless Chromium with a virtual authenticator, on a page served beside a
// real realm: the page's origin proxies /v1 to the realm, as a site that
// hosts its own pages in front of a realm does, so cookies, CSRF tokens,
// passkeys and the WebSocket all work as they would in production.
func TestSDKInChromium(t *testing.T) {
	dist := builtSDK(t)
	b := browsertest.Start(t, browsertest.Options{WebRTCLoopback: true})
	site, _ := serveBesideRealm(t, dist, sdkPage, realm.Config{})

	ctx, cancel := b.WithTimeout(90 * time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/")); err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Poll[string](`window.sdkResult`))
	if err != nil {
		t.Fatalf("the page did not finish: %v", err)
	}
	var got struct {
		Error      string `json:"error"`
		Registered struct {
			Name  string `json:"name"`
			Token string `json:"token"`
			CSRF  bool   `json:"csrf"`
		} `json:"registered"`
		Me struct {
			Name     string `json:"name"`
			Passkeys int    `json:"passkeys"`
		} `json:"me"`
		NativeJSON bool `json:"nativeJSON"`
		Problem    struct {
			IsProblemError bool `json:"isProblemError"`
			NotFound       bool `json:"notFound"`
			Status         int  `json:"status"`
		} `json:"problem"`
		Socket struct {
			Avatar string `json:"avatar"`
			Scene  string `json:"scene"`
		} `json:"socket"`
		XR struct {
			Transport string `json:"transport"`
			Reported  string `json:"reported"`
			Accepted  int    `json:"accepted"`
		} `json:"xr"`
		FallbackSignIn string `json:"fallbackSignIn"`
		FallbackStepUp bool   `json:"fallbackStepUp"`
		Sessions       struct {
			Count   int `json:"count"`
			Current int `json:"current"`
		} `json:"sessions"`
		SignedOut json.RawMessage `json:"signedOut"`
		Steps     []string        `json:"steps"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("page result %q: %v", raw, err)
	}
	if got.Error != "" {
		t.Fatalf("the page failed after steps %v: %s", got.Steps, got.Error)
	}
	name := got.Registered.Name
	t.Logf("steps %v; browser JSON parsers: %v", got.Steps, got.NativeJSON)
	switch {
	case !strings.HasPrefix(name, "chromium-") || got.Registered.Token != "" || !got.Registered.CSRF:
		t.Errorf("registered %+v, want a cookie session (no token in the body, a CSRF token)", got.Registered)
	case got.Me.Name != name || got.Me.Passkeys != 1:
		t.Errorf("getMe %+v, want %s with one passkey", got.Me, name)
	case !got.Problem.IsProblemError || !got.Problem.NotFound || got.Problem.Status != http.StatusNotFound:
		t.Errorf("unknown scene: %+v, want a not-found ProblemError", got.Problem)
	case got.Socket.Avatar != name || got.Socket.Scene != "foundry":
		t.Errorf("socket %+v, want hello for %s and a join of foundry", got.Socket, name)
	case got.XR.Transport != "webrtc" || got.XR.Reported != "webrtc" || got.XR.Accepted < 8:
		t.Errorf("XR %+v, want frames accepted over a WebRTC data channel", got.XR)
	case got.FallbackSignIn != name || !got.FallbackStepUp:
		t.Errorf("fallback encoder: signed in as %q, step-up %v; want %s and true", got.FallbackSignIn, got.FallbackStepUp, name)
	case got.Sessions.Count != 2 || got.Sessions.Current != 1:
		t.Errorf("sessions %+v, want 2 (registration and sign-in), one current", got.Sessions)
	case string(got.SignedOut) != "401":
		t.Errorf("after signing out everywhere getMe gave %s, want 401", got.SignedOut)
	}
}

// builtSDK is the SDK's dist/ folder; the test skips while it is not
// built, and fails then under ZR_REQUIRE_BROWSER.
func builtSDK(t *testing.T) string {
	t.Helper()
	dist, err := filepath.Abs("dist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dist, "index.js")); err != nil {
		if os.Getenv("ZR_REQUIRE_BROWSER") != "" {
			t.Fatal("clients/js/dist is not built and ZR_REQUIRE_BROWSER is set: run npm ci && npm run build in clients/js (CI's .ci/js-sdk build does)")
		}
		t.Skip("clients/js/dist is not built: run npm ci && npm run build in clients/js to run this test")
	}
	return dist
}

// serveBesideRealm starts a realm with cfg (its origin the site's) and a
// site whose origin serves page at / and the SDK from dist, and proxies
// /v1 to the realm, as a site that hosts its own pages in front of a
// realm does, so cookies, CSRF tokens, passkeys and the WebSocket all work
// as they would in production. It returns the site's URL.
func serveBesideRealm(t *testing.T, dist, page string, cfg realm.Config) (site string, r *realm.Realm) {
	t.Helper()
	// localhost, not 127.0.0.1: the relying party id is "localhost".
	ln, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	// The listener's address is an IP; the page is opened by name.
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	site = "http://localhost:" + port
	cfg.Listen, cfg.DataDir, cfg.Origins = "localhost:0", t.TempDir(), []string{site}
	r = startRealm(t, cfg)
	target, err := url.Parse(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }})
	mux.Handle("/sdk/", http.StripPrefix("/sdk/", http.FileServer(http.Dir(dist))))
	for _, pkg := range []string{"@noble/curves", "@noble/hashes"} {
		prefix := "/node_modules/" + pkg + "/"
		mux.Handle(prefix, http.StripPrefix(prefix, http.FileServer(http.Dir(filepath.Join("node_modules", pkg)))))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return site, r
}

// startRealm runs a realm until the test ends.
func startRealm(t *testing.T, cfg realm.Config) *realm.Realm {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := realm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("realm failed to start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("realm not ready after 60s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("realm stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("realm did not stop")
		}
	})
	return r
}
