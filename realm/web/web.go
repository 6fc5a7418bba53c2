package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// embedded are the console's files. Files whose names begin with an
// underscore are left out of a directory pattern by go:embed, so the
// noble-hashes helpers that do are named explicitly.
//
//go:embed *.html *.js *.css views vendor vendor/noble-hashes/_*.js
var embedded embed.FS

// Files is the console's tree, rooted where it is served.
var Files fs.FS = embedded

// ContentSecurityPolicy allows the pages only their own scripts, styles
// and API: an injected script from anywhere else does not run, and no
// other site may frame the pages (clickjacking a passkey prompt).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the console for GET: "/" is the console, any other path
// a file of the tree. Folders are not listed, and a path that names no
// file is answered by notFound.
func Handler(notFound http.HandlerFunc) http.Handler {
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
		info, err := fs.Stat(Files, name)
		if err != nil || info.IsDir() || name == "index.html" && req.URL.Path != "/" {
			notFound(w, req)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, req, Files, name)
	})
}
