// Package problem is how a domain says what a client may be told of a
// failure: an HTTP status, a stable problem type (RFC 9457, under
// https://zerorealm.dev/problems/, listed in docs/errors.md) and a detail
// written for the client. The realm's edge reads them with As and answers
// with them; nothing is made by cutting a package's prefix off an error's
// text, and nothing internal (a stream, a bucket, a key) reaches a client
// unless the domain chose to say it.
//
// It is a leaf: every domain may import it, and it imports nothing of the
// project.
package problem
