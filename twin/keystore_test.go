package twin

import (
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"
)

// TestKeystoreOpensWhatWalletsWrite checks the key file both ways with
// go-ethereum's keystore: a file a wallet wrote at the standard cost
// opens, a wrong passphrase says so, and a file that demands more scrypt
// work than the realm allows is refused before any is done.
func TestKeystoreOpensWhatWalletsWrite(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := encryptKeystore(s, "pass")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := keystore.DecryptKey(ours, "pass"); err != nil || k.Address != s.Address() {
		t.Fatalf("go-ethereum reads our file as %v, %v", k, err)
	}
	wallet, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: s.Address(), PrivateKey: s.key}, "pass", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decryptKeystore(wallet, "pass")
	if err != nil || !got.Equal(s.key) {
		t.Fatalf("a wallet's file opens as %v, %v", got, err)
	}
	if _, err := decryptKeystore(wallet, "wrong"); !errors.Is(err, errWrongPassphrase) {
		t.Fatalf("wrong passphrase = %v", err)
	}
	costly := strings.Replace(string(wallet), `"n":4096`, `"n":1073741824`, 1)
	if costly == string(wallet) {
		t.Fatalf("the file names no scrypt N of 4096: %s", wallet)
	}
	if _, err := decryptKeystore([]byte(costly), "pass"); err == nil || !strings.Contains(err.Error(), "scrypt cost") {
		t.Fatalf("a file demanding N = 2^30 = %v, want refused for its cost", err)
	}
	if _, err := decryptKeystore([]byte("{"), "pass"); err == nil {
		t.Fatal("a truncated file opened")
	}
}
