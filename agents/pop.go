package agents

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/internal/replaywindow"
	"github.com/zerorealm/zerorealm/internal/strictjson"
)

// Proof of possession is RFC 9449 DPoP: with every request the agent sends
// a JWS (compact, typ "dpop+jwt") signed by the key its delegation's leaf
// names, over the request's method and URL, the time, a nonce this node
// issued, and the SHA-256 of the delegation token (ath). Only EdDSA over
// Ed25519 (RFC 8037) is accepted: agents' keys are Ed25519, and one
// algorithm leaves no algorithm to confuse.

// Bounds on a proof, so that parsing one costs little whatever is sent.
const (
	MaxProofLen = 2048
	maxJTILen   = 128
)

// ProofHeader and ProofClaims are the parts of a DPoP proof the realm
// reads.
type proofHeader struct {
	Typ  string   `json:"typ"`
	Alg  string   `json:"alg"`
	JWK  proofJWK `json:"jwk"`
	Crit []string `json:"crit,omitempty"`
}

type proofJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	D   string `json:"d,omitempty"` // present only in a private key: refused
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce,omitempty"`
}

// parseProofHeader reads a proof's header: its type, algorithm and public
// key.
func parseProofHeader(h64 string) (ed25519.PublicKey, error) {
	var h proofHeader
	if err := decodeSegment(h64, &h); err != nil {
		return nil, deny(ReasonProof, "DPoP header: %v", err)
	}
	switch {
	case h.Typ != "dpop+jwt":
		return nil, deny(ReasonProof, "DPoP header typ %.30q: want dpop+jwt", h.Typ)
	case h.Alg != "EdDSA":
		return nil, deny(ReasonProof, "DPoP header alg %.30q: want EdDSA (Ed25519)", h.Alg)
	case len(h.Crit) > 0:
		return nil, deny(ReasonProof, "DPoP header names critical extensions this realm does not know")
	case h.JWK.D != "":
		return nil, deny(ReasonProof, "DPoP header jwk holds a private key")
	case h.JWK.Kty != "OKP" || h.JWK.Crv != "Ed25519":
		return nil, deny(ReasonProof, "DPoP header jwk: want kty OKP, crv Ed25519")
	}
	key, ok := decodeAgentKey(h.JWK.X)
	if !ok {
		return nil, deny(ReasonProof, "DPoP header jwk x: want 32 bytes, base64url without padding")
	}
	return key, nil
}

// Proof is a parsed DPoP proof whose signature verified against the key in
// its own header. That says only that the sender holds that key; Verify
// binds it to a delegation and a request.
type Proof struct {
	Key   ed25519.PublicKey
	JTI   string
	HTM   string
	HTU   string
	IAT   time.Time
	ATH   string
	Nonce string
}

// ParseProof reads a compact JWS DPoP proof and checks its signature with
// the key in its header. Every error is a *DenyError (ReasonProof).
func ParseProof(s string) (*Proof, error) {
	return parseProof(s, func(h64 string) (verifyKey, error) {
		k, err := parseProofHeader(h64)
		return newVerifyKey(k), err
	})
}

// parseProof is ParseProof with the header read by header.
func parseProof(s string, header func(h64 string) (verifyKey, error)) (*Proof, error) {
	if len(s) == 0 {
		return nil, deny(ReasonProof, "no DPoP proof: send one in the DPoP header")
	}
	if len(s) > MaxProofLen {
		return nil, deny(ReasonProof, "DPoP proof of %d bytes: at most %d", len(s), MaxProofLen)
	}
	h64, rest, ok1 := strings.Cut(s, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, deny(ReasonProof, "DPoP proof: want a compact JWS (header.claims.signature)")
	}
	key, err := header(h64)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, deny(ReasonProof, "DPoP signature: want 64 bytes, base64url without padding")
	}
	if !key.verify([]byte(s[:len(h64)+1+len(c64)]), sig) {
		return nil, deny(ReasonProof, "DPoP signature does not verify with the key in its header")
	}
	c, err := decodeClaims(c64)
	if err != nil {
		return nil, deny(ReasonProof, "DPoP claims: %v", err)
	}
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTILen:
		return nil, deny(ReasonProof, "DPoP jti: want 1 to %d characters", maxJTILen)
	case c.HTM == "" || c.HTU == "" || c.IAT <= 0:
		return nil, deny(ReasonProof, "DPoP claims htm, htu and iat are required")
	case c.ATH == "":
		return nil, deny(ReasonProof, "DPoP ath is required: the proof must name the delegation token")
	}
	return &Proof{Key: key.pub, JTI: c.JTI, HTM: c.HTM, HTU: c.HTU, IAT: time.Unix(c.IAT, 0), ATH: c.ATH, Nonce: c.Nonce}, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url without padding")
	}
	return decodeJSON(raw, v)
}

// decodeJSON is the strict read of a segment's JSON: one object, checked
// by strictjson, then decoded by encoding/json.
func decodeJSON(raw []byte, v any) error {
	if err := strictjson.Check(raw); err != nil {
		return err
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	return json.Unmarshal(raw, v)
}

// decodeClaims reads a proof's claims. The claims of every proof are new,
// so they cannot be remembered as the header is; most are written as
// NewProof and the agent SDKs write them (one flat object, no white space,
// each claim once, strings of plain ASCII with nothing escaped, iat a
// plain number), and those are read by a scan of the text (claimsFast).
// Whatever that scan does not take in full goes to decodeSegment, the
// strict check and encoding/json, which decides it: the scan never
// refuses and never accepts anything decodeSegment would not read the
// same (FuzzDecodeClaims compares the two).
func decodeClaims(c64 string) (proofClaims, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(c64)
	if err != nil {
		return proofClaims{}, fmt.Errorf("not base64url without padding")
	}
	if c, ok := claimsFast(raw); ok {
		return c, nil
	}
	var c proofClaims
	return c, decodeJSON(raw, &c)
}

// claimsFast reads claims in the plain form decodeClaims describes, or
// reports false.
func claimsFast(raw []byte) (proofClaims, bool) {
	var c proofClaims
	var seen [6]bool
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return c, false
	}
	rest := raw[1 : len(raw)-1]
	if len(rest) == 0 {
		return c, true
	}
	for {
		name, r, ok := plainString(rest)
		if !ok || len(r) == 0 || r[0] != ':' {
			return c, false
		}
		r = r[1:]
		var field *string
		slot := -1
		switch name {
		case "jti":
			field, slot = &c.JTI, 0
		case "htm":
			field, slot = &c.HTM, 1
		case "htu":
			field, slot = &c.HTU, 2
		case "ath":
			field, slot = &c.ATH, 3
		case "nonce":
			field, slot = &c.Nonce, 4
		case "iat":
			slot = 5
		default:
			// Another member (encoding/json ignores it, or matches it
			// to a claim regardless of case): the strict path decides.
			return c, false
		}
		if seen[slot] {
			return c, false
		}
		seen[slot] = true
		if field != nil {
			v, r2, ok := plainString(r)
			if !ok {
				return c, false
			}
			*field, r = v, r2
		} else {
			n := 0
			for n < len(r) && '0' <= r[n] && r[n] <= '9' {
				n++
			}
			// 1 to 18 digits, no leading zero: an int64, as encoding/json
			// reads it.
			if n == 0 || n > 18 || r[0] == '0' && n > 1 {
				return c, false
			}
			iat, err := strconv.ParseInt(string(r[:n]), 10, 64)
			if err != nil {
				return c, false
			}
			c.IAT, r = iat, r[n:]
		}
		if len(r) == 0 {
			return c, true
		}
		if r[0] != ',' {
			return c, false
		}
		rest = r[1:]
	}
}

// plainString reads a JSON string at the start of b made of printable
// ASCII with no escape, and returns it and what follows.
func plainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", nil, false
		}
	}
	return "", nil, false
}

// TokenHash is the ath of a proof for token: base64url(SHA-256(token)).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewProof is what an agent sends with a request: a DPoP proof over
// method and rawURL (its query and fragment are not part of the proof),
// bound to token and to the node's nonce ("" before the node gave one).
func NewProof(key ed25519.PrivateKey, method, rawURL, token, nonce string, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("agents: proof URL: %w", err)
	}
	u.RawQuery, u.Fragment = "", ""
	var jti [16]byte
	randRead(jti[:])
	h, err := json.Marshal(proofHeader{Typ: "dpop+jwt", Alg: "EdDSA", JWK: proofJWK{Kty: "OKP", Crv: "Ed25519", X: EncodeAgentKey(key.Public().(ed25519.PublicKey))}})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(proofClaims{JTI: hex.EncodeToString(jti[:]), HTM: method, HTU: u.String(), IAT: now.Unix(), ATH: TokenHash(token), Nonce: nonce})
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing))), nil
}

// ProofConfig configures a ProofVerifier. Zero values are the defaults.
type ProofConfig struct {
	// Skew is how far a proof's iat may be from the verifier's clock,
	// either way. Default 30 s: a proof is made for one request, now.
	Skew time.Duration
	// NonceLifetime is how long a nonce this node issued is accepted.
	// Default 5 min.
	NonceLifetime time.Duration
	// NoNonce accepts proofs without a nonce. Then a proof replayed to
	// another realm node within Skew is not caught (each node keeps its
	// own replay cache); with nonces a proof is good only at the node
	// that issued its nonce, whose cache has seen it.
	NoNonce bool
	// MaxRemembered bounds the replay cache. When it is full of proofs
	// that could still be replayed, new proofs are refused (the cache
	// fails closed rather than forget). Default 1<<20 (about 40 MiB).
	MaxRemembered int
}

// ProofVerifier checks DPoP proofs for one realm node: their binding to
// the request and the delegation, their time, the node's nonce, and that
// no proof is used twice. Safe for concurrent use.
type ProofVerifier struct {
	cfg      ProofConfig
	nonceKey [32]byte
	node     [8]byte // tags this node's nonces

	// headers are proof headers read before, by their base64url form,
	// with their key's point decoded (verifyKey): an agent's proofs all
	// carry the same header, so each request is spared both decodings
	// (never its signature check). nonces are this node's nonces whose
	// MAC verified, with the time they were issued.
	headers *memo[verifyKey]
	nonces  *memo[time.Time]

	// seen holds the proofs accepted for 2·Skew at least, which covers
	// every time a proof could be accepted.
	seen *replaywindow.Window
}

// NewProofVerifier makes a verifier with a fresh random nonce key: nonces
// are only ever checked by the node that issued them.
func NewProofVerifier(cfg ProofConfig) *ProofVerifier {
	if cfg.Skew <= 0 {
		cfg.Skew = 30 * time.Second
	}
	if cfg.NonceLifetime <= 0 {
		cfg.NonceLifetime = 5 * time.Minute
	}
	if cfg.MaxRemembered <= 0 {
		cfg.MaxRemembered = 1 << 20
	}
	v := &ProofVerifier{cfg: cfg, seen: replaywindow.New(2*cfg.Skew, cfg.MaxRemembered),
		headers: newMemo[verifyKey](memoSize), nonces: newMemo[time.Time](memoSize)}
	randRead(v.nonceKey[:])
	randRead(v.node[:])
	return v
}

// Nonce returns a nonce for the DPoP-Nonce response header: the node's
// tag, the time, and a MAC of both.
func (v *ProofVerifier) Nonce(now time.Time) string {
	var b [8 + 8 + 16]byte
	copy(b[:8], v.node[:])
	binary.BigEndian.PutUint64(b[8:16], uint64(now.Unix()))
	copy(b[16:], v.nonceMAC(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (v *ProofVerifier) nonceMAC(msg []byte) []byte {
	m := hmac.New(sha256.New, v.nonceKey[:])
	m.Write([]byte("zerorealm dpop nonce\n"))
	m.Write(msg)
	return m.Sum(nil)[:16]
}

func (v *ProofVerifier) checkNonce(nonce string, now time.Time) error {
	if v.cfg.NoNonce && nonce == "" {
		return nil
	}
	issued, ok := v.nonces.get(nonce)
	if !ok {
		b, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
		if err != nil || len(b) != 32 || !hmac.Equal(b[16:], v.nonceMAC(b[:16])) {
			return deny(ReasonNonce, "use the nonce in this response's DPoP-Nonce header")
		}
		issued = time.Unix(int64(binary.BigEndian.Uint64(b[8:16])), 0)
		v.nonces.put(nonce, issued)
	}
	if now.Sub(issued) > v.cfg.NonceLifetime || issued.Sub(now) > v.cfg.Skew {
		return deny(ReasonNonce, "the nonce has expired: use the one in this response's DPoP-Nonce header")
	}
	return nil
}

// ProofRequest is what a request presents: its method and URL as the
// realm serves it (scheme and host of the realm's public URL), the
// delegation token and the DPoP proof.
type ProofRequest struct {
	Method string
	URL    string
	Token  string
	Proof  string
}

// Verify checks that req's proof is signed by key (the delegation leaf's
// holder), for this method, URL and token, now, with this node's nonce,
// and never seen before. It remembers the proof only when everything else
// holds, so a bad proof cannot burn a good one's id.
func (v *ProofVerifier) Verify(req ProofRequest, key ed25519.PublicKey, now time.Time) (*Proof, error) {
	return v.verify(req, key, TokenHash(req.Token), now)
}

// verify is Verify with the token's hash given (a verified chain keeps
// its own).
func (v *ProofVerifier) verify(req ProofRequest, key ed25519.PublicKey, ath string, now time.Time) (*Proof, error) {
	p, err := parseProof(req.Proof, v.header)
	if err != nil {
		return nil, err
	}
	if !p.Key.Equal(key) {
		return nil, deny(ReasonProofBinding, "the proof is signed by %s, the delegation is held by %s", AgentID(p.Key), AgentID(key))
	}
	if !hmac.Equal([]byte(p.ATH), []byte(ath)) {
		return nil, deny(ReasonProofBinding, "the proof's ath is not the hash of this delegation token")
	}
	if p.HTM != req.Method {
		return nil, deny(ReasonProofBinding, "the proof is for method %.10q, the request is %s", p.HTM, req.Method)
	}
	if !sameHTU(p.HTU, req.URL) {
		return nil, deny(ReasonProofBinding, "the proof is for %.100q, not this URL", p.HTU)
	}
	if d := now.Sub(p.IAT); d > v.cfg.Skew || -d > v.cfg.Skew {
		return nil, deny(ReasonProofStale, "the proof was made at %s, more than %s from now", p.IAT.UTC().Format(time.RFC3339), v.cfg.Skew)
	}
	if err := v.checkNonce(p.Nonce, now); err != nil {
		return nil, err
	}
	if err := v.remember(p, now); err != nil {
		return nil, err
	}
	return p, nil
}

// header is parseProofHeader, remembered with the key's decoded point
// for headers that were read without error (the same text always reads
// the same).
func (v *ProofVerifier) header(h64 string) (verifyKey, error) {
	if k, ok := v.headers.get(h64); ok {
		return k, nil
	}
	pub, err := parseProofHeader(h64)
	if err != nil {
		return verifyKey{}, err
	}
	k := newVerifyKey(pub)
	v.headers.put(h64, k)
	return k, nil
}

// memoSize bounds each of a verifier's memos: about the number of agents
// (headers) and of nonces (one a second per node, for their lifetime)
// that are current at once; past it a memo starts again empty.
const memoSize = 4096

// memo is a bounded map of results computed from a string, for reuse by
// concurrent requests.
type memo[V any] struct {
	mu  sync.RWMutex
	m   map[string]V
	max int
}

func newMemo[V any](max int) *memo[V] { return &memo[V]{m: map[string]V{}, max: max} }

func (m *memo[V]) get(k string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[k]
	return v, ok
}

func (m *memo[V]) put(k string, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= m.max {
		clear(m.m)
	}
	m.m[k] = v
}

// remember records the proof's id for its key, refusing one seen before.
func (v *ProofVerifier) remember(p *Proof, now time.Time) error {
	// SHA-256 of the key and the jti (at most maxJTILen bytes), hashed
	// from one buffer on the stack.
	var buf [ed25519.PublicKeySize + maxJTILen]byte
	sum := sha256.Sum256(append(append(buf[:0], p.Key...), p.JTI...))
	var id replaywindow.ID
	copy(id[:], sum[:])
	switch v.seen.Add(id, now) {
	case replaywindow.Repeated:
		return deny(ReasonReplay, "proof %.40q was used before", p.JTI)
	case replaywindow.Full:
		return deny(ReasonReplay, "too many recent proofs to check this one against replay; retry shortly")
	}
	return nil
}

// sameHTU compares a proof's htu with the request URL as RFC 9449 4.3
// asks: without query and fragment, scheme and host case-insensitive,
// default ports dropped, an empty path as "/".
func sameHTU(htu, reqURL string) bool {
	if htu == reqURL {
		// The same text: one parse says whether it is a URL a proof may
		// name.
		u, err := url.Parse(htu)
		return err == nil && u.Opaque == "" && u.User == nil
	}
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(reqURL)
	if err1 != nil || err2 != nil || a.Opaque != "" || b.Opaque != "" || a.User != nil {
		return false
	}
	return normHTU(a) == normHTU(b)
}

func normHTU(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else if scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}
