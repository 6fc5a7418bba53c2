package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// page drives one console tab: its steps fail the test with what they
// were doing, and a wait that runs out says what the page showed.
type page struct {
	t   *testing.T
	ctx context.Context
}

// do runs actions, failing the test with what they were for.
func (p page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval is the string a script evaluates to.
func (p page) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// waitFor polls js until it is true, for up to 30 seconds.
func (p page) waitFor(what, js string) {
	p.t.Helper()
	wctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js)); err != nil {
		p.t.Fatalf("%s: %v (page: %s)", what, err, p.eval(`JSON.stringify(document.body.dataset) + " " + `+pageResults))
	}
}
