package natsembed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/keyfile"
)

// ClientAuth is how a client of a NATS cluster (a realm node, a gateway)
// proves who it is and checks whom it talks to. Every field names a file;
// the zero value presents nothing, which a cluster that requires
// authentication refuses.
type ClientAuth struct {
	// CredsFile is a NATS JWT user credentials file (.creds): the user's
	// JWT and its nkey seed, as `zerorealm nats config` writes them.
	CredsFile string
	// NKeyFile holds a user nkey seed ("SU..."), for a server that lists
	// its users' public nkeys. Not together with CredsFile.
	NKeyFile string
	// TLSCAFile is a PEM bundle of the authorities that sign the servers'
	// certificates; setting it makes the connection use TLS.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key,
	// for servers that verify clients (both or neither).
	TLSCertFile string
	TLSKeyFile  string
}

// ErrClientAuth is wrapped by the error Options returns for credentials
// that cannot be used.
var ErrClientAuth = errors.New("natsembed: unusable NATS client credentials")

// IsZero reports whether a presents nothing.
func (a ClientAuth) IsZero() bool { return a == ClientAuth{} }

// Problems reads and parses every file a names and says, for each one that
// cannot be used, what is wrong with it, so a mistake stops the start
// rather than surfacing as a refused connection later.
func (a ClientAuth) Problems() []string {
	var p []string
	if a.CredsFile != "" && a.NKeyFile != "" {
		p = append(p, "give either a NATS .creds file or an nkey seed file, not both")
	}
	if a.CredsFile != "" {
		if err := checkCreds(a.CredsFile); err != nil {
			p = append(p, fmt.Sprintf("NATS credentials file %s: %v", a.CredsFile, err))
		} else if err := keyfile.CheckPrivate(a.CredsFile); err != nil {
			p = append(p, fmt.Sprintf("NATS credentials file: %v", err))
		}
	}
	if a.NKeyFile != "" {
		if err := checkUserSeed(a.NKeyFile); err != nil {
			p = append(p, fmt.Sprintf("NATS nkey seed file %s: %v", a.NKeyFile, err))
		} else if err := keyfile.CheckPrivate(a.NKeyFile); err != nil {
			p = append(p, fmt.Sprintf("NATS nkey seed file: %v", err))
		}
	}
	if a.TLSCAFile != "" {
		if err := checkCA(a.TLSCAFile); err != nil {
			p = append(p, fmt.Sprintf("NATS TLS CA file %s: %v", a.TLSCAFile, err))
		}
	}
	switch {
	case (a.TLSCertFile == "") != (a.TLSKeyFile == ""):
		p = append(p, "a NATS TLS client certificate needs its key, and a key its certificate: give both files or neither")
	case a.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile); err != nil {
			p = append(p, fmt.Sprintf("NATS TLS client certificate %s with key %s: %v", a.TLSCertFile, a.TLSKeyFile, err))
		} else if err := keyfile.CheckPrivate(a.TLSKeyFile); err != nil {
			p = append(p, fmt.Sprintf("NATS TLS client key: %v", err))
		}
	}
	return p
}

// ProblemsFor is Problems for a node that connects to a cluster of its
// own (clustered) or runs the embedded server, which authenticates the
// node with a key of its own: credentials given there are refused rather
// than ignored, since an operator who gave them believes they are used.
func (a ClientAuth) ProblemsFor(clustered bool) []string {
	switch {
	case a.IsZero():
		return nil
	case !clustered:
		return []string{"NATS credentials and TLS files are for a NATS cluster (--nats); the embedded server authenticates the realm with a key of its own"}
	}
	return a.Problems()
}

// Options are a's credentials as nats.go connect options. The files are
// read again at every reconnect, so replaced credentials take effect
// without a restart.
func (a ClientAuth) Options() ([]nats.Option, error) {
	if p := a.Problems(); len(p) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrClientAuth, strings.Join(p, "; "))
	}
	var opts []nats.Option
	if a.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NATS nkey seed file %s: %v", ErrClientAuth, a.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if a.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(a.TLSCAFile))
	}
	if a.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(a.TLSCertFile, a.TLSKeyFile))
	}
	return opts, nil
}

func checkCreds(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return fmt.Errorf("no user JWT in it: %v", err)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return fmt.Errorf("its JWT is not a NATS user JWT: %v", err)
	}
	if claims.Expires > 0 && time.Unix(claims.Expires, 0).Before(time.Now()) {
		return fmt.Errorf("its user JWT expired at %s; issue new credentials", time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		return fmt.Errorf("no user nkey seed in it: %v", err)
	}
	pub, _ := kp.PublicKey()
	if pub != claims.Subject {
		return errors.New("its nkey seed is not the key its JWT was issued to")
	}
	return nil
}

func checkUserSeed(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return fmt.Errorf("no nkey seed in it: %v", err)
	}
	if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicUserKey(pub) {
		return errors.New("it is not a user seed (SU...)")
	}
	return nil
}

func checkCA(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return errors.New("no PEM certificate in it")
	}
	return nil
}
