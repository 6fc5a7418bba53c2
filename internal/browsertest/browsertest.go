package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx runs actions in the tab (chromedp.Run(b.Ctx, ...)).
	Ctx context.Context
	// Authenticator is the tab's virtual authenticator.
	Authenticator webauthn.AuthenticatorID
}

// chromiumPath finds the browser: $ZR_CHROMIUM, then Debian's and common names.
func chromiumPath() string {
	if p := os.Getenv("ZR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Options tune the virtual authenticator.
type Options struct {
	// Synced makes credentials backup-eligible and backed up, like a synced
	// passkey.
	Synced bool
	// WebRTCLoopback lets pages open WebRTC connections to a server on
	// the same machine: Chromium gathers no loopback candidates and hides
	// host addresses behind mDNS names unless told otherwise.
	WebRTCLoopback bool
}

// Start launches Chromium for the test (closed in t.Cleanup) with a
// user-verifying, resident-key CTAP2 virtual authenticator on its tab.
func Start(t testing.TB, opts Options) *Browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("ZR_REQUIRE_BROWSER") != "" {
			t.Fatal("Chromium not found and ZR_REQUIRE_BROWSER is set: install chromium (CI's .ci/run does)")
		}
		t.Skip("Chromium not found; install it (apt-get install chromium) to run browser tests")
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers, where the sandbox cannot start
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
	)
	if opts.WebRTCLoopback {
		allocOpts = append(allocOpts,
			chromedp.Flag("allow-loopback-in-peer-connection", true),
			// This replaces chromedp's default disable-features value, so
			// that value is repeated first.
			chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
		)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first call starts the browser; it must not carry a timeout.
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:            webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:        webauthn.Ctap2versionCtap21,
			Transport:           webauthn.AuthenticatorTransportInternal,
			HasResidentKey:      true,
			HasUserVerification: true,
			IsUserVerified:      true,
			// Without it credentials.create waits forever for a touch.
			AutomaticPresenceSimulation: true,
			DefaultBackupEligibility:    opts.Synced,
			DefaultBackupState:          opts.Synced,
		},
	})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}
	return &Browser{Ctx: ctx, Authenticator: res.AuthenticatorID}
}

// Credentials lists what the virtual authenticator holds.
func (b *Browser) Credentials(t testing.TB) []*webauthn.Credential {
	t.Helper()
	res, err := chromedp.Call(b.Ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: b.Authenticator})
	if err != nil {
		t.Fatalf("get credentials: %v", err)
	}
	return res.Credentials
}

// WithTimeout derives a context for a group of steps, so a hung page fails
// the test instead of hanging it.
func (b *Browser) WithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.Ctx, d)
}
