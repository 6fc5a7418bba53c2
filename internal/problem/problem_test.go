package problem

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

var errSentinel = errors.New("domain: invalid input")

type refusal struct{ reason string }

func (r *refusal) Error() string { return "domain: " + r.reason }
func (r *refusal) Problem() *Error {
	return &Error{Status: http.StatusConflict, Type: Conflict, Detail: "refused: " + r.reason}
}

func TestAsFindsTheProblemAndKeepsTheSentinel(t *testing.T) {
	err := fmt.Errorf("load thing: %w", Invalid(errSentinel, "limit 0, want 1 to 500"))
	p, ok := As(err)
	if !ok || p.Status != 400 || p.Type != InvalidRequest || p.Detail != "limit 0, want 1 to 500" {
		t.Fatalf("As = %+v %v", p, ok)
	}
	if !errors.Is(err, errSentinel) {
		t.Fatal("the sentinel is lost")
	}
	if got, want := err.Error(), "load thing: domain: invalid input: limit 0, want 1 to 500"; got != want {
		t.Fatalf("text = %q, want %q", got, want)
	}
	if p.Type.URI() != "https://zerorealm.dev/problems/invalid-request" {
		t.Fatalf("URI = %s", p.Type.URI())
	}

	p, ok = As(fmt.Errorf("apply: %w", &refusal{reason: "not-owner"}))
	if !ok || p.Status != 409 || p.Detail != "refused: not-owner" {
		t.Fatalf("As of a carrier = %+v %v", p, ok)
	}
	if _, ok := As(errors.New("plain")); ok {
		t.Fatal("a plain error carried a problem")
	}
	if _, ok := As(nil); ok {
		t.Fatal("nil carried a problem")
	}
}
