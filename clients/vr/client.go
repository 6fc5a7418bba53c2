package vr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

// Transport is how frames travel to the realm.
type Transport string

const (
	// WebRTC sends frames over the data channel "xr", unordered and without
	// retransmits: a late pose is worth nothing, so it is never resent and
	// never holds up the next one.
	WebRTC Transport = "webrtc"
	// WebSocket sends frames as binary messages on the realm WebSocket,
	// for networks where WebRTC cannot connect.
	WebSocket Transport = "websocket"
)

// closeSessionEnded is the realm's close code for a revoked or expired
// session.
const closeSessionEnded = 4401

// closeReplaced is the realm's close code for a connection whose session
// connected again elsewhere.
const closeReplaced = 4409

// dataChannelHighWater is how much the data channel may have queued before
// Send drops a message instead: motion that cannot leave now is stale by
// the time it could.
const dataChannelHighWater = 256 << 10

const (
	defaultDialTimeout = 15 * time.Second
	writeWait          = 5 * time.Second
)

var (
	// ErrClosed is returned by Send after the client was closed, by either
	// side. Err tells why.
	ErrClosed = errors.New("vr: client closed")
	// ErrSessionEnded matches the CloseError of a realm that ended the
	// session (signed out, revoked, expired): sign in again.
	ErrSessionEnded = errors.New("vr: session ended")
	// ErrReplaced matches the CloseError of a connection the realm closed
	// because the same session connected again (another device or
	// process): only the newest stays open. Reconnecting automatically
	// would take the session back from the newer connection.
	ErrReplaced = errors.New("vr: replaced by a newer connection of the session")
	// ErrRefused is wrapped by Dial when the realm refused the connection
	// or the WebRTC offer; the error carries the realm's explanation.
	ErrRefused = errors.New("vr: refused by the realm")
)

// CloseError is how the realm closed the WebSocket.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("vr: realm closed the connection: %d %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrSessionEnded) true for the session-ended code
// and errors.Is(err, ErrReplaced) for the replaced one.
func (e *CloseError) Is(target error) bool {
	return (target == ErrSessionEnded && e.Code == closeSessionEnded) ||
		(target == ErrReplaced && e.Code == closeReplaced)
}

// Config configures Dial. URL and Token are required.
type Config struct {
	// URL is the realm's base URL, http(s)://host:port. The WebSocket is
	// URL + "/v1/realm" (ws or wss).
	URL string
	// Token is the session token (zrs_…) from a passkey sign-in.
	Token string
	// Transport carries the frames; default WebRTC.
	Transport Transport
	// Origin is sent as the Origin header when set. Programs outside a
	// browser need none.
	Origin string
	// ICEServers are STUN or TURN URLs for WebRTC; default none, which
	// connects over host candidates only (same network, or a realm with a
	// public address).
	ICEServers []string
	// OnTrust is called for the trust in the hello and for every trust
	// change the realm pushes. OnScore is called for every scored window,
	// OnStatus for the realm's periodic stream status. They run on the
	// client's reader goroutine: return quickly.
	OnTrust  func(Trust)
	OnScore  func(Score)
	OnStatus func(Status)
	// OnPresence is called when another member of the joined scene joins,
	// leaves or moves into a zone; OnPoses for every update of the other
	// members' poses. OnRefusal is called for every refusal the realm sends
	// that no Join is waiting for, such as a zone the avatar may not enter.
	// They run on the reader goroutine too.
	OnPresence func(Presence)
	OnPoses    func(Poses)
	OnRefusal  func(*RefusalError)
	// OnRawPoses, when set, receives every poses message as the realm sent
	// it, unparsed, instead of OnPoses: for programs that need only part
	// of each, such as a load generator holding a thousand members. data
	// is reused after the call returns.
	OnRawPoses func(data []byte)
	// OnPasskeyAdded is called when a passkey was added to the avatar,
	// through any of its sessions: show it to the person, for a passkey
	// they did not add means their session token was taken. It runs on
	// the reader goroutine too.
	OnPasskeyAdded func(PasskeyAdded)
	// Logger; default discards.
	Logger *slog.Logger
}

// Trust is the session's trust assessment, as the realm publishes it.
type Trust struct {
	State       string         `json:"state"`
	Score       float64        `json:"score"`
	At          time.Time      `json:"at"`
	Factors     []Factor       `json:"factors"`
	Explanation string         `json:"explanation"`
	Context     map[string]any `json:"context"`
}

// PasskeyAdded is the realm's notice that the avatar has a new passkey.
type PasskeyAdded struct {
	Passkey struct {
		ID                string    `json:"id"` // base64url credential ID
		Name              string    `json:"name"`
		Created           time.Time `json:"created"`
		AttestationFormat string    `json:"attestation_format"`
		Attested          bool      `json:"attested"`
		Synced            bool      `json:"synced"`
	} `json:"passkey"`
	At time.Time `json:"at"`
}

// Factor is one term of the trust score, explained.
type Factor struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Effect string  `json:"effect"`
}

// Score is the realm's verdict on one window of motion: the match
// probability and the trust right after it. Seq and TimeUS name the newest
// frame the window included, so a client can time the round trip.
type Score struct {
	At          time.Time `json:"at"`
	Seq         uint32    `json:"seq"`
	TimeUS      uint64    `json:"time_us"`
	Probability float64   `json:"probability"`
	State       string    `json:"state"`
	Score       float64   `json:"score"`
}

// Status is the realm's count of the session's frames and the state of its
// biometric enrollment: "not-enrolled", "enrolling", "enrolled", or
// "unknown" while the realm could not read whether the avatar has a
// template (it reads again; see clients/PROTOCOL.md).
type Status struct {
	At             time.Time         `json:"at"`
	Transport      string            `json:"transport"`
	FramesAccepted uint64            `json:"frames_accepted"`
	FramesRejected map[string]uint64 `json:"frames_rejected"`
	Enrollment     string            `json:"enrollment"`
	// EnrollmentProgress is, while Enrollment is "enrolling", the share
	// of the motion collected (0 to 1); nil otherwise.
	EnrollmentProgress *float64 `json:"enrollment_progress,omitempty"`
}

// Hello is the realm's first message on the WebSocket.
type Hello struct {
	V       int             `json:"v"`
	Session json.RawMessage `json:"session"`
	Avatar  json.RawMessage `json:"avatar"`
	Trust   Trust           `json:"trust"`
}

// Stats counts what the client sent.
type Stats struct {
	Messages uint64 // frame messages handed to the transport
	Frames   uint64
	Dropped  uint64 // messages dropped because the data channel was congested
}

// Client is one connection to the realm. Send may be called from one
// goroutine at a time; the rest is safe for concurrent use.
type Client struct {
	cfg       Config
	log       *slog.Logger
	ws        *websocket.Conn
	transport Transport
	hello     Hello

	writeMu sync.Mutex // gorilla/websocket allows one writer
	buf     []byte

	pc *webrtc.PeerConnection
	dc *webrtc.DataChannel

	answers chan string
	refusal chan error

	joinSlot chan struct{} // one Join at a time
	joinMu   sync.Mutex
	joinWait chan joinAnswer // the pending Join's, nil when none

	messages, frames, dropped atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error
}

// Dial opens the realm WebSocket, reads the hello and, for WebRTC, offers
// the data channel and waits until it is open. Without a deadline on ctx
// it gives up after 15s.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Token == "" {
		return nil, errors.New("vr: Config.URL and Config.Token are required")
	}
	if cfg.Transport == "" {
		cfg.Transport = WebRTC
	}
	if cfg.Transport != WebRTC && cfg.Transport != WebSocket {
		return nil, fmt.Errorf("vr: unknown transport %q (want %q or %q)", cfg.Transport, WebRTC, WebSocket)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultDialTimeout)
		defer cancel()
	}
	wsURL, err := liveURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	header := http.Header{"Authorization": {"Bearer " + cfg.Token}}
	if cfg.Origin != "" {
		header.Set("Origin", cfg.Origin)
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: WebSocket %s answered %s", ErrRefused, wsURL, resp.Status)
		}
		return nil, fmt.Errorf("vr: dial %s: %w", wsURL, err)
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger, ws: ws, transport: cfg.Transport,
		answers: make(chan string, 1), refusal: make(chan error, 4), done: make(chan struct{}),
		joinSlot: make(chan struct{}, 1),
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	_, data, err := ws.ReadMessage()
	if err == nil {
		var m realmMessage
		m, err = parseRealmMessage(data)
		if err == nil && m.Type != "hello" {
			err = fmt.Errorf("first message is %q, want hello", m.Type)
		}
		if err == nil {
			err = json.Unmarshal(data, &c.hello)
		}
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("vr: read hello: %w", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	if cfg.OnTrust != nil {
		cfg.OnTrust(c.hello.Trust)
	}
	go c.readLoop()
	if cfg.Transport == WebRTC {
		if err := c.openDataChannel(ctx); err != nil {
			c.shutdown(err)
			return nil, err
		}
	}
	return c, nil
}

func liveURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("vr: realm URL %q: want http(s)://host:port", base)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("vr: realm URL %q: want http(s)://host:port", base)
	}
	u.Path += "/v1/realm"
	return u.String(), nil
}

// Hello is the realm's hello: the session, the avatar and the trust at
// connection time.
func (c *Client) Hello() Hello { return c.hello }

// Transport is the transport frames travel on.
func (c *Client) Transport() Transport { return c.transport }

// WebRTCState is the state of the client's peer connection and of its
// data channel, as WebRTC names them ("connected", "open"), or two empty
// strings over the WebSocket transport. The realm keeps both open when it
// refuses or sheds the session's stream (a node-busy RefusalError): the
// client waits its RetryAfter and sends on the same channel. Once the
// channel is no longer "open" nothing sent on it arrives, and Send
// returns an error: dial again to stream over WebRTC.
func (c *Client) WebRTCState() (peer, channel string) {
	if c.transport != WebRTC {
		return "", ""
	}
	return c.pc.ConnectionState().String(), c.dc.ReadyState().String()
}

// Stats counts what was sent so far.
func (c *Client) Stats() Stats {
	return Stats{Messages: c.messages.Load(), Frames: c.frames.Load(), Dropped: c.dropped.Load()}
}

// Send sends frames (at most MaxFramesPerMessage) as one message. Over
// WebRTC a message is dropped, not queued, while the channel is congested;
// Stats counts the drops.
func (c *Client) Send(frames []Frame) error {
	select {
	case <-c.done:
		return fmt.Errorf("%w: %w", ErrClosed, c.Err())
	default:
	}
	var err error
	c.buf, err = AppendMessage(c.buf[:0], frames)
	if err != nil {
		return err
	}
	if c.transport == WebRTC {
		if c.dc.BufferedAmount() > dataChannelHighWater {
			c.dropped.Add(1)
			return nil
		}
		err = c.dc.Send(c.buf)
	} else {
		err = c.write(websocket.BinaryMessage, c.buf)
	}
	if err != nil {
		return fmt.Errorf("vr: send frames: %w", err)
	}
	c.messages.Add(1)
	c.frames.Add(uint64(len(frames)))
	return nil
}

func (c *Client) write(kind int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(kind, data)
}

func (c *Client) writeJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(websocket.TextMessage, data)
}

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended: a *CloseError when the realm closed it
// (errors.Is(err, ErrSessionEnded) when the session ended), ErrClosed
// after Close, nil while it is open.
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close ends the connection: the data channel, then the WebSocket with a
// normal close.
func (c *Client) Close() error {
	c.writeMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	c.shutdown(ErrClosed)
	return nil
}

func (c *Client) shutdown(cause error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.err = cause
		c.errMu.Unlock()
		if c.pc != nil {
			_ = c.pc.Close()
		}
		_ = c.ws.Close()
		close(c.done)
	})
}

// readLoop reads the realm's messages until the connection ends, into one
// buffer reused for every message: a member of a crowded scene receives a
// poses message of tens of KiB twenty times a second.
func (c *Client) readLoop() {
	var buf bytes.Buffer
	for {
		kind, rd, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		data := buf.Bytes()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.shutdown(&CloseError{Code: ce.Code, Reason: ce.Text})
			} else {
				c.shutdown(fmt.Errorf("vr: connection lost: %w", err))
			}
			return
		}
		if kind != websocket.TextMessage {
			continue
		}
		if c.cfg.OnRawPoses != nil && bytes.HasPrefix(data, rawPosesPrefix) {
			c.cfg.OnRawPoses(data)
			continue
		}
		m, err := parseRealmMessage(data)
		if err != nil {
			c.log.Warn("realm message not understood", "err", err)
			continue
		}
		c.dispatch(m)
	}
}

func (c *Client) dispatch(m realmMessage) {
	switch m.Type {
	case "trust":
		if c.cfg.OnTrust != nil && m.Trust != nil {
			c.cfg.OnTrust(*m.Trust)
		}
	case "xr.score":
		if c.cfg.OnScore != nil && m.score != nil {
			c.cfg.OnScore(*m.score)
		}
	case "xr.status":
		if c.cfg.OnStatus != nil && m.status != nil {
			c.cfg.OnStatus(*m.status)
		}
	case "webrtc.answer":
		select {
		case c.answers <- m.SDP:
		default:
		}
	case "joined":
		c.answerJoin(joinAnswer{joined: *m.joined})
	case "presence":
		if c.cfg.OnPresence != nil {
			for _, p := range m.presence {
				c.cfg.OnPresence(p)
			}
		}
	case "poses":
		if c.cfg.OnPoses != nil {
			c.cfg.OnPoses(*m.poses)
		}
	case "passkey-added":
		if c.cfg.OnPasskeyAdded != nil && m.passkeyAdded != nil {
			c.cfg.OnPasskeyAdded(*m.passkeyAdded)
		}
	case "error":
		var refused error = errors.New(m.Error)
		if m.Code != "" {
			refusal := &RefusalError{Code: m.Code, Reason: m.Reason, RetryAfter: time.Duration(m.RetryAfter) * time.Second}
			if answersJoin(m.Code) && c.answerJoin(joinAnswer{err: refusal}) {
				return
			}
			refused = refusal
			if c.cfg.OnRefusal != nil {
				c.cfg.OnRefusal(refusal)
				// A WebRTC offer waiting for its answer gets its refusal
				// too.
				if m.Code != CodeNodeBusy {
					return
				}
			}
		}
		if m.Code == "" || c.cfg.OnRefusal == nil {
			c.log.Warn("the realm refused a message", "error", m.Error)
		}
		select {
		case c.refusal <- refused:
		default:
		}
	}
}

// rawPosesPrefix starts every poses message: the realm writes the type
// first.
var rawPosesPrefix = []byte(`{"type":"poses"`)

// realmFields are the fields a realm message may carry at its top level,
// apart from xr.
type realmFields struct {
	Type  string `json:"type"`
	Trust *Trust `json:"trust,omitempty"`
	SDP   string `json:"sdp,omitempty"`
	Error string `json:"error,omitempty"`
	// Code and Reason are set on refusals about scenes and limits.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// RetryAfter is in seconds, with node-busy.
	RetryAfter int `json:"retry_after,omitempty"`
}

// realmMessage is any message from the realm; xr carries a Score or a
// Status depending on the type.
type realmMessage struct {
	realmFields
	XR json.RawMessage `json:"xr,omitempty"`

	score        *Score
	status       *Status
	joined       *Joined
	presence     []Presence
	poses        *Poses
	passkeyAdded *PasskeyAdded
}

// xrMessage is a score or a status message read in one pass, its xr
// decoded straight into T instead of kept raw and decoded again.
type xrMessage[T Score | Status] struct {
	realmFields
	XR *T `json:"xr"`
}

// The realm writes a message's type first; these start the messages a
// streaming client receives most.
var (
	xrScorePrefix  = []byte(`{"type":"xr.score",`)
	xrStatusPrefix = []byte(`{"type":"xr.status",`)
)

// parseRealmMessage reads one message from the realm. Unknown types are
// returned as they are, for the protocol may grow.
//
// A score or a status, several a second per stream, is read in one pass
// (parseXR); whatever that pass does not accept is read again in full, so
// that every error is the full reading's, and the two agree on every
// message (FuzzParseRealmMessage) but one whose object names xr twice,
// which JSON leaves undefined and the realm never writes.
func parseRealmMessage(data []byte) (realmMessage, error) {
	switch {
	case bytes.HasPrefix(data, xrScorePrefix):
		if f, s, ok := parseXR[Score](data, "xr.score"); ok {
			return realmMessage{realmFields: f, score: s}, nil
		}
	case bytes.HasPrefix(data, xrStatusPrefix):
		if f, s, ok := parseXR[Status](data, "xr.status"); ok {
			return realmMessage{realmFields: f, status: s}, nil
		}
	}
	return parseRealmMessageInFull(data)
}

// parseXR reads a message of type typ whose xr is a T, in one pass; ok is
// false for anything else, including a message whose xr is absent or null.
func parseXR[T Score | Status](data []byte, typ string) (realmFields, *T, bool) {
	var x xrMessage[T]
	if err := json.Unmarshal(data, &x); err != nil || x.Type != typ || x.XR == nil {
		return realmFields{}, nil, false
	}
	return x.realmFields, x.XR, true
}

// parseRealmMessageInFull reads any message from the realm, its xr kept
// raw until its type says what it holds.
func parseRealmMessageInFull(data []byte) (realmMessage, error) {
	var m realmMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return realmMessage{}, fmt.Errorf("vr: realm message: %w", err)
	}
	if m.Type == "" {
		return realmMessage{}, errors.New("vr: realm message without a type")
	}
	switch m.Type {
	case "xr.score":
		var s Score
		if err := json.Unmarshal(m.XR, &s); err != nil {
			return realmMessage{}, fmt.Errorf("vr: xr.score: %w", err)
		}
		m.score = &s
	case "xr.status":
		var s Status
		if err := json.Unmarshal(m.XR, &s); err != nil {
			return realmMessage{}, fmt.Errorf("vr: xr.status: %w", err)
		}
		m.status = &s
	case "webrtc.answer":
		if m.SDP == "" {
			return realmMessage{}, errors.New("vr: webrtc.answer without sdp")
		}
	case "joined", "presence", "poses":
		if err := parseSceneMessage(&m, data); err != nil {
			return realmMessage{}, err
		}
	case "passkey-added":
		var pa PasskeyAdded
		if err := json.Unmarshal(data, &pa); err != nil || pa.Passkey.ID == "" {
			return realmMessage{}, errors.New("vr: passkey-added without a passkey id")
		}
		m.passkeyAdded = &pa
	case "error":
		if m.Code != "" && m.Reason == "" {
			m.Reason = m.Error
		}
	}
	return m, nil
}
