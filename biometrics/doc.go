// Package biometrics turns the motion a headset streams into evidence about
// who is wearing it: the binary XR frame format (Encode, Decode), per-avatar
// streams that resample frames onto a fixed grid and cut sliding windows,
// body-relative features of each window, enrolled templates (encrypted at
// rest in KV by TemplateStore), the verifier that scores windows against a
// template and accumulates the evidence into a match probability, and
// liveness checks against replayed, looped and physically implausible
// motion.
//
// An Engine is shared by a realm node: it holds the background model
// fitted from the node's enrolled templates (starting from a synthetic
// prior) and the registry of recent motion that replays are checked
// against. Each live avatar gets a Stream from it.
//
// Raw frames never leave this package's buffers; only templates (feature
// statistics, encrypted) and scores do. docs/biometrics.md explains the
// features, the scoring and the figures measured on real recordings.
package biometrics
