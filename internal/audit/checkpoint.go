package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	fmtlog "github.com/transparency-dev/formats/log"
	fmtnote "github.com/transparency-dev/formats/note"
	"github.com/zerorealm/zerorealm/internal/notekey"
	"github.com/zerorealm/zerorealm/internal/problem"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Sentinel errors of checkpoints and proofs.
var (
	// ErrBadCheckpoint is wrapped by every refusal of a checkpoint: a
	// signature that does not verify, a malformed note, an origin that is
	// not the node's, or a tree that is not consistent with one accepted
	// before.
	ErrBadCheckpoint = errors.New("audit: checkpoint refused")
	// ErrNoProof is returned when a proof is asked for sizes or an index
	// the tree does not have.
	ErrNoProof = errors.New("audit: no such proof")
)

// noProof is ErrNoProof with what was asked and what the tree holds, for
// the client that asked (404).
func noProof(format string, args ...any) error {
	return problem.Missing(ErrNoProof, "no such proof: "+fmt.Sprintf(format, args...))
}

// OriginSuffix sits between the realm's name and the node in a chain's
// origin: "<realm>/zerorealm/audit/<node>".
const OriginSuffix = "/zerorealm/audit/"

// Origin names a node's chain in its checkpoints (the C2SP tlog-checkpoint
// origin line) and names the node's key: the realm's name (its WebAuthn RP
// id, a domain) and the node.
func Origin(realm, node string) string { return realm + OriginSuffix + node }

// nodeOf is the node an origin names, "" if it is not a chain origin.
func nodeOf(origin string) string {
	i := strings.LastIndex(origin, OriginSuffix)
	if i <= 0 {
		return ""
	}
	node := origin[i+len(OriginSuffix):]
	if !nodePattern.MatchString(node) {
		return ""
	}
	return node
}

// Key is a node's Ed25519 key in the two roles signed notes give it: it
// signs the node's own checkpoints (a plain Ed25519 note signature) and
// cosigns other nodes' checkpoints as their witness (a C2SP
// tlog-cosignature, cosignature/v1). Both carry the chain's origin as the
// key name; the signature types are domain-separated, so one key serves
// both without one being mistaken for the other.
type Key struct {
	name     string
	vkey     string
	signer   note.Signer
	cosigner *fmtnote.Signer
}

// NewKey makes a node's key from a 32-byte Ed25519 seed, named after the
// node's chain origin.
func NewKey(origin string, seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: checkpoint key seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	if nodeOf(origin) == "" {
		return nil, fmt.Errorf("audit: %q is not a chain origin \"<realm>%s<node>\"", origin, OriginSuffix)
	}
	skey, vkey, err := notekey.Keys(origin, seed)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key: %w", err)
	}
	cosigner, err := fmtnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: cosignature key: %w", err)
	}
	return &Key{name: origin, vkey: vkey, signer: signer, cosigner: cosigner}, nil
}

// Origin is the origin of the key's chain (also the key's name).
func (k *Key) Origin() string { return k.name }

// VerifierKey is the public key as a note verifier key
// ("<name>+<hash>+<base64>"), the form verifiers pin.
func (k *Key) VerifierKey() string { return k.vkey }

// Checkpoint is a verified, signed tree head of one node's chain.
type Checkpoint struct {
	Origin string
	Node   string
	Size   uint64
	Root   tlog.Hash
	// Note is the signed note as received, with every signature on it.
	Note []byte
	// Key is the verifier key that signed it.
	Key string
}

// sign makes the signed checkpoint of the tree (size, root), also signed
// by the node's previous key when there is one.
func (k *Key) sign(size uint64, root tlog.Hash, previous *Key) (Checkpoint, error) {
	text := fmtlog.Checkpoint{Origin: k.name, Size: size, Hash: root[:]}.Marshal()
	signers := []note.Signer{k.signer}
	if previous != nil && previous.name == k.name && previous.vkey != k.vkey {
		signers = append(signers, previous.signer)
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return Checkpoint{Origin: k.name, Node: nodeOf(k.name), Size: size, Root: root, Note: msg, Key: k.vkey}, nil
}

// cosign adds this key's cosignature to a checkpoint already verified.
func (k *Key) cosign(c Checkpoint) ([]byte, error) {
	v, err := note.NewVerifier(c.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	n, err := note.Open(c.Note, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	n.Sigs = n.Sigs[:1:1] // the log's own signature; others are re-added when served
	n.UnverifiedSigs = nil
	return note.Sign(n, k.cosigner)
}

// OpenCheckpoint verifies a signed checkpoint note against the node's
// verifier key (as pinned, or as published beside it) and parses it. The
// origin must be the key's name and name a node. Untrusted bytes: any
// flaw is an ErrBadCheckpoint.
func OpenCheckpoint(msg []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: verifier key: %w", ErrBadCheckpoint, err)
	}
	cp, _, _, err := fmtlog.ParseCheckpoint(msg, v.Name(), v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	node := nodeOf(cp.Origin)
	if node == "" {
		return Checkpoint{}, fmt.Errorf("%w: origin %q names no node", ErrBadCheckpoint, cp.Origin)
	}
	if len(cp.Hash) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash has %d bytes, want %d", ErrBadCheckpoint, len(cp.Hash), tlog.HashSize)
	}
	c := Checkpoint{Origin: cp.Origin, Node: node, Size: cp.Size, Key: vkey, Note: msg}
	copy(c.Root[:], cp.Hash)
	return c, nil
}

// Cosigners verifies the cosignatures on a checkpoint note against the
// witnesses' verifier keys and returns the names of those that verify.
// Signatures by unknown keys are ignored.
func Cosigners(msg []byte, witnessKeys []string) []string {
	var vs []note.Verifier
	for _, k := range witnessKeys {
		if v, err := fmtnote.NewVerifierForCosignatureV1(k); err == nil {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(n.Sigs))
	for _, s := range n.Sigs {
		names = append(names, s.Name)
	}
	return names
}

// mergeSignatures is the checkpoint note with the cosignature lines of
// the cosigned copies added, each verified against its witness's key.
func mergeSignatures(c Checkpoint, cosigned map[string][]byte, witnessKeys map[string]string) []byte {
	logV, err := note.NewVerifier(c.Key)
	if err != nil {
		return c.Note
	}
	base, err := note.Open(c.Note, note.VerifierList(logV))
	if err != nil {
		return c.Note
	}
	sigs := base.Sigs[:1:1]
	for witness, msg := range cosigned {
		wv, err := fmtnote.NewVerifierForCosignatureV1(witnessKeys[witness])
		if err != nil {
			continue
		}
		n, err := note.Open(msg, note.VerifierList(wv))
		if err != nil || n.Text != base.Text {
			continue
		}
		sigs = append(sigs, n.Sigs...)
	}
	out, err := note.Sign(&note.Note{Text: base.Text, Sigs: sigs})
	if err != nil {
		return c.Note
	}
	return out
}

// Anchor is a checkpoint kept outside NATS, which an attacker with the
// store cannot reach: a node's own last checkpoint and the last one it
// witnessed of every other node (both in its data directory), or one a
// client kept. Verify holds the chains in the store to them.
type Anchor struct {
	Node       string `json:"node"`
	Key        string `json:"key"`        // the node's verifier key, pinned
	Checkpoint string `json:"checkpoint"` // the signed note
	// Source says where the anchor came from, for findings.
	Source string `json:"-"`
	// witnessed marks the last checkpoint a witness accepted of another
	// node, which the witness resumes from.
	witnessed bool
}

// open verifies the anchor's checkpoint.
func (a Anchor) open() (Checkpoint, error) {
	c, err := OpenCheckpoint([]byte(a.Checkpoint), a.Key)
	if err != nil {
		return Checkpoint{}, err
	}
	if a.Node != "" && c.Node != a.Node {
		return Checkpoint{}, fmt.Errorf("%w: anchor for node %q holds a checkpoint of %q", ErrBadCheckpoint, a.Node, c.Node)
	}
	return c, nil
}

func anchorOf(c Checkpoint) Anchor {
	return Anchor{Node: c.Node, Key: c.Key, Checkpoint: string(c.Note)}
}

// Files in a node's audit directory.
const (
	ownAnchorFile   = "checkpoint.json" // the node's own last checkpoint
	rewrittenSuffix = ".rewritten-"     // + unix time: an own checkpoint the chain contradicted at start
	witnessedDir    = "witnessed"       // <node>.json: the last checkpoint witnessed of each other node
	anchorFileMode  = 0o600
)

// writeAnchor writes an anchor atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced,
// so a crash leaves the old anchor or the new one, never a torn file.
func writeAnchor(path string, a Anchor) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit: anchor directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".anchor-*")
	if err != nil {
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	if err := tmp.Chmod(anchorFileMode); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: write anchor: %w", err)
	}
	return nil
}

// ReadAnchorFile reads an anchor (a JSON object with node, key and
// checkpoint, as GET /v1/audit/checkpoints serves each) and verifies its
// signature. Untrusted bytes: any flaw is an error and nothing is kept.
func ReadAnchorFile(path string) (Anchor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Anchor{}, fmt.Errorf("audit: read anchor: %w", err)
	}
	a, err := parseAnchor(data)
	if err != nil {
		return Anchor{}, fmt.Errorf("audit: anchor %s: %w", filepath.Base(path), err)
	}
	a.Source = path
	return a, nil
}

// maxAnchorBytes bounds an anchor file: a checkpoint with a few dozen
// cosignatures is a few kilobytes.
const maxAnchorBytes = 1 << 20

func parseAnchor(data []byte) (Anchor, error) {
	if len(data) > maxAnchorBytes {
		return Anchor{}, fmt.Errorf("%w: anchor of %d bytes is too large", ErrBadCheckpoint, len(data))
	}
	var a Anchor
	if err := json.Unmarshal(data, &a); err != nil {
		return Anchor{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	c, err := a.open()
	if err != nil {
		return Anchor{}, err
	}
	a.Node = c.Node
	return a, nil
}

// LoadAnchors reads the anchors a node keeps in its audit directory: its
// own last checkpoint, the last it witnessed of each other node, and its
// own checkpoints that the chain in the store contradicted at a start
// (kept as evidence, so that a rewrite stays reported after the node
// carried on). A missing directory holds none. A file that does not verify is an error,
// since it is evidence that something wrote where only the node should;
// the anchors that verify are returned with it.
func LoadAnchors(dir string) ([]Anchor, error) {
	var out []Anchor
	var errs []error
	paths := []string{filepath.Join(dir, ownAnchorFile)}
	witnessed, err := filepath.Glob(filepath.Join(dir, witnessedDir, "*.json"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, witnessed...)
	contradicted, err := filepath.Glob(filepath.Join(dir, ownAnchorFile+rewrittenSuffix+"*"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, contradicted...)
	for _, p := range paths {
		a, err := ReadAnchorFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch base := filepath.Base(p); {
		case base == ownAnchorFile:
			a.Source = "node " + a.Node + "'s own last checkpoint"
		case strings.HasPrefix(base, ownAnchorFile+rewrittenSuffix):
			a.Source = "node " + a.Node + "'s checkpoint that its chain contradicted at a start (" + base + ")"
		default:
			a.Source = "the last checkpoint of node " + a.Node + " witnessed here"
			a.witnessed = true
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}
