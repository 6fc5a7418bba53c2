package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zerorealm/zerorealm/internal/dirlock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/scenes"
)

type serveFlags struct {
	listen, data, nats, natsListen, scenes, config string
	templateKey, recordKey, pprofListen            string
	prefix, node, logLevel, logFormat              string
	rpID, origins                                  string
	sessionIdle, sessionLifetime                   time.Duration
	bootstrapAdmin                                 bool
	bootstrapAdminRoles                            string
	auditRoles                                     string
	natsAuth                                       natsembed.ClientAuth
	ceremonyRate, xrCPUReserve, xrThinBelow        float64
	ceremonyBurst, maxPendingCeremonies            int
	maxSessionsPerAvatar, maxLivePerAvatar         int
	maxTwinFeedsPerAvatar, maxXRStreams            int
	trustedProxies                                 string
	webrtcUDPPort                                  int
	webrtcPublicIPs                                string
	minFreeDiskMiB                                 int64
	requestTimeout                                 time.Duration
	agentApprovalExpiry                            time.Duration
	otelEndpoint                                   string
	memoryLimit                                    string
	gcPercent                                      string
	backgroundPeers, backgroundReaders             string
	backgroundMinPeople                            int
	backgroundEvery, backgroundMaxAge              time.Duration
}

func newServeCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a realm node (the default command)",
		Long: `Run a realm node. With no --nats it embeds a single-node NATS server with
JetStream under the data dir, so no other process is needed. Every flag can
also be set as ZR_<FLAG> in the environment or in the YAML file of --config.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applySources(cmd.Flags(), "config"); err != nil {
				return err
			}
			return serve(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "localhost:8080", "HTTP listen address (host:port)")
	fl.StringVar(&f.data, "data", "", "data directory (default: zerorealm-data under the user's data directory)")
	fl.StringVar(&f.nats, "nats", "", "comma-separated NATS cluster URLs (empty: run an embedded NATS server)")
	fl.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS server accepts enrolled twin gateways, opened only while one is enrolled; every client authenticates (empty: in-process only)")
	addNATSAuthFlags(fl, &f.natsAuth, "this node")
	fl.StringVar(&f.scenes, "scenes", "", "folder of scenes (empty: the scenes shipped in the binary)")
	fl.StringVar(&f.config, "config", "", "YAML file of settings named like the flags")
	fl.StringVar(&f.prefix, "prefix", "zr", "namespace of every NATS subject, stream and bucket")
	fl.StringVar(&f.node, "node", "", "node name (default: kept in the data dir)")
	fl.StringVar(&f.recordKey, "record-key", "", "file of the key that authenticates the records the realm reads back from NATS (sessions, avatars, ledger, ...), the same on every node of a cluster (default: record.key in the data dir, created on first start)")
	fl.StringVar(&f.templateKey, "template-key", "", "file of the key that seals biometric templates, the same on every node of a cluster (default: template.key in the data dir, created on first start); one key a line during a rotation, the first sealing")
	fl.StringVar(&f.rpID, "rp-id", "localhost", "WebAuthn relying party id: the domain passkeys are bound to")
	fl.StringVar(&f.origins, "origins", "", "comma-separated web origins allowed for passkeys and browser requests (default: the realm's own URL)")
	fl.DurationVar(&f.sessionIdle, "session-idle", 30*time.Minute, "a session unused this long expires")
	fl.DurationVar(&f.sessionLifetime, "session-lifetime", 12*time.Hour, "a session's absolute lifetime")
	fl.BoolVar(&f.bootstrapAdmin, "bootstrap-admin", true, "make the first avatar registered on a realm without an administrator one (false: promote nobody)")
	fl.StringVar(&f.bootstrapAdminRoles, "bootstrap-admin-roles", "admin,operator,supervisor", "comma-separated roles the bootstrap gives; must include admin")
	fl.StringVar(&f.auditRoles, "audit-roles", "admin,auditor", "comma-separated roles that read every decision in the audit log; others read their own")
	fl.Float64Var(&f.ceremonyRate, "ceremony-rate", 5, "passkey ceremony calls (begin and finish) a second from one client address, after the burst (negative: no limit)")
	fl.IntVar(&f.ceremonyBurst, "ceremony-burst", 50, "passkey ceremony calls one client address may make at once")
	fl.IntVar(&f.maxPendingCeremonies, "max-pending-ceremonies", 10000, "passkey ceremonies begun on this node and not yet finished or expired (negative: no cap)")
	fl.IntVar(&f.maxSessionsPerAvatar, "max-sessions-per-avatar", 32, "live sessions of one avatar; a sign-in beyond revokes the oldest (at most 256)")
	fl.IntVar(&f.maxLivePerAvatar, "max-live-per-avatar", 8, "realm WebSockets of one avatar on this node (negative: no cap)")
	fl.Float64Var(&f.xrCPUReserve, "xr-cpu-reserve", 0.1, "share of this node's cores kept free of XR streams: from 64 streams on, a new stream is refused with node-busy while the CPU the node could still use (the machine's idle cores, at most those GOMAXPROCS leaves it) is under it (0: off)")
	fl.Float64Var(&f.xrThinBelow, "xr-thin-below", 0.15, "share of this node's cores under which its spare CPU makes it judge the XR streams it trusts and is sure of every other window, every sample still judged, until it has that much to spare again (0: never)")
	fl.IntVar(&f.maxXRStreams, "max-xr-streams", 0, "sessions streaming XR motion to this node: a new stream beyond it is refused with node-busy, as while the node is behind its streams (0: no cap)")
	fl.StringVar(&f.backgroundPeers, "background-peers", "", "comma-separated realms whose biometric background statistics this node fetches and whitens with, each as its URL and the verifier key of its realm's background key (or its nodes'), space-separated: \"https://other.example KEY [KEY...]\" (zerorealm keys export-public prints the keys; empty: none)")
	fl.StringVar(&f.backgroundReaders, "background-readers", "", "comma-separated verifier keys of other realms (their background_realm_key, or their nodes') that may read this realm's background statistics, sums over its people and never a template (empty: none)")
	fl.IntVar(&f.backgroundMinPeople, "background-min-people", 5, "k: a node shares no background statistics while it knows fewer people (at least 5)")
	fl.DurationVar(&f.backgroundEvery, "background-every", time.Hour, "how often each background peer is fetched (at least 1m)")
	fl.DurationVar(&f.backgroundMaxAge, "background-max-age", 24*time.Hour, "a peer's background statistics stop counting when not renewed for this long (at least --background-every)")
	fl.IntVar(&f.maxTwinFeedsPerAvatar, "max-twin-feeds-per-avatar", 4, "twin console feeds (GET /v1/twins/feed) of one avatar on this node (negative: no cap)")
	fl.IntVar(&f.webrtcUDPPort, "webrtc-udp-port", 0, "the one UDP port every WebRTC peer connection of this node shares, for a firewall that opens one (0: each peer connection its own ephemeral ports)")
	fl.StringVar(&f.webrtcPublicIPs, "webrtc-public-ip", "", "this node's public address(es) behind a 1:1 NAT, at most one IPv4 and one IPv6, comma-separated: WebRTC peer connections offer them beside the node's own addresses (empty: none)")
	fl.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For gives the client address (empty: none)")
	fl.DurationVar(&f.requestTimeout, "request-timeout", 3*time.Second, "deadline of every HTTP request (WebSockets excepted), shared by its store calls and audit commits (negative: none)")
	fl.DurationVar(&f.agentApprovalExpiry, "agent-approval-expiry", 15*time.Minute, "how long an agent's action waits for its owner's approval (at most 24h)")
	fl.Int64Var(&f.minFreeDiskMiB, "min-free-disk", 64, "MiB of free disk space the embedded store keeps: under it writes are refused (507) and /readyz is 503 until space returns (negative: not checked; ignored with --nats)")
	fl.StringVar(&f.otelEndpoint, "otel-endpoint", "", "export OpenTelemetry traces over OTLP/HTTP to this collector, e.g. http://localhost:4318 (empty: off)")
	fl.StringVar(&f.memoryLimit, "memory-limit", "", "soft limit of the Go runtime's memory, written as GOMEMLIMIT is (512MiB, 2GiB, off): the collector runs sooner near it, so RSS follows the live heap instead of growing to twice it (empty: GOMEMLIMIT's; without it, nine tenths of the control group's memory limit, or none)")
	fl.StringVar(&f.gcPercent, "gc-percent", "", "the collector's target, auto or written as GOGC is (a percentage, or off): the heap grows this far past what is live before the next collection; auto moves it from 20 up to 100 as far as keeps the collector within 5% of the CPU the node uses (empty: GOGC's; without it, auto; Go's own default is 100)")
	fl.StringVar(&f.pprofListen, "pprof-listen", "", "serve Go runtime profiles (/debug/pprof/) on this separate address, e.g. localhost:6060 (empty: off)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

// minFreeDisk turns --min-free-disk (MiB) into Config.MinFreeDisk (bytes):
// 0 keeps the realm's default, a negative value turns the check off.
func minFreeDisk(mib int64) int64 {
	if mib < 0 {
		return -1
	}
	return min(mib, 1<<40) << 20
}

func serve(parent context.Context, f serveFlags, stdout, stderr io.Writer) error {
	logger, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	dataDir := f.data
	if dataDir == "" {
		base, err := userDataDir()
		if err != nil {
			return usagef("no default data directory: %v (set --data or ZR_DATA)", err)
		}
		dataDir = filepath.Join(base, "zerorealm-data")
	}
	if err := checkWritableDir(dataDir); err != nil {
		return usagef("data dir %s cannot be written: %v (choose another with --data or ZR_DATA, or fix its permissions)", dataDir, err)
	}
	if f.scenes != "" {
		if st, err := os.Stat(f.scenes); err != nil || !st.IsDir() {
			return usagef("scenes folder %q is not a readable directory (check --scenes or ZR_SCENES)", f.scenes)
		}
	}
	restoreMemoryLimit, err := applyMemoryLimit(f.memoryLimit, logger)
	if err != nil {
		return err
	}
	defer restoreMemoryLimit()
	restoreGCPercent, err := applyGCPercent(f.gcPercent, logger)
	if err != nil {
		return err
	}
	defer restoreGCPercent()
	natsURLs := splitList(f.nats)
	proxies, err := parsePrefixes(f.trustedProxies)
	if err != nil {
		return usagef("--trusted-proxies: %v", err)
	}
	publicIPs, err := parseAddrs(f.webrtcPublicIPs)
	if err != nil {
		return usagef("--webrtc-public-ip: %v", err)
	}
	backgroundPeers, err := parseBackgroundPeers(f.backgroundPeers)
	if err != nil {
		return usagef("--background-peers: %v", err)
	}
	r, err := realm.New(realm.Config{
		Listen:          f.listen,
		DataDir:         dataDir,
		NATS:            natsURLs,
		NATSListen:      f.natsListen,
		NATSCreds:       f.natsAuth.CredsFile,
		NATSNKey:        f.natsAuth.NKeyFile,
		NATSTLSCA:       f.natsAuth.TLSCAFile,
		NATSTLSCert:     f.natsAuth.TLSCertFile,
		NATSTLSKey:      f.natsAuth.TLSKeyFile,
		ScenesDir:       f.scenes,
		Prefix:          f.prefix,
		Node:            f.node,
		TemplateKeyFile: f.templateKey,
		RecordKeyFile:   f.recordKey,
		RPID:            f.rpID,
		Origins:         splitList(f.origins),
		SessionIdle:     f.sessionIdle,
		SessionLifetime: f.sessionLifetime,
		Logger:          logger,

		CeremonyRate:          f.ceremonyRate,
		CeremonyBurst:         f.ceremonyBurst,
		MaxPendingCeremonies:  f.maxPendingCeremonies,
		MaxSessionsPerAvatar:  f.maxSessionsPerAvatar,
		MaxLivePerAvatar:      f.maxLivePerAvatar,
		MaxTwinFeedsPerAvatar: f.maxTwinFeedsPerAvatar,
		MaxXRStreams:          f.maxXRStreams,
		XRCPUReserve:          f.xrCPUReserve,
		XRThinBelow:           f.xrThinBelow,
		TrustedProxies:        proxies,
		WebRTCUDPPort:         f.webrtcUDPPort,
		WebRTCPublicIPs:       publicIPs,
		MinFreeDisk:           minFreeDisk(f.minFreeDiskMiB),
		RequestTimeout:        f.requestTimeout,
		AgentApprovalExpiry:   f.agentApprovalExpiry,
		OTelEndpoint:          f.otelEndpoint,

		DisableBootstrapAdmin: !f.bootstrapAdmin,
		BootstrapAdminRoles:   splitList(f.bootstrapAdminRoles),
		AuditRoles:            splitList(f.auditRoles),

		Background: realm.BackgroundExchange{
			Peers: backgroundPeers, Readers: splitList(f.backgroundReaders),
			MinPeople: f.backgroundMinPeople, Every: f.backgroundEvery, MaxAge: f.backgroundMaxAge,
		},
	})
	if err != nil {
		if errors.Is(err, realm.ErrConfig) {
			return usageError{err}
		}
		return err
	}
	if err := r.Listen(); err != nil {
		return usagef("%v (is another realm running? choose another address with --listen)", err)
	}
	if f.pprofListen != "" {
		stopProfiling, err := startProfiling(f.pprofListen, logger)
		if err != nil {
			return err
		}
		defer stopProfiling()
	}

	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan struct{})
	defer close(served)
	go func() {
		select {
		case <-r.Ready():
			origins := splitList(f.origins)
			if len(origins) == 0 {
				origins = []string{r.URL()}
			}
			for _, o := range origins {
				if problem := passkeyHostProblem(f.rpID, o); problem != "" {
					fmt.Fprintln(stderr, "WARNING: "+problem)
				}
			}
			fmt.Fprintf(stdout, "ZeroRealm is ready at %s (node %s, data %s). Press Ctrl-C to stop.\n", r.URL(), r.Node(), dataDir)
		case <-ctx.Done():
		}
		<-ctx.Done()
		// A second signal means the operator does not want to wait for the drain.
		force := make(chan os.Signal, 1)
		signal.Notify(force, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(force)
		stop()
		select {
		case <-force:
			fmt.Fprintln(stderr, "zerorealm: forced stop")
			os.Exit(1)
		case <-served:
		}
	}()
	start := time.Now()
	if err := r.Serve(ctx); err != nil {
		var sceneErr *scenes.LoadError
		if errors.As(err, &sceneErr) {
			return usagef("the scenes in %s have %d problem(s); fix them and start again:\n%v", scenesSource(f.scenes), len(sceneErr.Problems), sceneErr)
		}
		if held, ok := errors.AsType[*dirlock.HeldError](err); ok {
			return usagef("data directory %v: stop that realm first, or give this one its own directory with --data", held)
		}
		return err
	}
	logger.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond))
	return nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("log format %q: want text or json", format)
}

// checkWritableDir creates dir if needed and proves it is writable by
// writing and removing a file, so a read-only or misnamed data dir fails at
// once with a clear message instead of deep inside the NATS store.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	name := probe.Name()
	probe.Close()
	return os.Remove(name)
}

// userDataDir is the per-user folder for application data: XDG_DATA_HOME or
// ~/.local/share on Unix, Application Support on macOS, LocalAppData on
// Windows.
func userDataDir() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%LocalAppData% is not set")
	case "darwin", "ios":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support"), nil
	default:
		if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
			return d, nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".local", "share"), nil
	}
}

func scenesSource(dir string) string {
	if dir == "" {
		return "the binary"
	}
	return dir
}

// addNATSAuthFlags declares the files a client of a NATS cluster (who)
// presents, for serve and gateway alike.
func addNATSAuthFlags(fl *pflag.FlagSet, a *natsembed.ClientAuth, who string) {
	fl.StringVar(&a.CredsFile, "nats-creds", "", "NATS JWT user credentials (.creds) "+who+" presents to the cluster of --nats")
	fl.StringVar(&a.NKeyFile, "nats-nkey", "", "file of the NATS user nkey seed "+who+" presents to the cluster of --nats (instead of --nats-creds)")
	fl.StringVar(&a.TLSCAFile, "nats-tls-ca", "", "PEM authorities the NATS servers' certificates are checked against (uses TLS)")
	fl.StringVar(&a.TLSCertFile, "nats-tls-cert", "", "PEM client certificate for NATS servers that verify clients (with --nats-tls-key)")
	fl.StringVar(&a.TLSKeyFile, "nats-tls-key", "", "PEM key of --nats-tls-cert")
}

// splitList reads a comma-separated flag value, ignoring blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseBackgroundPeers reads --background-peers: comma-separated peers,
// each its URL and its keys separated by spaces (verifier keys hold no
// spaces or commas).
func parseBackgroundPeers(list string) ([]realm.BackgroundPeer, error) {
	var peers []realm.BackgroundPeer
	for _, entry := range splitList(list) {
		fields := strings.Fields(entry)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%q: want a URL and at least one verifier key, separated by spaces", entry)
		}
		peers = append(peers, realm.BackgroundPeer{URL: fields[0], Keys: fields[1:]})
	}
	return peers, nil
}

// parsePrefixes reads comma-separated CIDRs; a bare address is its own
// /32 or /128.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(list) {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// parseAddrs reads a comma-separated list of IP addresses (no names: a
// candidate the node offers must be an address its clients can send to
// without asking anyone).
func parseAddrs(list string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range splitList(list) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address (e.g. 203.0.113.7 or 2001:db8::7)", s)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// passkeyHostProblem says why browsers will refuse passkeys on the origin
// with the relying party id rpID, and what to run instead; "" when they
// accept it. WebAuthn binds a passkey to a domain: the page's host must be
// rpID or a subdomain of it, and an IP address is never one, so a realm
// listening on 127.0.0.1 serves a console whose passkeys all fail with
// "SecurityError: This is an invalid domain".
func passkeyHostProblem(rpID, origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return fmt.Sprintf("origin %q is not a URL: passkeys cannot work there (check --origins)", origin)
	}
	host, rp := strings.ToLower(u.Hostname()), strings.ToLower(rpID)
	if net.ParseIP(host) != nil {
		instead := "--listen localhost:" + u.Port()
		if u.Port() == "" || rp != "localhost" {
			instead = "a domain name within " + rpID + " for the realm, or --listen localhost:PORT with --rp-id localhost,"
		}
		return fmt.Sprintf("passkeys cannot work at %s: its host %s is an IP address, and browsers accept only a domain as the relying party (--rp-id %s). Use %s and open the URL it prints",
			origin, host, rpID, instead)
	}
	if host == rp || strings.HasSuffix(host, "."+rp) {
		return ""
	}
	return fmt.Sprintf("passkeys cannot work at %s: its host %s is neither %s nor a subdomain of it (--rp-id). Run with --rp-id %s, or serve the realm under %s",
		origin, host, rpID, host, rpID)
}
