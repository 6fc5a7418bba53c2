package realm

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// webFiles are the realm's own pages: plain ES modules, no build step, so
// what is served is what is in the repository.
//
//go:embed web web/vendor/noble-hashes/_*.js
var webFiles embed.FS

// contentSecurityPolicy allows the pages only their own scripts, styles and
// API: an injected script from anywhere else does not run, and no other
// site may frame the pages (clickjacking a passkey prompt).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// webHandler serves the embedded console for GET: "/" is the console, any
// other path a file of the tree. Folders are not listed, and a path that
// names no file is answered like any unknown route, as a problem.
func (r *Realm) webHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := strings.TrimPrefix(path.Clean(req.URL.Path), "/")
		switch name {
		case "":
			name = "index.html"
		case "headset.html":
			// The simulated headset was a page of its own; it is a view of
			// the console now.
			http.Redirect(w, req, "/#/headset", http.StatusMovedPermanently)
			return
		}
		info, err := fs.Stat(sub, name)
		if err != nil || info.IsDir() || name == "index.html" && req.URL.Path != "/" {
			r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path)})
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, req, sub, name)
	})
}
