package realm

import (
	"fmt"
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/web"
)

func (r *Realm) routes() http.Handler {
	mux := http.NewServeMux()
	r.monitor.Routes(mux)
	r.scenesAPI.Routes(mux)
	mux.HandleFunc("GET /v1/scenes/{id}/access", r.edge.AuthedOrAgent(r.handleSceneAccess))
	r.agentRoutes(mux)
	mux.HandleFunc("GET /v1/scenes/{id}/me", r.edge.Authed(r.handleSceneStanding))
	r.auditAPI.Routes(mux)
	mux.HandleFunc("GET /v1/nodes", r.edge.WhenReady(func(w http.ResponseWriter, req *http.Request) { r.nodes.HandleList(w, req) }))
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
