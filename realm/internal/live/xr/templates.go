package xr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/cpuload"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Start keeps this node's biometric population and live streams in step
// with the stored templates of the whole cluster: it loads every template
// now, and Run follows their changes. A template enrolled through another
// node joins this node's background model (a larger, real population
// whitens and normalizes better than the synthetic prior alone), and a
// template deleted through another node stops scoring here at once, as it
// does on the node that deleted it.
//
// The feed is opened (on bg, which Run's context must end with) before the
// load, so that a change made between the two is reported rather than
// lost.
func (s *Service) Start(ctx, bg context.Context) error {
	changes, err := s.templates.Changes(bg)
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if err := s.reconcileTemplates(ctx); err != nil {
		return fmt.Errorf("realm: load biometric templates: %w", err)
	}
	s.changes = changes
	return nil
}

// Run applies template changes until the feed Start opened closes, when
// its context ends, and until then measures the node's CPU for admission
// and stores again the templates the store did not take (unstored.go).
func (s *Service) Run(ctx context.Context) {
	var background sync.WaitGroup
	background.Go(func() { s.measureCPU(ctx, clock.Real{}, cpuload.NewMeter(cpuload.DefaultWindow, nil)) })
	background.Go(func() { s.storeAgain(ctx) })
	background.Go(func() { s.resealTemplates(ctx) })
	s.followTemplates(ctx, s.changes)
	background.Wait()
}

// resealTemplates seals again under the template key every template a
// key the key file holds as retired sealed, once when the node starts, in
// the background: a rotation must not hold up a node's start by reading
// and writing every template first, and a template under a retired key
// opens meanwhile. Once every node has started with the new key first,
// nothing is left under the retired one and it can leave the key files.
func (s *Service) resealTemplates(ctx context.Context) {
	stats, err := s.templates.Reseal(ctx)
	s.resealed.Store(stats)
	if stats == (biometrics.ResealStats{}) && err == nil {
		return // a key file of one key: nothing to do
	}
	log := s.log.Info
	if err != nil || stats.Rewritten > 0 {
		log = s.log.Warn
	}
	log("biometric templates under a retired template key sealed again", "resealed", stats.Resealed, "already_current", stats.Current,
		"do_not_open", stats.Unopened, "rewritten_under_a_retired_key", stats.Rewritten, "err", err)
}

// followTemplates applies template changes until the feed closes. A
// change whose template cannot be read (the store did not answer in time)
// is read again later, as is a reconcile that failed: a node that missed
// a template would not score its avatar against it, nor count it in its
// background, until the template changed again, which may be never.
func (s *Service) followTemplates(ctx context.Context, changes <-chan biometrics.TemplateChange) {
	var again templateRetries
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if at, ok := again.next(); ok {
			timer.Reset(time.Until(at))
		}
		select {
		case c, ok := <-changes:
			timer.Stop()
			if !ok {
				return
			}
			s.applyTemplateChange(ctx, c, &again)
		case <-timer.C:
			s.retryTemplates(ctx, &again, time.Now())
		}
	}
}

// applyTemplateChange applies one change of the feed, noting in again
// what must be read again.
func (s *Service) applyTemplateChange(ctx context.Context, c biometrics.TemplateChange, again *templateRetries) {
	switch {
	case c.Lost:
		// Nothing is served from the population that would be wrong to
		// serve for a while: the worst a missed delete does is keep
		// scoring a template its owner deleted, until Resumed
		// reconciles. Say so, since that is a privacy promise.
		s.log.Warn("biometric template feed lost: deletions through other nodes reach this node when it resumes")
	case c.Resumed:
		s.reconcileOrRetry(ctx, again, time.Now())
	case c.Deleted:
		again.done(c.AvatarID)
		s.templateDeleted(c.AvatarID)
	case c.Own:
		// Written by this node's own stream, which gave the engine the
		// template before it was stored: reading it back would only
		// copy 42 KB twice more per enrollment.
		again.done(c.AvatarID)
	default:
		if err := s.templateWritten(ctx, c.AvatarID); err != nil {
			again.read(c.AvatarID, time.Now())
			return
		}
		again.done(c.AvatarID)
	}
}

// reconcileOrRetry reconciles the population with the store, or notes in
// again that it must be tried again.
func (s *Service) reconcileOrRetry(ctx context.Context, again *templateRetries, now time.Time) {
	if err := s.reconcileTemplates(ctx); err != nil {
		if ctx.Err() == nil {
			again.reconcile.failed(now, 0)
			s.log.Error("reconcile biometric templates; trying again", "in", again.reconcile.next.Sub(now).Round(time.Second), "err", err)
		}
		return
	}
	// Every template was read, so nothing is left to read again.
	*again = templateRetries{}
}

// retryTemplates does what again holds that is due at now.
func (s *Service) retryTemplates(ctx context.Context, again *templateRetries, now time.Time) {
	if again.reconciling() && !now.Before(again.reconcile.next) {
		s.reconcileOrRetry(ctx, again, now)
		return
	}
	for _, avatarID := range again.due(now) {
		if err := s.templateWritten(ctx, avatarID); err != nil {
			again.read(avatarID, now)
			continue
		}
		again.done(avatarID)
	}
}

// templateDeleted makes the population and every stream of the avatar on
// this node forget its template. The node that deleted it has already
// forgotten it (and so does not know it any more).
func (s *Service) templateDeleted(avatarID string) {
	if s.reg.knows(avatarID) {
		s.forgetTemplate(avatarID)
		s.log.Info("biometric template deleted through another node: forgotten here", "avatar", avatarID)
	}
}

// templateWritten reads a written template (from the stream leader, so
// never an older value) into the population; an error is a read that
// failed, and nothing changed.
func (s *Service) templateWritten(parent context.Context, avatarID string) error {
	ctx, cancel := context.WithTimeout(parent, xrStoreTimeout)
	defer cancel()
	t, err := s.templates.Get(ctx, avatarID)
	switch {
	case err == nil:
		s.reg.learn(avatarID)
		s.engine.SetTemplate(avatarID, t)
		s.adoptStored(map[string]*biometrics.Template{avatarID: t})
	case errors.Is(err, store.ErrNotFound):
		s.templateDeleted(avatarID) // deleted again since
	default:
		if parent.Err() == nil {
			s.log.Error("read changed biometric template; reading it again", "avatar", avatarID, "err", err)
		}
		return err
	}
	return nil
}

// reconcileTemplates makes the population exactly the stored templates:
// every one that opens is set, and every avatar the node knew whose
// template is gone is forgotten. Templates that do not open under this
// node's key are counted, not fatal: one bad value must not keep a node
// from starting.
//
// Only avatars known before the read are forgotten: one that enrolls on
// this node while the read runs is not in it, and is not gone.
func (s *Service) reconcileTemplates(ctx context.Context) error {
	before := s.reg.knownAvatars()
	all, skipped, err := s.templates.All(ctx)
	if err != nil {
		return err
	}
	for id, t := range all {
		s.reg.learn(id)
		s.engine.SetTemplate(id, t)
	}
	s.adoptStored(all)
	for _, id := range before {
		if _, ok := all[id]; !ok {
			s.forgetTemplate(id)
		}
	}
	// The model is the population just read before a stream is scored
	// against it: left to the engine's coalescing, a node that starts
	// would score every stream for up to 10 s (at 2,500 people) against a
	// model of its first template and the prior. A population that does
	// not fit is logged by the engine, and the model stays the one
	// before, as for any refit.
	_ = s.engine.Refit()
	if skipped > 0 {
		s.log.Error("biometric templates that do not open were left out", "count", skipped)
	}
	return nil
}
