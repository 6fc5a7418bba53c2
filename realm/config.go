package realm

import (
	"errors"
	"fmt"
	"github.com/zerorealm/zerorealm/agents/approval"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/internal/ops"
	"github.com/zerorealm/zerorealm/realm/internal/peerbackground"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Realm. Zero values are the documented defaults, except
// DataDir, which is required.
type Config struct {
	// Listen is the HTTP address; default "localhost:8080". Port 0 picks a
	// free port (tests read it back with URL).
	Listen string
	// DataDir holds the embedded JetStream store and the node's identity.
	// Required; created if missing.
	DataDir string
	// NATS lists the URLs of an existing NATS cluster. Empty runs an
	// embedded single-node server instead.
	NATS []string
	// NATSListen is where the embedded server accepts TCP clients: twin
	// gateways on the same machine. It is opened only while a gateway is
	// enrolled (TwinGatewaysFile), since nothing else connects over TCP;
	// empty means in-process only. (The command line defaults it to
	// 127.0.0.1:4222.) Ignored with NATS.
	NATSListen string
	// NATSCreds, NATSNKey, NATSTLSCA, NATSTLSCert and NATSTLSKey are files
	// this node presents to the NATS cluster of NATS: a JWT user .creds
	// file or a user nkey seed, and the TLS authorities the servers'
	// certificates are checked against and a client certificate with its
	// key. Each is read and checked by New. Only with NATS: the embedded
	// server authenticates the realm with a key of its own.
	NATSCreds   string
	NATSNKey    string
	NATSTLSCA   string
	NATSTLSCert string
	NATSTLSKey  string
	// ScenesDir is a folder of scenes (one sub-folder with a scene.yaml
	// each). Empty uses the scenes shipped in the binary.
	ScenesDir string
	// Prefix namespaces every subject, stream and bucket; default "zr".
	Prefix string
	// Node names this realm node in the cluster and its audit chain.
	// Default: read from (or first written to) DataDir/node-id.
	Node string
	// ShutdownTimeout bounds the drain of connections on stop; default 4s,
	// so that with the store's own close the process stops within 5s.
	ShutdownTimeout time.Duration
	// RequestTimeout bounds every HTTP request but WebSocket upgrades:
	// its store calls, audit commits and waits share this one budget,
	// and a request cut off by it answers 503 saying whether its effect
	// may have happened. Default 3s; negative: no deadline.
	RequestTimeout time.Duration
	// AgentApprovalExpiry is how long an agent's action waits for its
	// owner's approval (agents/approval); default 15 minutes, at most 24 h.
	AgentApprovalExpiry time.Duration
	// MinFreeDisk is the free space, in bytes, the embedded store's disk
	// must keep: under it the store refuses writes (507) and the node is
	// not ready (/readyz), until space returns; default 64 MiB,
	// negative: not checked. Ignored with NATS, whose servers own their
	// disks.
	MinFreeDisk int64
	// NodeHeartbeat is how often the node refreshes its entry in the node
	// registry; default 5s. Entries expire after three missed beats.
	NodeHeartbeat time.Duration
	// RPID is the WebAuthn relying party id, the domain every passkey is
	// bound to; default "localhost". Changing it orphans existing passkeys.
	RPID string
	// Origins are the web origins passkey ceremonies and browser requests
	// may come from. Default: the realm's own URL.
	Origins []string
	// SessionIdle expires a session unused this long; default 30m.
	SessionIdle time.Duration
	// SessionLifetime is a session's absolute lifetime; default 12h.
	SessionLifetime time.Duration
	// XREnrollment is how much motion a biometric enrollment collects. It
	// starts when an avatar without a template streams right after a
	// user-verified passkey assertion; default 60s.
	XREnrollment time.Duration
	// XREnrollWithin is how soon after that assertion the motion must
	// start for it to be enrolled; default 2m.
	XREnrollWithin time.Duration
	// MaxXRStreams caps the sessions streaming XR motion to this node
	// (xr.Config.MaxStreams); 0, the default, is no cap.
	MaxXRStreams int
	// XRCPUReserve is the share of its cores this node keeps free of XR
	// streams (xr.Config.CPUReserve): from 64 streams on, a new one is
	// refused with node-busy while the CPU the node could still use is
	// under it. 0, the default here, is off; zerorealm serve sets 0.1.
	XRCPUReserve float64
	// XRThinBelow is the share of its cores under which this node's
	// spare CPU makes it judge the XR streams it trusts and is sure of
	// every other window (xr.Config.ThinBelow). 0, the default here, is
	// never; zerorealm serve sets 0.15.
	XRThinBelow float64
	// Background is this realm's exchange of biometric background
	// statistics with other realms it trusts (docs/biometrics.md,
	// "Background statistics from other realms"): the peers whose
	// statistics it whitens with, and the readers it shares its own
	// with. Default none either way.
	Background BackgroundExchange
	// TemplateKeyFile holds the key (64 hex digits) that seals biometric
	// templates at rest; default DataDir/template.key, created on first
	// start. Every node of a cluster must be given the same key: a node
	// whose key differs from the one the stored templates are sealed
	// under refuses to start. To rotate it, the file holds one key a
	// line, the first sealing and the others only opening what they
	// sealed before (docs/security.md, "Rotating the template key").
	TemplateKeyFile string
	// RecordKeyFile holds the cluster's record key (64 hex digits), which
	// authenticates every store record that grants power (sessions,
	// avatars, step-ups, the ledger, ...; see docs/architecture.md
	// "Records are sealed"). Default DataDir/record.key, created on first
	// start. It never enters NATS; every node of a cluster must be given
	// the same key, and a node with another one refuses to start.
	RecordKeyFile string
	// Biometrics tunes the biometrics engine; zero values are its
	// defaults. Its Logger defaults to the realm's.
	Biometrics biometrics.Config
	// WebRTCUDPPort makes every WebRTC peer connection share this one UDP
	// port, for a firewall that opens one; default 0 gives each peer
	// connection its own ephemeral ports. Only a peer connection's own
	// ports date its frames by the kernel's receive stamps: on the shared
	// port they are dated by their read (docs/biometrics.md).
	WebRTCUDPPort int
	// WebRTCPublicIPs are this node's public addresses when it sits
	// behind a 1:1 NAT, as cloud machines do: its peer connections offer
	// them beside their own addresses, so that clients outside the NAT
	// reach the node's UDP ports. At most one IPv4 and one IPv6 address;
	// none by default.
	WebRTCPublicIPs []netip.Addr
	// Assets configures the asset ledger and marketplace; see AssetsConfig.
	Assets AssetsConfig
	// AdminRole is the role that may list avatars and change their roles
	// (GET /v1/avatars, PUT /v1/avatars/{id}/roles); default "admin". It
	// is also Assets.AdminRole's default.
	AdminRole string
	// DisableBootstrapAdmin turns the bootstrap off: by default the first
	// avatar registered on a realm that has no administrator becomes one,
	// with BootstrapAdminRoles, exactly one across every node of the
	// realm. Off, nobody is promoted and, as no one holds AdminRole, no
	// role can be granted through the API.
	DisableBootstrapAdmin bool
	// BootstrapAdminRoles are the roles the bootstrap gives; default
	// AdminRole, "operator" and "supervisor" (what the built-in scenes ask
	// of a twin operator and an approver). They must include AdminRole.
	BootstrapAdminRoles []string
	// AuditRoles are the roles whose avatars read every decision in the
	// audit log (GET /v1/audit); default AdminRole and "auditor". Any
	// other signed-in avatar reads only the decisions it is the actor of.
	// An empty, non-nil list lets nobody read all of it.
	AuditRoles []string
	// CeremonyRate limits the passkey ceremony calls (begin and finish of
	// registration, sign-in and step-up) of one client address: a token
	// bucket of this many a second; default 5. Negative: no limit.
	CeremonyRate float64
	// CeremonyBurst is how many ceremony calls one client address may
	// make at once before CeremonyRate applies; default 50.
	CeremonyBurst int
	// MaxPendingCeremonies caps the ceremonies this node has begun that
	// are neither finished nor expired (each is a stored record for up to
	// 2 minutes); default 10000, per node. Negative: no cap.
	MaxPendingCeremonies int
	// MaxSessionsPerAvatar caps the live sessions of one avatar: a sign-in
	// beyond it revokes the avatar's oldest sessions; default 32, at most
	// session.MaxPerAvatar. Negative: no cap but that one.
	MaxSessionsPerAvatar int
	// MaxLivePerAvatar caps the realm WebSockets of one avatar on this
	// node (one a session, see live_takeover.go); beyond it a connection
	// is refused with 429; default 8. Negative: no cap.
	MaxLivePerAvatar int
	// MaxTwinFeedsPerAvatar caps the twin console feeds (GET
	// /v1/twins/feed) one avatar holds open on this node; beyond it a
	// feed is refused with 429; default 4. Negative: no cap.
	MaxTwinFeedsPerAvatar int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the
	// realm believes, for the client address that limits and trust
	// signals use. Default none: the address is the connection's peer.
	TrustedProxies []netip.Prefix
	// OTelEndpoint, when set, exports OpenTelemetry traces over OTLP/HTTP
	// to the collector at this URL (e.g. http://localhost:4318): HTTP
	// requests, policy decisions, twin deliveries and, through the trace
	// context carried in NATS headers, the gateways that carry commands
	// out. Off by default.
	OTelEndpoint string
	// TracerProvider, when set, is used instead of OTelEndpoint: for a
	// program that embeds the realm and has its own, and for tests.
	TracerProvider trace.TracerProvider
	// Clock is what every part reads the time from and arms its expiry
	// timers on; default the system's. Tests and simulations set a
	// clock.Manual to move time instead of waiting for it.
	Clock clock.Clock
	// Logger; default discards.
	Logger *slog.Logger
}

// BackgroundExchange configures the exchange of background statistics
// with other realms (Config.Background).
type BackgroundExchange = peerbackground.Config

// BackgroundPeer is a realm whose background statistics this realm
// fetches.
type BackgroundPeer = peerbackground.Peer

// BackgroundKeyName names a node's background exchange key, the name its
// verifier key carries: "<realm>/zerorealm/background/<node>".
func BackgroundKeyName(rpID, node string) string { return peerbackground.KeyName(rpID, node) }

// DefaultTemplateKeyFile is the template key's file in the data directory
// when Config.TemplateKeyFile does not name one.
const DefaultTemplateKeyFile = xr.TemplateKeyFile

// BackgroundRealmKeyName names the realm's own background key, whose seed
// is biometrics.ExchangeSeed of the template key.
func BackgroundRealmKeyName(rpID string) string { return peerbackground.RealmKeyName(rpID) }

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("realm: invalid configuration")

// Limits on what an unauthenticated client, or one avatar, can make the
// realm hold: passkey ceremonies (each a stored record until it is
// finished or expires), sessions, and live connections. Every refusal is
// 429 with Retry-After, as an RFC 9457 problem. The ceremony and session
// limits are enforced by the identity part (identity.Limits); the realm
// keeps their defaults, which its Config documents.
const (
	defaultCeremonyRate         = 5
	defaultCeremonyBurst        = 50
	defaultMaxPendingCeremonies = 10_000
	defaultMaxSessionsPerAvatar = 32
	defaultMaxLivePerAvatar     = 8
	defaultMaxTwinFeeds         = 4
)

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "localhost:8080"
	}
	if c.Prefix == "" {
		c.Prefix = "zr"
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 4 * time.Second
	}
	if c.NodeHeartbeat <= 0 {
		c.NodeHeartbeat = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = edge.DefaultRequestTimeout
	}
	if c.MinFreeDisk == 0 {
		c.MinFreeDisk = ops.DefaultMinFreeDisk
	}
	if c.RPID == "" {
		c.RPID = "localhost"
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = 30 * time.Minute
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = 12 * time.Hour
	}
	if c.AdminRole == "" {
		c.AdminRole = "admin"
	}
	if c.Assets.AdminRole == "" {
		c.Assets.AdminRole = c.AdminRole
	}
	if c.AuditRoles == nil {
		c.AuditRoles = []string{c.AdminRole, "auditor"}
	}
	if c.BootstrapAdminRoles == nil {
		c.BootstrapAdminRoles = []string{c.AdminRole, "operator", "supervisor"}
	}
	if c.CeremonyRate == 0 {
		c.CeremonyRate = defaultCeremonyRate
	}
	if c.CeremonyBurst <= 0 {
		c.CeremonyBurst = defaultCeremonyBurst
	}
	if c.MaxPendingCeremonies == 0 {
		c.MaxPendingCeremonies = defaultMaxPendingCeremonies
	}
	if c.MaxSessionsPerAvatar == 0 {
		c.MaxSessionsPerAvatar = defaultMaxSessionsPerAvatar
	}
	if c.MaxLivePerAvatar == 0 {
		c.MaxLivePerAvatar = defaultMaxLivePerAvatar
	}
	if c.MaxTwinFeedsPerAvatar == 0 {
		c.MaxTwinFeedsPerAvatar = defaultMaxTwinFeeds
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock = clock.Or(c.Clock); c.Assets.Now == nil {
		c.Assets.Now = c.Clock.Now
	}
}

func (c *Config) validate() error {
	var problems []string
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		problems = append(problems, fmt.Sprintf("listen address %q: %v (want host:port, e.g. localhost:8080)", c.Listen, err))
	}
	if c.DataDir == "" {
		problems = append(problems, "data dir is required")
	}
	if c.AgentApprovalExpiry < 0 || c.AgentApprovalExpiry > approval.MaxExpiry {
		problems = append(problems, fmt.Sprintf("agent approval expiry %s: want 0 (the default, %s) up to %s", c.AgentApprovalExpiry, approval.DefaultExpiry, approval.MaxExpiry))
	}
	for _, u := range c.NATS {
		parsed, err := url.Parse(u)
		if err != nil || parsed.Host == "" || !(parsed.Scheme == "nats" || parsed.Scheme == "tls" || parsed.Scheme == "ws" || parsed.Scheme == "wss") {
			problems = append(problems, fmt.Sprintf("NATS URL %q: want nats://host:port", u))
		}
	}
	if c.NATSListen != "" && len(c.NATS) == 0 {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			problems = append(problems, fmt.Sprintf("NATS listen address %q: %v (want host:port, or empty to disable)", c.NATSListen, err))
		}
	}
	problems = append(problems, c.natsAuth().ProblemsFor(len(c.NATS) > 0)...)
	if c.Node != "" && !node.NamePattern.MatchString(c.Node) {
		problems = append(problems, fmt.Sprintf("node name %q: want 1 to 64 letters, digits, '-' or '_'", c.Node))
	}
	if !node.NamePattern.MatchString(c.Prefix) {
		problems = append(problems, fmt.Sprintf("prefix %q: want 1 to 64 letters, digits, '-' or '_'", c.Prefix))
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			problems = append(problems, fmt.Sprintf("origin %q: want scheme://host[:port], e.g. https://realm.example", o))
		}
	}
	problems = append(problems, xr.MaxStreamsProblems(c.MaxXRStreams)...)
	problems = append(problems, peerbackground.Problems(c.Background)...)
	problems = append(problems, xr.CPUReserveProblems(c.XRCPUReserve)...)
	problems = append(problems, xr.ThinBelowProblems(c.XRThinBelow)...)
	if c.WebRTCUDPPort < 0 || c.WebRTCUDPPort > 65535 {
		problems = append(problems, fmt.Sprintf("WebRTC UDP port %d: want 1 to 65535, or 0 for ephemeral ports", c.WebRTCUDPPort))
	}
	problems = append(problems, xr.PublicIPProblems(c.WebRTCPublicIPs)...)
	problems = append(problems, c.Assets.problems()...)
	problems = append(problems, identity.RoleProblems(c.AdminRole, c.AuditRoles, c.BootstrapAdminRoles, c.DisableBootstrapAdmin)...)
	if c.MaxSessionsPerAvatar > session.MaxPerAvatar {
		problems = append(problems, fmt.Sprintf("max sessions per avatar %d: at most %d", c.MaxSessionsPerAvatar, session.MaxPerAvatar))
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			problems = append(problems, "trusted proxies: an invalid prefix (want CIDRs such as 10.0.0.0/8)")
		}
	}
	if c.SessionIdle > c.SessionLifetime {
		problems = append(problems, fmt.Sprintf("session idle timeout %s is longer than the session lifetime %s", c.SessionIdle, c.SessionLifetime))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}

// natsAuth is what this node presents to a NATS cluster.
func (c *Config) natsAuth() natsembed.ClientAuth {
	return natsembed.ClientAuth{CredsFile: c.NATSCreds, NKeyFile: c.NATSNKey,
		TLSCAFile: c.NATSTLSCA, TLSCertFile: c.NATSTLSCert, TLSKeyFile: c.NATSTLSKey}
}

// AuditDir is where a node keeps, outside NATS, its last audit checkpoint
// and the last checkpoint it witnessed of every other node.
const AuditDir = node.AuditDir
