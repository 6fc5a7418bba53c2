package realm

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/twin"
)

// nodeKey opens the node's key ring (DataDir/keys, encrypted with
// Config.Assets.KeyPassphrase or ZR_KEY_PASSPHRASE) once and returns its
// active secp256k1 key. The ring holds one secret per key generation: the
// secp256k1 key signs receipts, command grants, revocation notices and key
// rotations, and the node's Ed25519 checkpoint key is derived from it
// (auditKeys), so all rotate together with `zerorealm keys rotate`.
func (r *Realm) nodeKey() (*ecdsa.PrivateKey, error) {
	if r.ringKey != nil {
		return r.ringKey, nil
	}
	cfg := r.cfg.Assets
	pass := cfg.KeyPassphrase
	if pass == "" {
		// The same variable `zerorealm keys` reads, so that the two agree.
		pass = os.Getenv("ZR_KEY_PASSPHRASE")
	}
	if pass == "" {
		pass = assets.DevPassphrase
		r.log.Warn("NODE KEYS ARE ENCRYPTED WITH THE PUBLIC DEVELOPMENT PASSPHRASE: anyone with the data directory can sign receipts, checkpoints and move custodial assets; set ZR_KEY_PASSPHRASE")
	}
	scryptN := cfg.KeyScryptN
	if scryptN == 0 {
		scryptN = keystore.LightScryptN
	}
	ring, err := assets.OpenKeyRing(filepath.Join(r.cfg.DataDir, "keys"), pass, scryptN)
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	if r.legacyGrantKey, err = importLegacyGrantKey(r.cfg.DataDir, ring); err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	key, err := ring.Active()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	prev, err := ring.Previous()
	if err != nil {
		return nil, fmt.Errorf("realm: node keys: %w", err)
	}
	r.ring, r.ringKey, r.ringPrev, r.ringPass = ring, key, prev, pass
	return key, nil
}

// importLegacyGrantKey moves the grant key of earlier versions
// (DataDir/twin-grant-key.json, a key of its own protected only by the
// file's permissions) into the ring, encrypted, and removes the file. On a
// node whose ring is empty it becomes the ring's active key, so receipts,
// grants and checkpoints continue under the address enrolled gateways
// pinned. On a node whose ring has a key already, the ring's active key
// signs from now on and the old grant key is kept in the ring, retired; it
// is returned so that the node can announce the change to the gateways
// that pinned it (twin.KeyRotation, signed by the old key).
func importLegacyGrantKey(dataDir string, ring *assets.KeyRing) (*twin.Signer, error) {
	path := filepath.Join(dataDir, TwinKeyFile)
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	legacy, err := twin.LoadOrCreateKeyFile(path, "")
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	priv, err := crypto.HexToECDSA(legacy.HexKey())
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	keys, err := ring.List()
	if err != nil {
		return nil, err
	}
	created := info.ModTime()
	if len(keys) > 0 && !keys[0].Created.IsZero() && !created.Before(keys[0].Created) {
		// Retired keys sort before the ring's own, so that the key
		// before the active one stays the one it replaced.
		created = keys[0].Created.Add(-time.Second)
	}
	imported, err := ring.Import(priv, created, len(keys) == 0)
	if err != nil {
		return nil, fmt.Errorf("legacy grant key: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("legacy grant key imported into the ring, but %s could not be removed: %w", TwinKeyFile, err)
	}
	if imported.Active {
		return nil, nil
	}
	return legacy, nil
}

// auditKeys are the node's checkpoint keys: the one derived from the
// ring's active key, and the one derived from the key before it (nil if
// none), which countersigns checkpoints so that witnesses that pinned it
// follow a rotation.
func (r *Realm) auditKeys() (active, previous *audit.Key, err error) {
	key, err := r.nodeKey()
	if err != nil {
		return nil, nil, err
	}
	origin := audit.Origin(r.cfg.RPID, r.cfg.Node)
	derive := func(k *ecdsa.PrivateKey) (*audit.Key, error) {
		seed, err := assets.DeriveSeed(k, assets.CheckpointKeyLabel)
		if err != nil {
			return nil, err
		}
		return audit.NewKey(origin, seed)
	}
	if active, err = derive(key); err != nil {
		return nil, nil, fmt.Errorf("realm: checkpoint key: %w", err)
	}
	if r.ringPrev != nil {
		if previous, err = derive(r.ringPrev); err != nil {
			return nil, nil, fmt.Errorf("realm: checkpoint key: %w", err)
		}
	}
	return active, previous, nil
}

// Grant key announcements: after the node's grant key changed (a ring
// rotation, or an old grant key imported as retired), the key gateways
// pinned announces the new one on twin.KeySubject (a twin.KeyRotation it
// signs), so enrolled gateways follow without new credentials. Core NATS
// keeps no message, so the announcement repeats for a window; a gateway
// offline for all of it needs its credentials issued again. The file
// grantAnnouncedFile remembers the key announced to the end of a window,
// so later starts do not announce it again (each announcement extends the
// old key's grace at the gateways).
const (
	grantAnnounceEvery  = 2 * time.Second
	grantAnnounceWindow = 10 * time.Minute
	grantAnnouncedFile  = "grant-key-announced"
)

func (r *Realm) startGrantKeyAnnouncements(bg context.Context) {
	next := r.twins.GrantKey()
	var from []*twin.Signer
	if r.legacyGrantKey != nil {
		from = append(from, r.legacyGrantKey)
	}
	marker := filepath.Join(r.cfg.DataDir, "keys", grantAnnouncedFile)
	done, _ := os.ReadFile(marker)
	if r.ringPrev != nil && strings.TrimSpace(string(done)) != next.Hex() {
		if s, err := twin.NewSigner(r.ringPrev); err == nil {
			from = append(from, s)
		}
	}
	if len(from) == 0 {
		return
	}
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		t := time.NewTicker(grantAnnounceEvery)
		defer t.Stop()
		end := time.Now().Add(grantAnnounceWindow)
		for {
			for _, s := range from {
				sr := s.SignRotation(next, time.Now())
				if err := r.nc.Publish(twin.KeySubject(r.cfg.Prefix), sr.Encode()); err != nil {
					r.log.Warn("announce the grant key to gateways", "previous", s.Address().Hex(), "next", next.Hex(), "err", err)
				}
			}
			if time.Now().After(end) {
				if err := os.WriteFile(marker, []byte(next.Hex()+"\n"), 0o600); err != nil {
					r.log.Warn("remember the announced grant key", "err", err)
				}
				return
			}
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
		}
	}()
}
