package xr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/zerorealm/zerorealm/clients/pionlog"
)

// xrDataChannel is the label of the one data channel frames are read from.
const xrDataChannel = "xr"

// xrGatherTimeout bounds how long the realm gathers its own candidates
// before it answers. It gathers host candidates (and the configured
// address), which takes milliseconds, so its answer carries them all and
// the realm never trickles.
const xrGatherTimeout = 5 * time.Second

// newWebRTCAPI builds the node's pion API. Loopback candidates are
// included, so a client on the realm's own machine (a load generator, a
// test) connects; mDNS is off, because the realm has no address to hide and
// each responder would hold a multicast socket. With a UDP port configured,
// every peer connection shares that one socket.
func newWebRTCAPI(udpPort int, log *slog.Logger) (*webrtc.API, func() error, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.LoggerFactory = pionlog.Factory{Log: log.With("component", "webrtc")} // pion's warnings at info: they are routine ICE events
	closeMux := func() error { return nil }
	if udpPort > 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(udpPort, ice.UDPMuxFromPortWithLoopback(),
			ice.UDPMuxFromPortWithLogger(pionlog.Factory{Log: log}.NewLogger("udpmux")))
		if err != nil {
			return nil, nil, fmt.Errorf("realm: WebRTC UDP port %d: %w", udpPort, err)
		}
		se.SetICEUDPMux(mux)
		closeMux = mux.Close
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)), closeMux, nil
}

// peerConn is the WebRTC peer connection of one live connection.
type peerConn struct {
	pc        *webrtc.PeerConnection
	closeOnce sync.Once
	onClose   func()
}

func (p *peerConn) close() {
	p.closeOnce.Do(func() {
		_ = p.pc.Close()
		if p.onClose != nil {
			p.onClose()
		}
	})
}

// ClosePeer closes the connection's peer connection, if it has one: a
// revoked session's data channel must stop before the close frame has even
// been written.
func (l *Link) ClosePeer() { l.swapPeer(nil) }

// swapPeer makes p the connection's peer connection (nil for none) and
// closes the one it replaces.
func (l *Link) swapPeer(p *peerConn) {
	l.peerMu.Lock()
	old := l.peer
	l.peer = p
	l.peerMu.Unlock()
	if old != nil {
		old.close()
	}
}

var errWebRTC = errors.New("webrtc")

// Offer answers a client's offer with a new peer connection that
// reads frames from the client's "xr" data channel. A connection has one
// peer connection: a new offer replaces the previous one.
func (l *Link) Offer(sdp string) error {
	s, c := l.s, l.c
	if c.Closed() {
		return nil
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.log.Error("new peer connection", "err", err)
		return fmt.Errorf("%w: the realm could not create a peer connection", errWebRTC)
	}
	p := &peerConn{pc: pc}
	s.peerOpened()
	p.onClose = s.peerClosed

	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != xrDataChannel {
			s.log.Debug("data channel refused", "session", c.Session().ID, "label", dc.Label())
			_ = dc.Close()
			return
		}
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if m.IsString {
				s.m.message(transportWebRTC, "not-binary")
				return
			}
			c.Used()
			s.ingestFrames(l, transportWebRTC, m.Data)
		})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			l.peerMu.Lock()
			if l.peer == p {
				l.peer = nil
			}
			l.peerMu.Unlock()
			go p.close() // not from pion's own callback goroutine
		}
	})

	fail := func(what string, err error) error {
		p.close()
		return fmt.Errorf("%w: %s: %v", errWebRTC, what, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fail("the offer is not a usable session description", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail("no answer to this offer", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail("answer", err)
	}
	ctx, cancel := context.WithTimeout(c.Context(), xrGatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail("gathering the realm's candidates", ctx.Err())
	}

	l.swapPeer(p)
	// A revocation may have closed the connection meanwhile; its closePeer
	// ran before this peer was attached, so close it here.
	if c.Closed() {
		l.ClosePeer()
		return nil
	}
	c.Push(encodeMessage(message{Type: "webrtc.answer", SDP: pc.LocalDescription().SDP}))
	return nil
}

// ICECandidate is RTCIceCandidateInit, as browsers' toJSON() gives it.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Candidate adds a candidate the client trickled after its offer; nil is
// the end of its candidates.
func (l *Link) Candidate(cand *ICECandidate) error {
	if cand == nil {
		return nil // end of candidates: nothing to do, ICE keeps checking what it has
	}
	l.peerMu.Lock()
	p := l.peer
	l.peerMu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: webrtc.candidate before webrtc.offer: send the offer first", errWebRTC)
	}
	init := webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid, SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment}
	if err := p.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("%w: candidate refused: %v", errWebRTC, err)
	}
	return nil
}
