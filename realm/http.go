package realm

import (
	"net/http"

	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/internal/peerbackground"
	"github.com/zerorealm/zerorealm/realm/web"
)

// routes registers every part's routes, behind the edge's instruments.
func (r *Realm) routes() http.Handler {
	mux := http.NewServeMux()
	r.monitor.Routes(mux)
	r.scenesAPI.Routes(mux)
	r.access.Routes(mux)
	r.delegations.Routes(mux)
	r.mcp.Routes(mux)
	r.approvals.Routes(mux)
	r.auditAPI.Routes(mux)
	mux.HandleFunc("GET /v1/nodes", r.edge.WhenReady(func(w http.ResponseWriter, req *http.Request) { r.nodes.HandleList(w, req) }))
	// The console: every embedded file, for GET; a GET of any other path
	// is answered by it as an unknown route.
	mux.Handle("GET /", web.Handler(r.edge.UnknownRoute))
	r.identity.Routes(mux)
	live.NewAPI(r.edge, func() *live.Service { return r.live }).Routes(mux)
	xr.NewAPI(r.edge, func() *xr.Service { return r.xr }).Routes(mux)
	peerbackground.NewAPI(r.edge, func() *peerbackground.Service { return r.peerBackground }).Routes(mux)
	r.twinAPI.Routes(mux)
	mux.HandleFunc("GET /v1/openapi.json", r.docs.ServeOpenAPI)
	mux.HandleFunc("GET /v1/asyncapi.json", r.docs.ServeAsyncAPI)
	r.marketAPI.Routes(mux)
	mux.HandleFunc("/", r.edge.UnknownRoute)
	return r.edge.Instrument(mux)
}
