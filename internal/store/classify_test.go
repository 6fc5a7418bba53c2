package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClassifyAPIErrors: the JetStream API errors that mean "not now"
// read as ErrUnavailable, whatever HTTP code the server gives them; those
// that are about the request or the data do not.
func TestClassifyAPIErrors(t *testing.T) {
	cases := []struct {
		code        jetstream.ErrorCode
		status      int
		unavailable bool
	}{
		{10008, 503, true},                  // no quorum
		{jsErrCodeStreamOffline, 500, true}, // stream offline while the cluster recovers
		{jsErrCodeDuplicateInProcess, 400, true},
		{jsErrCodeBatchIncomplete, 400, true}, // an atomic batch lost a message: nothing stored
		{10071, 400, false},                   // wrong last sequence: a conflict
		{10174, 400, false},                   // atomic publish disabled: a configuration error
		{10059, 404, false},                   // stream not found
	}
	for _, c := range cases {
		err := fmt.Errorf("publish: %w", &jetstream.APIError{Code: c.status, ErrorCode: c.code, Description: "x"})
		if got := errors.Is(classify(err), ErrUnavailable); got != c.unavailable {
			t.Errorf("API error %d (status %d): unavailable = %v, want %v", c.code, c.status, got, c.unavailable)
		}
	}
}
