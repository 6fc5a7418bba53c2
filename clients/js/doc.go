// Package sdkjs holds the Go side of the TypeScript SDK in this folder (the
// npm package @zerorealm/sdk): its Chromium test, which loads the built SDK
// in a page and runs it against a real realm. The SDK itself is TypeScript,
// built with npm; see README.md.
package sdkjs
