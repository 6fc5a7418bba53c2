package peerbackground

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// maxShareBytes bounds a peer's answer: a share is about 80 KB (the sums
// of 58 features and two 58 × 58 matrices, in base64), a problem less.
const maxShareBytes = 1 << 20

// ErrShareRefused is wrapped by every refusal of a peer's answer: one
// this node cannot trust, whoever sent it.
var ErrShareRefused = errors.New("peerbackground: share refused")

// ErrNoShare is wrapped when the peer answers without a share (an error
// status: it does not name this node a reader, knows too few people, is
// busy).
var ErrNoShare = errors.New("peerbackground: no share")

// fetchOutcome is the outcome label of a fetch that ended in err:
// refused (an answer this node cannot trust, which an operator may want to
// be told of apart from an outage) or failed (no answer, or no share in
// it).
func fetchOutcome(err error) string {
	if errors.Is(err, ErrShareRefused) {
		return "refused"
	}
	return "failed"
}

// Run fetches every peer's statistics until ctx ends: at once, then
// every Config.Every (within a tenth either way, so that nodes and realms
// do not fetch in step), and after a failure again sooner, from 30 s
// doubling up to Every. Statistics not renewed for MaxAge stop counting.
func (s *Service) Run(ctx context.Context) {
	var following sync.WaitGroup
	for _, p := range s.peers {
		following.Go(func() { s.follow(ctx, p) })
	}
	following.Wait()
}

// retryFirst is the first wait after a failed fetch.
const retryFirst = 30 * time.Second

func (s *Service) follow(ctx context.Context, p *peer) {
	var fetched time.Time // of the statistics in use; zero while none
	failures := 0
	for {
		var wait time.Duration
		if err := s.fetch(ctx, p); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.m.fetches.WithLabelValues(p.realm, fetchOutcome(err)).Inc()
			wait = min(retryFirst<<min(failures-1, 16), s.cfg.Every)
			s.log.Warn("peer realm's background statistics not fetched", "peer", p.realm, "url", p.url, "err", err, "again_in", wait)
			if !fetched.IsZero() && s.deps.Clock.Now().Sub(fetched) > s.cfg.MaxAge {
				_ = s.deps.Engine.SetPeerBackground(p.realm, nil) // removing never fails
				s.m.people.WithLabelValues(p.realm).Set(0)
				fetched = time.Time{}
				s.log.Warn("peer realm's background statistics dropped: not renewed in time", "peer", p.realm, "max_age", s.cfg.MaxAge)
			}
		} else {
			failures = 0
			fetched = s.deps.Clock.Now()
			s.m.fetches.WithLabelValues(p.realm, "ok").Inc()
			wait = time.Duration(float64(s.cfg.Every) * (0.9 + 0.2*rand.Float64()))
		}
		if !fetched.IsZero() {
			// Wake at MaxAge at the latest, so that statistics are dropped
			// on time even while the next try is an hour away.
			wait = max(min(wait, fetched.Add(s.cfg.MaxAge).Sub(s.deps.Clock.Now())+time.Second), time.Second)
		}
		t := s.deps.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// fetch asks p for its statistics and, once its answer is verified,
// whitens with them. A refused answer changes nothing.
func (s *Service) fetch(ctx context.Context, p *peer) error {
	r := newRequest(p.realm, s.deps.Clock.Now())
	msg, err := note.Sign(&note.Note{Text: r.Text()}, s.signers...)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+SharePath, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.deps.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxShareBytes+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s: %s", ErrNoShare, p.realm, resp.Status, problemDetail(body))
	}
	if len(body) > maxShareBytes {
		return fmt.Errorf("%w: the answer is over %d bytes", ErrShareRefused, maxShareBytes)
	}
	share, err := s.openShare(p, r, body)
	if err != nil {
		return err
	}
	if err := s.deps.Engine.SetPeerBackground(p.realm, share.Statistics); err != nil {
		return fmt.Errorf("%w: %w", ErrShareRefused, err)
	}
	s.m.people.WithLabelValues(p.realm).Set(float64(share.Statistics.People))
	s.log.Info("peer realm's background statistics fetched", "peer", p.realm, "people", share.Statistics.People)
	return nil
}

// openShare verifies a share against the peer's pinned keys and checks
// that it answers r, for this node, now.
func (s *Service) openShare(p *peer, r Request, msg []byte) (Share, error) {
	n, err := note.Open(msg, p.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Share{}, fmt.Errorf("%w: signed by no key pinned for %s", ErrShareRefused, p.realm)
		}
		return Share{}, fmt.Errorf("%w: %w", ErrShareRefused, err)
	}
	share, err := ParseShare(n.Text)
	if err != nil {
		return Share{}, fmt.Errorf("%w: %w", ErrShareRefused, err)
	}
	switch {
	case share.Realm != p.realm:
		return Share{}, fmt.Errorf("%w: the share is of realm %q, not %q", ErrShareRefused, share.Realm, p.realm)
	case !slices.Contains(s.keyNames, share.Reader):
		return Share{}, fmt.Errorf("%w: the share is for %q, not this node (%q)", ErrShareRefused, share.Reader, s.keyNames)
	case !bytes.Equal(share.Nonce, r.Nonce):
		return Share{}, fmt.Errorf("%w: the share answers another request (its nonce is not this request's)", ErrShareRefused)
	}
	if d := share.Time.Sub(s.deps.Clock.Now()); d > Skew || d < -Skew {
		return Share{}, fmt.Errorf("%w: the share is dated %s, %s from this node's clock", ErrShareRefused, share.Time.Format(time.RFC3339), d.Round(time.Second))
	}
	return share, nil
}

// problemDetail is the detail of an RFC 9457 answer, or the start of
// whatever else came.
func problemDetail(body []byte) string {
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return clip(p.Detail) + " (" + p.Type + ")"
	}
	return fmt.Sprintf("%q", clip(string(body)))
}
