// Package apidoc holds the realm's machine-readable API descriptions: the
// OpenAPI 3.1 document of the HTTP API (/v1/openapi.json), with an
// operationId, schemas, security and problem responses per operation, and
// the AsyncAPI 3 document of the realm WebSocket (/v1/asyncapi.json).
//
// The documents are data: built once, served as they are, and held to the
// routes the realm registers and the answers it gives by the realm's
// tests. It imports only the shared plumbing, for the problem type URIs
// and the session cookie's name.
package apidoc
