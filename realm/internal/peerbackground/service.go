package peerbackground

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/notekey"
	"github.com/zerorealm/zerorealm/internal/replaywindow"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Engine is the node's biometric engine, as the exchange uses it.
type Engine interface {
	SharePopulation(minPeople int) (*biometrics.Background, []string, error)
	SetPeerBackground(peer string, b *biometrics.Background) error
}

// Auditor records the exchange's decisions in the audit log.
type Auditor interface {
	AllowQueued(req *http.Request, actor, action, resource, reason string, signals map[string]any)
	DenyQueued(req *http.Request, actor, action, resource string, cause error)
}

// Deps is what the exchange needs from the rest of the realm.
type Deps struct {
	Log *slog.Logger
	// Realm is this realm's name, its WebAuthn RP id; Node this node's.
	Realm, Node string
	// Seed is the node's background key seed: assets.DeriveSeed of its
	// ring's active key with assets.BackgroundKeyLabel. PreviousSeed,
	// when set, is the same of the key before it: the node signs with
	// both, as it does its audit checkpoints, so that a realm that pinned
	// the old key still takes its notes after a rotation.
	Seed, PreviousSeed []byte
	// RealmSeed is the realm's background key seed, the same on every
	// node (biometrics.ExchangeSeed of the cluster's template key); nil
	// signs with the node's keys only. Notes are signed with it first,
	// so that a peer pins one key for every node the realm runs.
	RealmSeed []byte
	// RetiredRealmSeeds are the realm's seeds of the template keys a
	// rotation retired: notes are signed with them too, under the same
	// name, so that a peer that pinned the realm's key before the
	// rotation takes them until it pins the new one.
	RetiredRealmSeeds [][]byte
	Engine            Engine
	// Store keeps the people of the realm's last share (SharesBucket),
	// which every node of the realm shares against.
	Store *store.Store
	Audit Auditor
	// Registry, when set, takes the exchange's metrics.
	Registry prometheus.Registerer
	// Client fetches peers; nil is a client with a 30 s timeout.
	Client *http.Client
	// Clock dates requests and shares; nil is the system's.
	Clock clock.Clock
}

// Service is one node's side of the exchange: it answers readers
// (API) and fetches its peers (Run).
type Service struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	signers []note.Signer // the realm's, the active key's, then the previous key's
	// keyNames are the names a share may be for: the realm's key and
	// this node's, whichever the peer took the request by.
	keyNames  []string
	vkey      string
	realmVkey string
	readers   note.Verifiers
	peers     []*peer
	shares    *store.Bucket
	m         *metrics

	// seen holds the requests answered for 2·Skew at least, by reader
	// and nonce: a request sent again within its freshness is refused.
	seen *replaywindow.Window
}

// peer is a configured peer and what this node knows of it.
type peer struct {
	url       string
	realm     string
	verifiers note.Verifiers
}

// Skew is how far a request's or a share's time may be from this node's
// clock: wide enough for clocks kept by NTP, narrow enough that a request
// seen on the wire is of no use a little later.
const Skew = 2 * time.Minute

// New prepares the node's side of the exchange and declares its bucket;
// Config must have passed Problems.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if p := Problems(cfg); len(p) > 0 {
		return nil, fmt.Errorf("peerbackground: %s", p[0])
	}
	if deps.Engine == nil || deps.Audit == nil || deps.Log == nil || deps.Store == nil {
		return nil, errors.New("peerbackground: Engine, Store, Audit and Log are required")
	}
	shares, err := deps.Store.Bucket(ctx, store.BucketConfig{Name: SharesBucket, Sealed: true, LeaderReads: true})
	if err != nil {
		return nil, fmt.Errorf("peerbackground: %w", err)
	}
	var signers []note.Signer
	var keyNames []string
	var realmVkey string
	if deps.RealmSeed != nil {
		signer, vkey, err := notekey.Signer(RealmKeyName(deps.Realm), deps.RealmSeed)
		if err != nil {
			return nil, fmt.Errorf("peerbackground: realm background key: %w", err)
		}
		signers, keyNames, realmVkey = append(signers, signer), append(keyNames, RealmKeyName(deps.Realm)), vkey
		for _, seed := range deps.RetiredRealmSeeds {
			retired, _, err := notekey.Signer(RealmKeyName(deps.Realm), seed)
			if err != nil {
				return nil, fmt.Errorf("peerbackground: retired realm background key: %w", err)
			}
			signers = append(signers, retired)
		}
	}
	name := KeyName(deps.Realm, deps.Node)
	signer, vkey, err := notekey.Signer(name, deps.Seed)
	if err != nil {
		return nil, fmt.Errorf("peerbackground: background key: %w", err)
	}
	signers, keyNames = append(signers, signer), append(keyNames, name)
	if deps.PreviousSeed != nil {
		previous, pvkey, err := notekey.Signer(name, deps.PreviousSeed)
		if err != nil {
			return nil, fmt.Errorf("peerbackground: previous background key: %w", err)
		}
		if pvkey != vkey {
			signers = append(signers, previous)
		}
	}
	cfg = cfg.withDefaults()
	s := &Service{
		cfg: cfg, deps: deps, log: deps.Log.With("component", "background-exchange"),
		signers: signers, keyNames: keyNames, vkey: vkey, realmVkey: realmVkey, shares: shares,
		seen: replaywindow.New(2*Skew, maxSeen),
	}
	s.deps.Clock = clock.Or(deps.Clock)
	if s.deps.Client == nil {
		s.deps.Client = &http.Client{Timeout: 30 * time.Second}
	}
	var readers []note.Verifier
	for _, k := range cfg.Readers {
		v, _ := verifierOf(k) // checked by Problems
		readers = append(readers, v)
	}
	s.readers = note.VerifierList(readers...)
	for _, p := range cfg.Peers {
		realm, _ := realmOfKeys(p.Keys) // checked by Problems
		if realm == deps.Realm {
			return nil, fmt.Errorf("peerbackground: background peer %s: its keys name this realm (%q), whose people would count twice", p.URL, realm)
		}
		var vs []note.Verifier
		for _, k := range p.Keys {
			v, _ := verifierOf(k)
			vs = append(vs, v)
		}
		s.peers = append(s.peers, &peer{url: strings.TrimRight(p.URL, "/"), realm: realm, verifiers: note.VerifierList(vs...)})
	}
	s.m = newMetrics(deps.Registry, s.peers)
	return s, nil
}

// VerifierKey is this node's background verifier key.
func (s *Service) VerifierKey() string { return s.vkey }

// RealmVerifierKey is the realm's background verifier key, the same on
// every node, the one peers pin ("" without Deps.RealmSeed).
func (s *Service) RealmVerifierKey() string { return s.realmVkey }

type metrics struct {
	requests *prometheus.CounterVec
	fetches  *prometheus.CounterVec
	people   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, peers []*peer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_biometrics_background_requests_total",
			Help: "Requests other realms made for this node's background statistics, by outcome: shared, refused (the request was not from a reader, not for this realm, stale or replayed, or came too often) or too-few (this node knows fewer people than it may share).",
		}, []string{"outcome"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_biometrics_peer_fetches_total",
			Help: "Fetches of a peer realm's background statistics, by peer realm and outcome: ok, refused (an answer this node cannot trust: not signed by a pinned key, not for this request, or statistics no population gives) or failed (no answer, or no share in it).",
		}, []string{"peer", "outcome"}),
		people: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zerorealm_biometrics_peer_people",
			Help: "People in the background statistics this node uses from each peer realm; 0 while it uses none of that peer's.",
		}, []string{"peer"}),
	}
	for _, outcome := range []string{"shared", "refused", "too-few"} {
		m.requests.WithLabelValues(outcome)
	}
	for _, p := range peers {
		m.fetches.WithLabelValues(p.realm, "ok")
		m.fetches.WithLabelValues(p.realm, "failed")
		m.people.WithLabelValues(p.realm).Set(0)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.fetches, m.people)
	}
	return m
}
