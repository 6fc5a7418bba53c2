package realm

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/web"
)

// TestWebServesTheEmbeddedTree checks the console's file server: every
// embedded file with the security headers, no folder listings, unknown
// paths as problems like any unknown route, and the old headset page
// forwarded to its view.
func TestWebServesTheEmbeddedTree(t *testing.T) {
	r := startRealm(t, Config{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := noRedirect.Get(r.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	for _, c := range []struct{ path, contentType, contains string }{
		{"/", "text/html", `<script type="module" src="/app.js">`},
		{"/app.js", "text/javascript", "import"},
		{"/api.js", "text/javascript", "export async function api"},
		{"/views/account.js", "text/javascript", "export function mount"},
		{"/style.css", "text/css", "--accent"},
	} {
		res, body := get(c.path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), c.contentType) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s = %d %q, want 200 %s containing %q", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.contentType, c.contains)
		}
		if csp := res.Header.Get("Content-Security-Policy"); csp != web.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want the console's", c.path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
	}

	for _, path := range []string{"/views/", "/views", "/nope.js", "/views/nope.js", "/index.html", "/v1/nothing", "/web/app.js", "/realm.go"} {
		res, body := get(path)
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"status":404`) {
			t.Errorf("GET %s = %d %q %s, want a 404 problem", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}

	res, _ := get("/headset.html")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/#/headset" {
		t.Errorf("GET /headset.html = %d to %q, want a redirect to /#/headset", res.StatusCode, res.Header.Get("Location"))
	}

	// Only GET (and HEAD) reach the files.
	post, err := http.Post(r.URL()+"/app.js", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusNotFound && post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /app.js = %d, want it refused", post.StatusCode)
	}
}
