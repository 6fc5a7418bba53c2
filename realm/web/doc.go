// Package web is the realm's web console: plain ES modules, styles and
// the vendored noble libraries, embedded in the binary and served as they
// are in the repository, with no build step.
//
// It owns the files and how they are served (security headers, no folder
// listings, the old headset page's redirect); the realm mounts its Handler
// for GET and hands it the answer for a path that names no file, so that
// an unknown path is answered like any unknown route.
package web
