package realm

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles are the realm's own pages: plain ES modules, no build step, so
// what is served is what is in the repository.
//
//go:embed web
var webFiles embed.FS

// contentSecurityPolicy allows the pages only their own scripts, styles and
// API: an injected script from anywhere else does not run, and no other
// site may frame the pages (clickjacking a passkey prompt).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (r *Realm) webHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, req)
	})
}
