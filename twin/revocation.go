package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/eip712"
)

// RevocationNotice is the realm's signed list of revoked sessions. The
// realm publishes an incremental notice at once for every revocation,
// naming only the new sessions, and a complete notice as a heartbeat every
// second or so, repeating every session revoked within the feed's memory:
// a gateway that missed a message, or connected late, learns of a
// revocation from the next heartbeat. Only complete notices keep a
// gateway's feed fresh, so a gateway never trusts the feed on the word of
// an incremental notice that may follow lost ones.
//
// Incremental notices keep the cost of a revocation constant: a complete
// notice costs every gateway a hash and a map insert per session in the
// feed's memory, which during a mass revocation is thousands.
//
// Agents names what stops agents' grants: revoked delegations (dg_...,
// and with one every delegation derived from it, since a grant names its
// whole chain), suspended agents (ag_...) and owners who revoked every
// agent of theirs (av_...).
type RevocationNotice struct {
	Seq      uint64   `json:"seq"`
	At       uint64   `json:"at"`
	Complete bool     `json:"complete"`
	Sessions []string `json:"sessions"`
	Agents   []string `json:"agents"`
}

// Digest is the notice's EIP-712 signing hash.
func (n *RevocationNotice) Digest() common.Hash {
	return eip712.New(revocationTypeHash).Uint64(n.Seq).Uint64(n.At).Bool(n.Complete).Strings(n.Sessions).Strings(n.Agents).Digest(domainSeparator)
}

// SignedNotice is a notice with the realm's signature.
type SignedNotice struct {
	Notice    RevocationNotice
	Signature Signature
}

type signedNoticeWire struct {
	Notice    RevocationNotice `json:"notice"`
	Signature string           `json:"signature"`
}

// MaxNoticeBytes bounds a revocation notice on the wire.
const MaxNoticeBytes = 512 << 10

// Encode writes the wire form.
func (sn SignedNotice) Encode() []byte {
	if sn.Notice.Sessions == nil {
		sn.Notice.Sessions = []string{}
	}
	if sn.Notice.Agents == nil {
		sn.Notice.Agents = []string{}
	}
	b, _ := json.Marshal(signedNoticeWire{Notice: sn.Notice, Signature: sn.Signature.Hex()})
	return b
}

// DecodeSignedNotice parses a notice's wire form.
func DecodeSignedNotice(data []byte) (SignedNotice, error) {
	if len(data) > MaxNoticeBytes {
		return SignedNotice{}, fmt.Errorf("%w: notice is %d bytes", ErrInvalidGrant, len(data))
	}
	var w signedNoticeWire
	if err := decodeStrict(data, &w); err != nil {
		return SignedNotice{}, fmt.Errorf("%w: notice: %s", ErrInvalidGrant, err)
	}
	sig, err := ParseSignature(w.Signature)
	if err != nil {
		return SignedNotice{}, err
	}
	return SignedNotice{Notice: w.Notice, Signature: sig}, nil
}

// Signer recovers the address that signed the notice.
func (sn *SignedNotice) Signer() (common.Address, error) {
	return recoverSigner(sn.Notice.Digest(), sn.Signature)
}

// SignNotice signs a notice with the realm's key.
func (s *Signer) SignNotice(n RevocationNotice) SignedNotice {
	return SignedNotice{Notice: n, Signature: s.sign(n.Digest())}
}

// FeedConfig configures a RevocationFeed.
type FeedConfig struct {
	// Conn publishes the notices. Required.
	Conn *nats.Conn
	// Prefix is the realm's subject prefix; default "zr".
	Prefix string
	// Signer is the realm's grant key. Required.
	Signer *Signer
	// Heartbeat is how often a notice goes out when nothing is revoked;
	// default 1s. Gateways treat a feed silent for a few heartbeats as
	// stale and refuse every grant.
	Heartbeat time.Duration
	// Memory is how long a revoked session is repeated in every notice;
	// default 30s. It must outlast the longest grant plus clock skew, after
	// which a grant of the session can no longer be valid anyway.
	Memory time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RevocationFeed publishes the realm's revocations to gateways.
type RevocationFeed struct {
	cfg  FeedConfig
	subj string

	mu      sync.Mutex
	seq     uint64
	revoked map[string]time.Time
	agents  map[string]time.Time // delegations, agents and owners revoked

	cancel context.CancelFunc
	done   chan struct{}
}

// StartRevocationFeed validates cfg, publishes a first heartbeat and keeps
// publishing until Close.
func StartRevocationFeed(cfg FeedConfig) (*RevocationFeed, error) {
	if cfg.Conn == nil || cfg.Signer == nil {
		return nil, errors.New("twin: revocation feed needs a connection and a signer")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "zr"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Memory <= 0 {
		cfg.Memory = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &RevocationFeed{cfg: cfg, subj: RevocationSubject(cfg.Prefix), revoked: map[string]time.Time{}, agents: map[string]time.Time{}, cancel: cancel, done: make(chan struct{})}
	// Sequence numbers start from the clock so that a restarted realm's
	// notices are never older than its previous run's.
	f.seq = Millis(cfg.Now()) * 1000
	if err := f.Restate(); err != nil {
		cancel()
		return nil, err
	}
	go f.loop(ctx)
	return f, nil
}

func (f *RevocationFeed) loop(ctx context.Context) {
	defer close(f.done)
	clock.Every(ctx, clock.Real{}, f.cfg.Heartbeat, func(context.Context) {
		if err := f.Restate(); err != nil {
			f.cfg.Logger.Warn("revocation heartbeat", "err", err)
		}
	})
}

// Revoke adds a session to the feed and publishes an incremental notice
// naming it at once; the following heartbeats repeat it.
func (f *RevocationFeed) Revoke(sessionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	f.revoked[sessionID] = now
	return f.sendLocked(RevocationNotice{At: Millis(now), Sessions: []string{sessionID}, Agents: []string{}})
}

// RevokeAgents adds what stops agents' grants (delegation, agent or owner
// ids; see RevocationNotice) to the feed and publishes an incremental
// notice naming them at once; the following heartbeats repeat them.
func (f *RevocationFeed) RevokeAgents(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	for _, id := range ids {
		f.agents[id] = now
	}
	return f.sendLocked(RevocationNotice{At: Millis(now), Sessions: []string{}, Agents: ids})
}

// RememberAgents adds ids to the feed without a notice of their own: the
// next heartbeat names them. A realm node told by another of a
// revocation, which that node published at once, repeats it so, in case
// a gateway missed the first notice.
func (f *RevocationFeed) RememberAgents(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	for _, id := range ids {
		f.agents[id] = now
	}
}

// Restate publishes a complete notice now, as the heartbeat does: every
// session revoked within the feed's memory. A gateway that reconnected
// accepts grants again only after one.
func (f *RevocationFeed) Restate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	n := RevocationNotice{At: Millis(now), Complete: true, Sessions: f.remembered(f.revoked, now), Agents: f.remembered(f.agents, now)}
	return f.sendLocked(n)
}

// remembered forgets what was revoked longer ago than the feed's memory
// and lists the rest, sorted.
func (f *RevocationFeed) remembered(revoked map[string]time.Time, now time.Time) []string {
	ids := make([]string, 0, len(revoked))
	for id, at := range revoked {
		if now.Sub(at) > f.cfg.Memory {
			delete(revoked, id)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sendLocked numbers, signs and publishes a notice. It runs under mu so
// that notices leave in the order of their sequence numbers: a gateway
// ignores a complete notice older than one it has seen.
func (f *RevocationFeed) sendLocked(n RevocationNotice) error {
	f.seq++
	n.Seq = f.seq
	if err := f.cfg.Conn.Publish(f.subj, f.cfg.Signer.SignNotice(n).Encode()); err != nil {
		return fmt.Errorf("twin: publish revocation notice: %w", err)
	}
	return nil
}

// Close stops the heartbeat. Gateways will treat the feed as stale.
func (f *RevocationFeed) Close() {
	f.cancel()
	<-f.done
}

// KeyRotation announces the realm's next grant key, signed by the key it
// replaces, so a gateway that pins the previous key can trust the next.
type KeyRotation struct {
	Previous common.Address `json:"previous"`
	Next     common.Address `json:"next"`
	At       uint64         `json:"at"`
}

// Digest is the rotation's EIP-712 signing hash.
func (k *KeyRotation) Digest() common.Hash {
	return eip712.New(rotationTypeHash).Address(k.Previous).Address(k.Next).Uint64(k.At).Digest(domainSeparator)
}

// SignedRotation is a rotation signed by its Previous key.
type SignedRotation struct {
	Rotation  KeyRotation
	Signature Signature
}

type signedRotationWire struct {
	Rotation  KeyRotation `json:"rotation"`
	Signature string      `json:"signature"`
}

// SignRotation has the current key s announce next.
func (s *Signer) SignRotation(next common.Address, at time.Time) SignedRotation {
	k := KeyRotation{Previous: s.addr, Next: next, At: Millis(at)}
	return SignedRotation{Rotation: k, Signature: s.sign(k.Digest())}
}

// Encode writes the wire form.
func (sr SignedRotation) Encode() []byte {
	b, _ := json.Marshal(signedRotationWire{Rotation: sr.Rotation, Signature: sr.Signature.Hex()})
	return b
}

// DecodeSignedRotation parses a rotation and checks that its Previous key
// signed it.
func DecodeSignedRotation(data []byte) (SignedRotation, error) {
	if len(data) > MaxGrantBytes {
		return SignedRotation{}, fmt.Errorf("%w: rotation is %d bytes", ErrInvalidGrant, len(data))
	}
	var w signedRotationWire
	if err := decodeStrict(data, &w); err != nil {
		return SignedRotation{}, fmt.Errorf("%w: rotation: %s", ErrInvalidGrant, err)
	}
	sig, err := ParseSignature(w.Signature)
	if err != nil {
		return SignedRotation{}, err
	}
	sr := SignedRotation{Rotation: w.Rotation, Signature: sig}
	signer, err := recoverSigner(sr.Rotation.Digest(), sig)
	if err != nil {
		return SignedRotation{}, err
	}
	if signer != sr.Rotation.Previous {
		return SignedRotation{}, fmt.Errorf("%w: rotation signed by %s, not by the previous key %s", ErrInvalidGrant, signer, sr.Rotation.Previous)
	}
	return sr, nil
}
