package browsertest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// page creates a passkey with fixed options and publishes the credential's
// toJSON() form, the format the realm's finish endpoints accept.
const page = `<!doctype html><meta charset=utf-8><title>t</title><script type=module>
const opts = PublicKeyCredential.parseCreationOptionsFromJSON({
  challenge: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  rp: {id: "localhost", name: "test"},
  user: {id: "dXNlcg", name: "user", displayName: "User"},
  pubKeyCredParams: [{type: "public-key", alg: -7}],
  authenticatorSelection: {residentKey: "required", userVerification: "required"},
});
try {
  const cred = await navigator.credentials.create({publicKey: opts});
  window.result = JSON.stringify(cred.toJSON());
} catch (e) { window.result = "error: " + e; }
</script>`

func TestVirtualAuthenticatorCreatesPasskey(t *testing.T) {
	b := Start(t, Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	}))
	defer srv.Close()
	// WebAuthn needs a secure context: localhost is one, 127.0.0.1 works too
	// but the RP id must match the host.
	url := "http://localhost:" + srv.Listener.Addr().(*net.TCPAddr).String()[len("127.0.0.1:"):]
	ctx, cancel := b.WithTimeout(30 * time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	result, err := chromedp.Run(ctx, chromedp.Poll[string](`window.result`))
	if err != nil {
		t.Fatal(err)
	}
	var cred struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Response struct {
			AttestationObject string `json:"attestationObject"`
			ClientDataJSON    string `json:"clientDataJSON"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(result), &cred); err != nil {
		t.Fatalf("credential %q is not toJSON output: %v", result, err)
	}
	if cred.Type != "public-key" || cred.ID == "" || cred.Response.AttestationObject == "" || cred.Response.ClientDataJSON == "" {
		t.Fatalf("credential = %+v, want a public-key credential with attestation", cred)
	}
	if n := len(b.Credentials(t)); n != 1 {
		t.Fatalf("authenticator holds %d credentials, want 1", n)
	}
}
