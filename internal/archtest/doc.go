// Package archtest holds the tests that keep the shape of the codebase: the
// import graph follows the architecture's dependency direction, and every
// package has exactly one package comment, in doc.go.
//
// It has no non-test code; it exists so that these checks run with
// `go test ./...` like everything else.
package archtest
