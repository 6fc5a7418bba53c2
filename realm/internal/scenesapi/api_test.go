package scenesapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

func serve(t *testing.T) (*http.ServeMux, *API, *atomic.Bool) {
	t.Helper()
	var ready atomic.Bool
	e := edge.New(edge.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), ready.Load, prometheus.NewRegistry())
	a := New(e)
	mux := http.NewServeMux()
	a.Routes(mux)
	return mux, a, &ready
}

func call(mux *http.ServeMux, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// TestScenesServedOnceReady: the version answers at once; the scenes only
// once the node is ready, then as their wire views, every list present
// even when empty; an unknown scene is a 404 problem naming it.
func TestScenesServedOnceReady(t *testing.T) {
	cat, err := scenes.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	mux, a, ready := serve(t)
	rec := call(mux, "/v1/version")
	var v buildinfo.Info
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Version != buildinfo.Get().Version {
		t.Fatalf("/v1/version = %d %s", rec.Code, rec.Body)
	}
	if rec := call(mux, "/v1/scenes"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/v1/scenes before ready = %d, want 503", rec.Code)
	}
	a.Bind(cat)
	ready.Store(true)
	var list struct{ Scenes []Summary }
	if rec := call(mux, "/v1/scenes"); rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Scenes) != len(cat.Scenes()) {
		t.Fatalf("/v1/scenes = %d %s, want the %d scenes", rec.Code, rec.Body, len(cat.Scenes()))
	}
	first := cat.Scenes()[0]
	var d Detail
	if rec := call(mux, "/v1/scenes/"+first.ID); rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &d) != nil || d.ID != first.ID || d.Zones == nil || d.Twins == nil || d.Collections == nil || d.Policies == nil {
		t.Fatalf("/v1/scenes/%s = %d %s, want its detail with every list present", first.ID, rec.Code, rec.Body)
	}
	rec = call(mux, "/v1/scenes/nowhere")
	if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") || !strings.Contains(rec.Body.String(), `no scene \"nowhere\"`) {
		t.Fatalf("/v1/scenes/nowhere = %d %s %s, want a 404 problem naming it", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}
