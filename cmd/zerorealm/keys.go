package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/notekey"
	"github.com/zerorealm/zerorealm/realm"
)

// keyRingFlags locate a realm node's receipt-signing keys: DataDir/keys,
// encrypted with ZR_KEY_PASSPHRASE (the variable the realm reads too).
type keyRingFlags struct {
	data string
	rpID string
	// templateKey is the template key's file, as serve --template-key;
	// "" is template.key in the data directory.
	templateKey string
}

func (f *keyRingFlags) dir() (string, error) {
	if f.data != "" {
		return f.data, nil
	}
	base, err := userDataDir()
	if err != nil {
		return "", usagef("no default data directory: %v (set --data or ZR_DATA)", err)
	}
	return filepath.Join(base, "zerorealm-data"), nil
}

// nodeKeys are the note verifier keys that a ring key gives the node:
// its audit checkpoint key (docs/audit.md) and its background exchange key
// (docs/biometrics.md), both "" when the data directory has no node name
// yet.
func (f *keyRingFlags) nodeKeys(ring *assets.KeyRing, file string) (checkpoint, background string, err error) {
	dir, err := f.dir()
	if err != nil {
		return "", "", err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "node-id"))
	if err != nil {
		return "", "", nil
	}
	node := strings.TrimSpace(string(raw))
	priv, err := ring.Decrypt(file)
	if err != nil {
		return "", "", err
	}
	seed, err := assets.DeriveSeed(priv, assets.CheckpointKeyLabel)
	if err != nil {
		return "", "", err
	}
	k, err := audit.NewKey(audit.Origin(f.rpID, node), seed)
	if err != nil {
		return "", "", err
	}
	if seed, err = assets.DeriveSeed(priv, assets.BackgroundKeyLabel); err != nil {
		return "", "", err
	}
	_, background, err = notekey.Keys(realm.BackgroundKeyName(f.rpID, node), seed)
	if err != nil {
		return "", "", err
	}
	return k.VerifierKey(), background, nil
}

// realmBackgroundKey is the note verifier key of the realm's background
// key, derived from the template key every node of the realm holds (the
// first of its key file, the one that seals); ""
// when the data directory has no template key yet (the realm makes it at
// its first start).
func (f *keyRingFlags) realmBackgroundKey() (string, error) {
	file := f.templateKey
	if file == "" {
		dir, err := f.dir()
		if err != nil {
			return "", err
		}
		file = filepath.Join(dir, realm.DefaultTemplateKeyFile)
	}
	raw, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && f.templateKey == "" {
		return "", nil
	}
	if err != nil {
		return "", usagef("the template key, from which the realm's background key is derived: %v (check --template-key)", err)
	}
	ring, err := keyfile.ParseRing(raw, file)
	if err != nil {
		return "", err
	}
	seed, err := biometrics.ExchangeSeed(ring[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	_, vkey, err := notekey.Keys(realm.BackgroundRealmKeyName(f.rpID), seed)
	return vkey, err
}

// open opens the ring. The data directory must exist: a mistyped --data
// is reported, never made. A command that only reads (readOnly) also
// needs the keys folder, so that it changes nothing on disk.
func (f *keyRingFlags) open(stderr io.Writer, readOnly bool) (*assets.KeyRing, error) {
	dir, err := f.dir()
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, usagef("no realm data directory at %s (check --data or ZR_DATA; the realm makes it at its first start)", dir)
	}
	keys := filepath.Join(dir, "keys")
	if _, err := os.Stat(keys); readOnly && err != nil {
		return nil, usagef("no keys in %s (the realm makes its first key at its first start; check --data or ZR_DATA)", keys)
	}
	pass := os.Getenv("ZR_KEY_PASSPHRASE")
	if pass == "" {
		fmt.Fprintln(stderr, "WARNING: ZR_KEY_PASSPHRASE is not set: using the public development passphrase")
		pass = assets.DevPassphrase
	}
	return assets.OpenKeyRing(keys, pass, 0)
}

// onRing is a command's RunE that opens the ring (readOnly as for open)
// and runs do with it.
func (f *keyRingFlags) onRing(readOnly bool, do func(cmd *cobra.Command, ring *assets.KeyRing) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ring, err := f.open(cmd.ErrOrStderr(), readOnly)
		if err != nil {
			return err
		}
		return do(cmd, ring)
	}
}

func newKeysCommand() *cobra.Command {
	var f keyRingFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the node's key ring (list, rotate, export-public) and the template key (template)",
		Long: "The realm node signs receipts and ledger checkpoints with a secp256k1 key kept in DATA/keys\n" +
			"as Ethereum keystore files, encrypted with ZR_KEY_PASSPHRASE; its Ed25519 audit checkpoint\n" +
			"key is derived from the same key. Rotation adds a key and makes it active at the next start;\n" +
			"old keys stay so what they signed remains attributable.",
		Args: noArgs,
	}
	cmd.PersistentFlags().StringVar(&f.data, "data", os.Getenv("ZR_DATA"), "the realm node's data directory")
	rpID := os.Getenv("ZR_RP_ID")
	if rpID == "" {
		rpID = "localhost"
	}
	cmd.PersistentFlags().StringVar(&f.rpID, "rp-id", rpID, "the realm's relying party id, which names its audit chains (as serve --rp-id)")
	list := &cobra.Command{
		Use: "list", Short: "List the keys, oldest first", Args: noArgs,
		RunE: f.onRing(true, func(cmd *cobra.Command, ring *assets.KeyRing) error {
			keys, err := ring.List()
			if err != nil {
				return err
			}
			for _, k := range keys {
				mark := " "
				if k.Active {
					mark = "*"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s  %s  %s\n", mark, k.Address.Hex(), k.Created.Format("2006-01-02T15:04:05Z"), k.File)
			}
			return nil
		}),
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Create a new key and make it the active one (restart the node to use it)", Args: noArgs,
		RunE: f.onRing(false, func(cmd *cobra.Command, ring *assets.KeyRing) error {
			k, err := ring.Rotate()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new active key %s (%s)\n", k.Address.Hex(), k.File)
			return nil
		}),
	}
	export := &cobra.Command{
		Use: "export-public", Short: "Print the signer addresses as JSON, for verifiers", Args: noArgs,
		RunE: f.onRing(true, func(cmd *cobra.Command, ring *assets.KeyRing) error {
			keys, err := ring.List()
			if err != nil {
				return err
			}
			type pub struct {
				Address string `json:"address"`
				Active  bool   `json:"active"`
				Created string `json:"created"`
				// CheckpointKey is the audit checkpoint verifier key the
				// ring key gives this node (a C2SP note verifier key).
				CheckpointKey string `json:"checkpoint_key,omitempty"`
				// BackgroundKey is the key this node signs background
				// statistics and requests for them with, as peer realms
				// pin it (--background-peers, --background-readers).
				BackgroundKey string `json:"background_key,omitempty"`
			}
			out := struct {
				Domain assets.DomainMessage `json:"domain"`
				// BackgroundRealmKey is the realm's background key, the
				// same on every node: the one peer realms pin
				// (--background-peers, --background-readers), so that
				// the nodes the realm adds later need no new pin.
				BackgroundRealmKey string `json:"background_realm_key,omitempty"`
				Keys               []pub  `json:"keys"`
			}{Keys: []pub{}}
			if out.BackgroundRealmKey, err = f.realmBackgroundKey(); err != nil {
				return err
			}
			d := assets.NewScheme(assets.Domain{}).Domain()
			out.Domain = assets.DomainMessage{Name: d.Name, Version: d.Version, ChainID: assets.Uint(d.ChainID), VerifyingContract: d.VerifyingContract.Hex()}
			for _, k := range keys {
				ck, bk, err := f.nodeKeys(ring, k.File)
				if err != nil {
					return err
				}
				out.Keys = append(out.Keys, pub{k.Address.Hex(), k.Active, k.Created.Format("2006-01-02T15:04:05Z"), ck, bk})
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}),
	}
	export.Flags().StringVar(&f.templateKey, "template-key", os.Getenv("ZR_TEMPLATE_KEY"), "file of the key that seals biometric templates, as serve --template-key (default: template.key in the data dir); the realm's background key is derived from it")
	cmd.AddCommand(list, rotate, export, newTemplateKeyCommand(&f))
	return cmd
}
