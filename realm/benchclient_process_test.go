//go:build linux

package realm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type noTimer struct{}

func (noTimer) ResetTimer() {}
func (noTimer) StartTimer() {}
func (noTimer) StopTimer()  {}

// The benchmarks' child client sends every request with its headers and
// body, and reports a wrong answer rather than counting it.
func TestBenchClientProcessSendsEveryRequest(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(body)] = r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization")
		mu.Unlock()
		if string(body) == "refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	reqs := func(bodies ...string) []benchRequest {
		out := make([]benchRequest, len(bodies))
		for i, b := range bodies {
			out[i] = benchRequest{Method: "POST", Path: "/v1/x", Header: http.Header{"Authorization": {"Bearer " + b}}, Body: []byte(b)}
		}
		return out
	}
	if _, err := clientProcess(t, noTimer{}, benchClientJob{URL: srv.URL, Clients: 3, Want: http.StatusCreated, Requests: reqs("a", "b", "c", "d", "e")}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a", "b", "c", "d", "e"} {
		if got := seen[b]; got != "POST /v1/x Bearer "+b {
			t.Errorf("request %q arrived as %q", b, got)
		}
	}
	_, err := clientProcess(t, noTimer{}, benchClientJob{URL: srv.URL, Clients: 1, Want: http.StatusCreated, Requests: reqs("f", "refuse")})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a refused request: %v", err)
	}
}
