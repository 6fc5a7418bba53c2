// Package biometrics turns the motion a headset streams into evidence about
// who is wearing it: the binary XR frame format, per-avatar ingestion
// buffers, body-relative features over sliding windows, enrolled templates,
// the verifier that scores windows against a template, and liveness and
// replay checks.
//
// Raw frames never leave this package's buffers; only templates (encrypted)
// and scores do.
package biometrics
