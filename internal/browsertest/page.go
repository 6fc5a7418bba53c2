package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultShows is what a failing step prints of a page when its test names
// nothing else: the body's data attributes, where the console reports its
// state.
const DefaultShows = `JSON.stringify(document.body.dataset)`

// Page drives the browser's tab for one test, a step at a time: each step
// that fails ends the test with what it was doing and what the page shows,
// so a failure in CI says where the page stood without a screenshot.
type Page struct {
	t   testing.TB
	ctx context.Context
	// shows is a JavaScript expression of a string: what a failure
	// prints of the page.
	shows string
	// Wait is how long WaitFor polls before it fails the test.
	Wait time.Duration
}

// Page is the tab, driven within ctx (from WithTimeout), for test t.
// shows is a JavaScript expression that makes a string of what a failure
// prints of the page ("" for DefaultShows).
func (b *Browser) Page(ctx context.Context, t testing.TB, shows string) *Page {
	if shows == "" {
		shows = DefaultShows
	}
	return &Page{t: t, ctx: ctx, shows: shows, Wait: 30 * time.Second}
}

// T is the test the page fails, for helpers that drive it to mark
// themselves (page.T().Helper()).
func (p *Page) T() testing.TB { return p.t }

// Ctx is the context the page's steps run in, for a step of chromedp's
// own.
func (p *Page) Ctx() context.Context { return p.ctx }

// Shows is what the page shows now, as failures print it.
func (p *Page) Shows() string {
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](p.shows))
	if err != nil {
		return "(the page cannot say: " + err.Error() + ")"
	}
	return s
}

// Do runs actions in the page.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage: %s", what, err, p.Shows())
	}
}

// WaitFor polls js, a JavaScript expression of a boolean, until it holds,
// for p.Wait at the most.
func (p *Page) WaitFor(what, js string) {
	p.t.Helper()
	p.WaitWithin(what, p.Wait, js)
}

// WaitWithin is WaitFor with its own limit.
func (p *Page) WaitWithin(what string, limit time.Duration, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js)); err != nil {
		p.t.Fatalf("%s: %v\npage: %s", what, err, p.Shows())
	}
}

// Eval is the string js evaluates to in the page.
func (p *Page) Eval(js string) string {
	p.t.Helper()
	return Eval[string](p, js)
}

// Eval is the value js evaluates to in page p, as a T.
func Eval[T any](p *Page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: %v\npage: %s", js, err, p.Shows())
	}
	return v
}
