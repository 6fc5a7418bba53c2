package realm

// Limits on what an unauthenticated client, or one avatar, can make the
// realm hold: passkey ceremonies (each a stored record until it is
// finished or expires), sessions, and live connections. Every refusal is
// 429 with Retry-After, as an RFC 9457 problem. The ceremony and session
// limits are enforced by the identity part (identity.Limits); the realm
// keeps their defaults, which its Config documents.

// Defaults of the limits; see Config.
const (
	defaultCeremonyRate         = 5
	defaultCeremonyBurst        = 50
	defaultMaxPendingCeremonies = 10_000
	defaultMaxSessionsPerAvatar = 32
	defaultMaxLivePerAvatar     = 8
)
