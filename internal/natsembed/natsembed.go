package natsembed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Config configures the embedded server. The zero value is not usable:
// DataDir is required.
type Config struct {
	// DataDir is where JetStream keeps its file store (in a "jetstream"
	// folder below it). Required.
	DataDir string
	// ClientListen is a host:port where the server also accepts TCP clients
	// (gateways on the same machine). Empty means in-process only, which is
	// what a caller should pass unless some client needs the socket: every
	// client authenticates either way, but nothing should listen that
	// nothing needs. Use port 0 for a free port (tests).
	ClientListen string
	// ServerName names the server in JetStream; default "zerorealm".
	ServerName string
	// ReadyTimeout bounds how long Start waits for the server; default 10s.
	ReadyTimeout time.Duration
	// Logger receives the server's own log lines; default discards them.
	Logger *slog.Logger
	// Prefix is the realm's subject prefix, which gateway permissions are
	// written in; default "zr".
	Prefix string
	// Gateways are the twin gateways allowed to connect, each with its own
	// public user nkey and confined to its own twin's subjects (see
	// GatewayRules). The server always requires an nkey: the realm's own
	// in-process connection signs in with a key generated for this run that
	// no one else holds, and a client that is neither is refused.
	Gateways []GatewayUser
	// MinFreeDisk is the free space, in bytes, under DataDir below which
	// WriteRefusal refuses writes, before JetStream meets a full disk.
	// 0 or negative: not guarded. Whatever it is, a JetStream that
	// stopped taking writes after a failed one is restarted once space is
	// free again (see Disk).
	MinFreeDisk int64
}

// GatewayUser is one twin gateway's identity: the public user nkey ("U...")
// it signs in with and the twin it serves.
type GatewayUser struct {
	Twin string
	NKey string
}

// SubjectRules are one NATS user's permissions, written once and turned
// into whichever form a server takes them in: options of the embedded
// server (ServerPermissions) or the claims of a NATS JWT user (package
// natsconf). Anything not allowed is refused.
type SubjectRules struct {
	Publish   []string
	Subscribe []string
	// Replies lets the user answer each request it receives this many
	// times within RepliesWithin, on the requester's reply subject, which
	// it could not otherwise publish to. Zero: no replies.
	Replies       int
	RepliesWithin time.Duration
}

// GatewayRules confine a gateway to its twin: it may receive only its
// twin's commands and status queries, the realm's revocation notices and
// key rotations, and publish only its twin's state and one reply to each
// command or query it received.
// It makes no requests of its own, so it needs no inbox. The subjects match
// the ones package twin defines; a test there holds both to the same names.
func GatewayRules(prefix, twinID string) SubjectRules {
	base := prefix + ".twin." + twinID
	return SubjectRules{
		Publish:   []string{base + ".state.>"},
		Subscribe: []string{base + ".cmd.>", base + ".status", prefix + ".revocations", prefix + ".twin.keys"},
		// Replies go to the requester's inbox, which the gateway may answer
		// once, shortly after the request.
		Replies:       1,
		RepliesWithin: time.Minute,
	}
}

// ServerPermissions are the rules as the embedded server's options.
func (r SubjectRules) ServerPermissions() *server.Permissions {
	p := &server.Permissions{
		// Non-nil even when empty: a nil list would allow everything.
		Publish:   &server.SubjectPermission{Allow: append([]string{}, r.Publish...)},
		Subscribe: &server.SubjectPermission{Allow: append([]string{}, r.Subscribe...)},
	}
	if r.Replies > 0 {
		p.Response = &server.ResponsePermission{MaxMsgs: r.Replies, Expires: r.RepliesWithin}
	}
	return p
}

// GatewayPermissions are GatewayRules as the embedded server's options.
func GatewayPermissions(prefix, twinID string) *server.Permissions {
	return GatewayRules(prefix, twinID).ServerPermissions()
}

// Embedded is a running in-process nats-server and the realm's in-process
// connection to it.
type Embedded struct {
	srv      *server.Server
	nc       *nats.Conn
	realmKey nkeys.KeyPair // the realm's own connection signs in with it
	disk     *diskGuard
}

// ErrListen reports that the client listener could not be opened, typically
// because another process already holds the port.
var ErrListen = errors.New("natsembed: cannot listen")

// Start runs a nats-server with JetStream in this process and connects to it
// in-process. The caller must Shutdown it last, after everything that
// publishes through it has stopped, so nothing acknowledged is lost.
func Start(ctx context.Context, cfg Config) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("natsembed: DataDir is required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "zerorealm"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// nats-server adds its own "jetstream" folder below StoreDir.
	storeDir := filepath.Join(cfg.DataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("natsembed: create store dir: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true, // the realm owns signal handling and shuts the server down last
		NoLog:      false,
	}
	if cfg.ClientListen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(cfg.ClientListen)
		if err != nil {
			return nil, fmt.Errorf("natsembed: client listen address %q: %w", cfg.ClientListen, err)
		}
		// Probe the port ourselves: nats-server reports a busy port through
		// its fatal logger, which would otherwise be our only signal.
		if port != 0 {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return nil, fmt.Errorf("%w on %s: %v (stop the other process or choose another address)", ErrListen, cfg.ClientListen, err)
			}
			ln.Close()
		}
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "zr"
	}
	realmKey, users, err := authorizedUsers(cfg.Prefix, cfg.Gateways)
	if err != nil {
		return nil, err
	}
	opts.Nkeys = users
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: configure server: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{log: cfg.Logger.With("component", "nats-server")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after %s (is %s writable?)", cfg.ReadyTimeout, storeDir)
	}
	e := &Embedded{srv: srv, realmKey: realmKey}
	nc, err := e.ConnectInProcess("zerorealm-realm", e.realmAuth()...)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	e.nc = nc
	e.disk = newDiskGuard(e, cfg, storeDir)
	go e.disk.run()
	return e, nil
}

// authorizedUsers are the only users the server admits: the realm, under a
// key made for this run and held only in memory, and each gateway under its
// own key, confined to its twin.
func authorizedUsers(prefix string, gateways []GatewayUser) (nkeys.KeyPair, []*server.NkeyUser, error) {
	realmKey, err := nkeys.CreateUser()
	if err != nil {
		return nil, nil, fmt.Errorf("natsembed: realm key: %w", err)
	}
	realmPub, _ := realmKey.PublicKey()
	users := []*server.NkeyUser{{Nkey: realmPub}} // nil permissions: everything
	seen := map[string]bool{realmPub: true}
	for _, g := range gateways {
		if !nkeys.IsValidPublicUserKey(g.NKey) || g.Twin == "" || strings.ContainsAny(g.Twin, ".*> \t") {
			return nil, nil, fmt.Errorf("natsembed: gateway %q: want a twin id and a public user nkey (U...), got %q", g.Twin, g.NKey)
		}
		if seen[g.NKey] {
			return nil, nil, fmt.Errorf("natsembed: gateway key %s is enrolled twice", g.NKey)
		}
		seen[g.NKey] = true
		users = append(users, &server.NkeyUser{Nkey: g.NKey, Permissions: GatewayPermissions(prefix, g.Twin)})
	}
	return realmKey, users, nil
}

func (e *Embedded) realmAuth() []nats.Option {
	pub, _ := e.realmKey.PublicKey()
	return []nats.Option{nats.Nkey(pub, e.realmKey.Sign)}
}

// ConnectInProcess opens another in-process connection, with opts adding
// its credentials (nats.Nkey for an enrolled gateway). It reconnects as
// long as the server runs.
func (e *Embedded) ConnectInProcess(name string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: in-process connect as %s: %w", name, err)
	}
	return nc, nil
}

// Conn is the in-process connection.
func (e *Embedded) Conn() *nats.Conn { return e.nc }

// Server exposes the running server, for callers that add in-process
// connections of their own (nats.InProcessServer).
func (e *Embedded) Server() *server.Server { return e.srv }

// ClientURL is the TCP URL other processes use, or "" when the server only
// serves in-process connections.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown drains the realm's connection (flushing what it published) and
// then stops the server, waiting until its store is closed.
func (e *Embedded) Shutdown(ctx context.Context) {
	if e.nc != nil && !e.nc.IsClosed() {
		done := make(chan struct{})
		e.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := e.nc.Drain(); err != nil {
			e.nc.Close()
		} else {
			select {
			case <-done:
			case <-ctx.Done():
				e.nc.Close()
			}
		}
	}
	if e.disk != nil {
		// Before the server: the guard must not restart a JetStream that
		// is being shut down.
		e.disk.close()
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Dial connects to an existing NATS cluster with auth's credentials,
// retrying until ctx ends so that a realm started alongside its cluster
// waits for it rather than failing. After the first successful connection
// the client reconnects forever, even through refused credentials (a
// server that has not loaded the account yet): giving up would leave the
// realm without NATS for good.
func Dial(ctx context.Context, urls []string, name string, auth ClientAuth, logger *slog.Logger) (*nats.Conn, error) {
	if len(urls) == 0 {
		return nil, errors.New("natsembed: no NATS URLs")
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	authOpts, err := auth.Options()
	if err != nil {
		return nil, err
	}
	servers := joinURLs(urls)
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.IgnoreAuthErrorAbort(),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	}, authOpts...)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(servers, opts...)
		if err == nil {
			return nc, nil
		}
		logger.Warn("nats connect failed, retrying", "attempt", attempt, "err", err, "servers", servers)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("natsembed: connect to %s: %w (last error: %v)", servers, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func joinURLs(urls []string) string { return strings.Join(urls, ",") }

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number between 0 and 65535", portStr)
	}
	return host, port, nil
}

// serverLogger adapts nats-server's printf logger to slog. Its notices (the
// start-up banner, limits) are debug detail for the realm's operator; fatal
// lines are logged as errors: the server must never exit the realm's process.
type serverLogger struct{ log *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
