package realm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// Files of the twin feature in the data directory.
const (
	// TwinKeyFile is where earlier versions kept the realm's grant key
	// (keystore v3, empty passphrase, mode 0600). A node imports it into
	// its key ring at start and removes it; the ring's key signs grants.
	TwinKeyFile = "twin-grant-key.json"
	// TwinGatewaysFile lists the enrolled gateways: their twin, public
	// nkey and acknowledgement key address.
	TwinGatewaysFile = "twin-gateways.json"
)

// twinHub is the realm's digital-twin control: the registry, the checks
// before policy, the grant dispatcher, the revocation feed to gateways,
// the approvals queue and the console feed. In embedded mode it also runs a
// simulated gateway for every twin that has no enrolled one.
type twinHub struct {
	reg     *twin.Registry
	sceneOf map[string]*scenes.Scene
	// entities are the Cedar entities of each scene with twins, converted
	// once: scenes do not change while the realm runs, and building and
	// converting them for every command was a tenth of its CPU and over a
	// third of its allocations.
	entities map[*scenes.Scene]*policy.Entities
	guard    *twin.Guard
	signer   *twin.Signer
	disp     *twin.Dispatcher
	feed     *twin.RevocationFeed
	enrolled []EnrolledGateway

	// sims are the simulated gateways' credentials, made before the
	// embedded server starts so it can admit them.
	sims map[string]nkeys.KeyPair

	keysMu  sync.RWMutex
	keys    map[string]common.Address // twin => gateway acknowledgement key
	keyHexs map[string]string         // twin => its key's checksummed hex, for answers

	signerHex string // the grant key's checksummed hex, for answers

	approvals *store.Bucket
	results   *store.Bucket
	console   *consoleHub

	gateways  []*gateway.Gateway
	conns     []*nats.Conn
	telemetry *nats.Subscription
}

// EnrolledGateway is one entry of TwinGatewaysFile.
type EnrolledGateway struct {
	Twin    string         `json:"twin"`
	NKey    string         `json:"nkey"`
	Address common.Address `json:"address"`
	At      time.Time      `json:"enrolled_at"`
}

// twinsOf converts the scenes' twins to the registry's plain values.
func twinsOf(cat *scenes.Catalog) ([]twin.Twin, map[string]*scenes.Scene) {
	var out []twin.Twin
	sceneOf := map[string]*scenes.Scene{}
	for _, sc := range cat.Scenes() {
		for _, t := range sc.Twins {
			tw := twin.Twin{ID: t.ID, Name: t.Name, Scene: sc.ID, Zone: t.Zone}
			for _, a := range t.Actuators {
				tw.Actuators = append(tw.Actuators, twin.Actuator{ID: a.ID, Name: a.Name, Unit: a.Unit, Min: a.Min, Max: a.Max, MaxRate: a.MaxRate, Risk: twin.Risk(a.Risk)})
			}
			out = append(out, tw)
			sceneOf[t.ID] = sc
		}
	}
	return out, sceneOf
}

// prepareTwins builds the registry and the gateway credentials the NATS
// server must know before it starts. It runs after the scenes load.
func (r *Realm) prepareTwins() error {
	all, sceneOf := twinsOf(r.catalog)
	reg, err := twin.NewRegistry(all)
	if err != nil {
		return fmt.Errorf("realm: twins: %w", err)
	}
	enrolled, err := ReadEnrolledGateways(r.cfg.DataDir)
	if err != nil {
		return err
	}
	h := &twinHub{reg: reg, sceneOf: sceneOf, entities: map[*scenes.Scene]*policy.Entities{}, enrolled: enrolled, sims: map[string]nkeys.KeyPair{}, keys: map[string]common.Address{}, keyHexs: map[string]string{}, console: newConsoleHub()}
	for _, sc := range sceneOf {
		// A scene whose entities do not convert is left out: its commands
		// then convert them each time, and are denied with the reason.
		if e, err := policy.NewEntities(sc.Entities()); err == nil {
			h.entities[sc] = e
		} else {
			r.log.Warn("scene entities are not valid Cedar; its commands will be denied", "scene", sc.ID, "err", err)
		}
	}
	for _, e := range enrolled {
		h.setGatewayKey(e.Twin, e.Address)
	}
	if len(r.cfg.NATS) == 0 {
		for _, t := range reg.Twins() {
			if _, ok := h.keys[t.ID]; ok {
				continue
			}
			kp, err := nkeys.CreateUser()
			if err != nil {
				return fmt.Errorf("realm: simulated gateway key: %w", err)
			}
			h.sims[t.ID] = kp
		}
	}
	r.twins = h
	return nil
}

// twinNATSUsers are the gateways the embedded server admits, each confined
// to its twin: the enrolled ones and this run's simulated ones.
func (r *Realm) twinNATSUsers() []natsembed.GatewayUser {
	if r.twins == nil {
		return nil
	}
	var users []natsembed.GatewayUser
	for _, e := range r.twins.enrolled {
		users = append(users, natsembed.GatewayUser{Twin: e.Twin, NKey: e.NKey})
	}
	for id, kp := range r.twins.sims {
		pub, _ := kp.PublicKey()
		users = append(users, natsembed.GatewayUser{Twin: id, NKey: pub})
	}
	return users
}

// natsClientListen is where the embedded server opens its TCP port: only
// when an enrolled gateway will connect through it. Simulated gateways
// connect in-process, and nothing else has any business there.
func (r *Realm) natsClientListen() string {
	if r.twins == nil || len(r.twins.enrolled) == 0 {
		return ""
	}
	return r.cfg.NATSListen
}

func (h *twinHub) gatewayKey(twinID string) (common.Address, bool) {
	h.keysMu.RLock()
	defer h.keysMu.RUnlock()
	a, ok := h.keys[twinID]
	return a, ok
}

// gatewayKeyHex is gatewayKey as answers show it, or "" if none.
func (h *twinHub) gatewayKeyHex(twinID string) string {
	h.keysMu.RLock()
	defer h.keysMu.RUnlock()
	return h.keyHexs[twinID]
}

func (h *twinHub) setGatewayKey(twinID string, a common.Address) {
	h.keysMu.Lock()
	defer h.keysMu.Unlock()
	h.keys[twinID], h.keyHexs[twinID] = a, a.Hex()
}

// startTwins runs after sessions and step-ups: it loads the grant key,
// starts the revocation feed, follows telemetry and starts the simulated
// gateways.
func (r *Realm) startTwins(ctx context.Context, bg context.Context) error {
	h := r.twins
	key, err := r.nodeKey()
	if err != nil {
		return err
	}
	// The node's own ring key signs its grants and notices, so each node's
	// notices carry its own sequence numbers.
	if h.signer, err = twin.NewSigner(key); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	h.signerHex = h.signer.Address().Hex()
	if h.guard, err = twin.NewGuard(h.reg, twin.GuardConfig{}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if h.approvals, err = r.store.Bucket(ctx, store.BucketConfig{Name: "twin-approvals", TTL: approvalTTL, Sealed: true}); err != nil {
		return fmt.Errorf("realm: approvals: %w", err)
	}
	if h.results, err = r.store.Bucket(ctx, store.BucketConfig{Name: "twin-commands", TTL: idempotencyTTL, Sealed: true}); err != nil {
		return fmt.Errorf("realm: command results: %w", err)
	}
	if h.feed, err = twin.StartRevocationFeed(twin.FeedConfig{Conn: r.nc, Prefix: r.cfg.Prefix, Signer: h.signer, Logger: r.log}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if h.disp, err = twin.NewDispatcher(twin.DispatcherConfig{Conn: r.nc, Prefix: r.cfg.Prefix, Signer: h.signer, GatewayKey: h.gatewayKey, Logger: r.log, Tracer: r.tracer}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if h.telemetry, err = twin.FollowTelemetry(r.nc, r.cfg.Prefix, h.reg, h.gatewayKey, h.console.state); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	revocations, err := r.sessions.Revocations(bg)
	if err != nil {
		return fmt.Errorf("realm: revocation feed for gateways: %w", err)
	}
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		for rev := range revocations {
			if err := h.feed.Revoke(rev.SessionID); err != nil {
				r.log.Warn("publish revocation to gateways", "session", rev.SessionID, "err", err)
			}
		}
	}()
	for id, kp := range h.sims {
		if err := r.startSimulatedGateway(ctx, id, kp); err != nil {
			return err
		}
	}
	r.startGrantKeyAnnouncements(bg)
	r.log.Info("twins ready", "twins", len(h.reg.Twins()), "simulated_gateways", len(h.sims), "enrolled_gateways", len(h.enrolled), "grant_key", h.signer.Address().Hex())
	return nil
}

func (r *Realm) startSimulatedGateway(ctx context.Context, twinID string, kp nkeys.KeyPair) error {
	h := r.twins
	t, _ := h.reg.Twin(twinID)
	pub, _ := kp.PublicKey()
	nc, err := r.embedded.ConnectInProcess("zerorealm-gateway-"+twinID, nats.Nkey(pub, kp.Sign))
	if err != nil {
		return fmt.Errorf("realm: simulated gateway %s: %w", twinID, err)
	}
	key, err := twin.GenerateSigner()
	if err != nil {
		nc.Close()
		return err
	}
	g, err := gateway.New(gateway.Config{
		Twin: twinID, Actuators: t.Actuators, Conn: nc, Prefix: r.cfg.Prefix,
		RealmKeys: []common.Address{h.signer.Address()}, Signer: key, Horizon: h.guard.Horizon(),
		Logger: r.log.With("component", "simulated-gateway"), Tracer: r.tracer,
	})
	if err == nil {
		err = g.Start(ctx)
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("realm: simulated gateway %s: %w", twinID, err)
	}
	h.setGatewayKey(twinID, key.Address())
	h.gateways = append(h.gateways, g)
	h.conns = append(h.conns, nc)
	return nil
}

// stopTwins stops the simulated gateways and the feed; gateways elsewhere
// then see the feed go stale and refuse everything, as they should.
func (r *Realm) stopTwins() {
	h := r.twins
	if h == nil {
		return
	}
	for _, g := range h.gateways {
		g.Close()
	}
	for _, nc := range h.conns {
		nc.Close()
	}
	if h.telemetry != nil {
		_ = h.telemetry.Unsubscribe()
	}
	if h.feed != nil {
		h.feed.Close()
	}
	h.console.closeAll()
}

// ReadEnrolledGateways reads TwinGatewaysFile; a missing file is no
// gateways.
func ReadEnrolledGateways(dataDir string) ([]EnrolledGateway, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, TwinGatewaysFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("realm: enrolled gateways: %w", err)
	}
	var doc struct {
		Gateways []EnrolledGateway `json:"gateways"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("realm: %s: %w", TwinGatewaysFile, err)
	}
	seen := map[string]bool{}
	for _, g := range doc.Gateways {
		if !twin.ValidID(g.Twin) || !nkeys.IsValidPublicUserKey(g.NKey) || g.Address == (common.Address{}) {
			return nil, fmt.Errorf("realm: %s: entry for twin %q needs a twin id, a public user nkey and an address", TwinGatewaysFile, g.Twin)
		}
		if seen[g.Twin] {
			return nil, fmt.Errorf("realm: %s: twin %s is enrolled twice; remove one entry", TwinGatewaysFile, g.Twin)
		}
		seen[g.Twin] = true
	}
	return doc.Gateways, nil
}

// GatewayCredentials is what `zerorealm gateway enroll` hands a gateway:
// everything it needs to connect, verify grants and sign its answers. It
// holds secrets; the file is written with mode 0600.
type GatewayCredentials struct {
	Twin      string           `json:"twin"`
	Prefix    string           `json:"prefix"`
	NATSURL   string           `json:"nats_url,omitempty"`
	NKeySeed  string           `json:"nkey_seed"`
	Key       string           `json:"key"` // hex secp256k1 private key for acknowledgements
	RealmKeys []common.Address `json:"realm_keys"`
	Actuators []twin.Actuator  `json:"actuators"`
}

// EnrollGateway issues a gateway's credentials for a twin of the realm's
// scenes and registers its public nkey and acknowledgement key in the data
// directory. A running realm admits it after a restart. Enrolling a twin
// again replaces its previous gateway.
//
// The gateway trusts the grant key of the node whose data directory this
// is (its key ring's active key, created if the ring is empty) and the
// grant keys of otherNodes, the realm's other nodes, as each one's
// `zerorealm keys export-public` prints them: every node signs grants with
// its own key, and the operator pins them all here, out of band, rather
// than letting a gateway learn keys from NATS.
func EnrollGateway(dataDir, scenesDir, prefix, twinID, natsURL string, otherNodes ...common.Address) (GatewayCredentials, error) {
	if prefix == "" {
		prefix = "zr"
	}
	var cat *scenes.Catalog
	var err error
	if scenesDir == "" {
		cat, err = scenes.LoadBuiltin()
	} else {
		cat, err = scenes.LoadDir(scenesDir)
	}
	if err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: scenes: %w", err)
	}
	all, _ := twinsOf(cat)
	reg, err := twin.NewRegistry(all)
	if err != nil {
		return GatewayCredentials{}, err
	}
	t, ok := reg.Twin(twinID)
	if !ok {
		return GatewayCredentials{}, fmt.Errorf("realm: no twin %q in the scenes", twinID)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: data dir: %w", err)
	}
	realmKeys, err := grantKeys(dataDir)
	if err != nil {
		return GatewayCredentials{}, err
	}
	for _, k := range otherNodes {
		if !slices.Contains(realmKeys, k) {
			realmKeys = append(realmKeys, k)
		}
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return GatewayCredentials{}, err
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	ack, err := twin.GenerateSigner()
	if err != nil {
		return GatewayCredentials{}, err
	}
	enrolled, err := ReadEnrolledGateways(dataDir)
	if err != nil {
		return GatewayCredentials{}, err
	}
	kept := enrolled[:0]
	for _, e := range enrolled {
		if e.Twin != twinID {
			kept = append(kept, e)
		}
	}
	kept = append(kept, EnrolledGateway{Twin: twinID, NKey: pub, Address: ack.Address(), At: time.Now().UTC()})
	data, _ := json.MarshalIndent(map[string]any{"gateways": kept}, "", "  ")
	path := filepath.Join(dataDir, TwinGatewaysFile)
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: write %s: %w", TwinGatewaysFile, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return GatewayCredentials{}, fmt.Errorf("realm: write %s: %w", TwinGatewaysFile, err)
	}
	return GatewayCredentials{
		Twin: twinID, Prefix: prefix, NATSURL: natsURL, NKeySeed: string(seed), Key: ack.HexKey(),
		RealmKeys: realmKeys, Actuators: t.Actuators,
	}, nil
}

// grantKeys are the grant keys of the node whose data directory this is,
// for a gateway to pin: the key ring's active key, and, when the node has
// not started since an earlier version, the grant key it will import
// (twin-grant-key.json) and announce the ring's key with. The ring is
// created (with ZR_KEY_PASSPHRASE) if the node has none yet.
func grantKeys(dataDir string) ([]common.Address, error) {
	var out []common.Address
	if _, err := os.Stat(filepath.Join(dataDir, TwinKeyFile)); err == nil {
		legacy, err := twin.LoadOrCreateKeyFile(filepath.Join(dataDir, TwinKeyFile), "")
		if err != nil {
			return nil, err
		}
		out = append(out, legacy.Address())
	}
	pass := os.Getenv("ZR_KEY_PASSPHRASE")
	if pass == "" {
		pass = assets.DevPassphrase
	}
	ring, err := assets.OpenKeyRing(filepath.Join(dataDir, "keys"), pass, keystore.LightScryptN)
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	if len(keys) == 0 && len(out) == 0 {
		// A new node: make its first key now, as its first start would.
		if _, err := ring.Active(); err != nil {
			return nil, fmt.Errorf("realm: node keys: %w", err)
		}
		if keys, err = ring.List(); err != nil {
			return nil, fmt.Errorf("realm: node keys: %w", err)
		}
	}
	for _, k := range keys {
		if k.Active && !slices.Contains(out, k.Address) {
			out = append(out, k.Address)
		}
	}
	return out, nil
}
