package realmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// RawAnswer is a response's status, Retry-After and edge.Problem, for tests
// that look at headers Client does not return.
type RawAnswer struct {
	Status     int
	RetryAfter string
	Problem    edge.Problem
}

// RawCall sends a request with a body as it is and reads the answer's
// status, Retry-After and problem.
func RawCall(t testing.TB, n Node, method, path, token string, body string) RawAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := RawAnswer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &a.Problem); err != nil {
			t.Fatalf("%s %s = %d with a body that is not a problem: %s", method, path, resp.StatusCode, data)
		}
	}
	return a
}
