package realm

import (
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/mcpapi"
)

// MCP for agents (realm/internal/mcpapi): the scene access part decides an
// agent's joining, and the twin and market parts serve their tools along
// their routes' own path.

func (r *Realm) bindMCP() error {
	return r.mcp.Bind(mcpapi.Deps{
		Log: r.log, Scenes: r.access, Twins: r.twinAPI, Market: r.marketAPI, Trail: r.view, Presence: r.live, Version: buildinfo.Get().Version, Base: r.publicBase,
	})
}
