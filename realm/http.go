package realm

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/web"
)

func (r *Realm) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", r.handleHealth)
	mux.HandleFunc("GET /livez", r.handleLivez)
	mux.HandleFunc("GET /readyz", r.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{Registry: r.metrics.registry}))
	mux.HandleFunc("GET /v1/version", r.handleVersion)
	mux.HandleFunc("GET /v1/scenes", r.edge.WhenReady(r.handleScenes))
	mux.HandleFunc("GET /v1/scenes/{id}", r.edge.WhenReady(r.handleScene))
	r.access.Routes(mux)
	r.agentRoutes(mux)
	r.auditAPI.Routes(mux)
	mux.HandleFunc("GET /v1/nodes", r.edge.WhenReady(r.handleNodes))
	// The console: every embedded file, for GET; a GET of any other path
	// is answered by it as an unknown route.
	mux.Handle("GET /", web.Handler(r.unknownRoute))
	r.identity.Routes(mux)
	live.NewAPI(r.edge, func() *live.Service { return r.live }).Routes(mux)
	xr.NewAPI(r.edge, func() *xr.Service { return r.xr }).Routes(mux)
	r.twinAPI.Routes(mux)
	mux.HandleFunc("GET /v1/openapi.json", r.docs.ServeOpenAPI)
	mux.HandleFunc("GET /v1/asyncapi.json", r.docs.ServeAsyncAPI)
	r.marketAPI.Routes(mux)
	mux.HandleFunc("/", r.unknownRoute)
	return r.edge.Instrument(mux)
}

// unknownRoute answers a request no route serves, as a problem.
func (r *Realm) unknownRoute(w http.ResponseWriter, req *http.Request) {
	r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path)})
}
