package realm

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

func (r *Realm) handleVersion(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, buildinfo.Get())
}

// Wire views of scenes. They are separate from the scenes package's types
// so the published JSON stays stable when the internal model changes.
type (
	sceneSummary struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	sceneDetail struct {
		sceneSummary
		Zones       []zoneView       `json:"zones"`
		Twins       []twinView       `json:"twins"`
		Collections []collectionView `json:"collections"`
		Policies    []string         `json:"policies"`
	}
	zoneView struct {
		ID   string     `json:"id"`
		Name string     `json:"name,omitempty"`
		Min  [3]float64 `json:"min"`
		Max  [3]float64 `json:"max"`
	}
	twinView struct {
		ID        string         `json:"id"`
		Name      string         `json:"name,omitempty"`
		Zone      string         `json:"zone"`
		Actuators []actuatorView `json:"actuators"`
	}
	actuatorView struct {
		ID      string  `json:"id"`
		Name    string  `json:"name,omitempty"`
		Unit    string  `json:"unit"`
		Min     float64 `json:"min"`
		Max     float64 `json:"max"`
		MaxRate float64 `json:"max_rate"`
		Risk    string  `json:"risk"`
	}
	collectionView struct {
		ID        string `json:"id"`
		Name      string `json:"name,omitempty"`
		Kind      string `json:"kind"`
		Soulbound bool   `json:"soulbound,omitempty"`
		Decimals  uint8  `json:"decimals,omitempty"`
	}
)

func summarize(sc *scenes.Scene) sceneSummary {
	return sceneSummary{ID: sc.ID, Name: sc.Name, Description: sc.Description}
}

func (r *Realm) handleScenes(w http.ResponseWriter, _ *http.Request) {
	out := []sceneSummary{}
	for _, sc := range r.catalog.Scenes() {
		out = append(out, summarize(sc))
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scenes": out})
}

func (r *Realm) handleScene(w http.ResponseWriter, req *http.Request) {
	sc, ok := r.catalog.Scene(req.PathValue("id"))
	if !ok {
		r.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
		return
	}
	d := sceneDetail{sceneSummary: summarize(sc), Zones: []zoneView{}, Twins: []twinView{}, Collections: []collectionView{}, Policies: []string{}}
	for _, z := range sc.Zones {
		d.Zones = append(d.Zones, zoneView{ID: z.ID, Name: z.Name, Min: z.Min, Max: z.Max})
	}
	for _, t := range sc.Twins {
		tv := twinView{ID: t.ID, Name: t.Name, Zone: t.Zone, Actuators: []actuatorView{}}
		for _, a := range t.Actuators {
			tv.Actuators = append(tv.Actuators, actuatorView{ID: a.ID, Name: a.Name, Unit: a.Unit, Min: a.Min, Max: a.Max, MaxRate: a.MaxRate, Risk: string(a.Risk)})
		}
		d.Twins = append(d.Twins, tv)
	}
	for _, c := range sc.Collections {
		d.Collections = append(d.Collections, collectionView{ID: c.ID, Name: c.Name, Kind: string(c.Kind), Soulbound: c.Soulbound, Decimals: c.Decimals})
	}
	if sc.Policies != nil {
		d.Policies = sc.Policies.IDs()
	}
	edge.WriteJSON(w, http.StatusOK, d)
}

func (r *Realm) handleNodes(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": r.cfg.Node, "nodes": r.nodes.live()})
}

// handleAudit lists decisions from every node, newest first, a page at a
// time: filters action, decision (or outcome), actor, resource, node,
// since, until; paging limit and before (the previous page's next). Every
// parameter is checked, and a bad one is a 400 naming it.
//
// The log names who did what and the trust signals behind each decision,
// so it is read with a session: an avatar with one of Config.AuditRoles
// reads every event, any other only the events it is the actor of. That
// limit is the server's: a query without actor is narrowed to the caller,
// and one that names another actor is refused (and the refusal audited),
// never quietly answered with an empty page.
func (r *Realm) handleAudit(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	query, err := audit.ParseQuery(req.URL.Query())
	if err != nil {
		r.edge.WriteError(w, req, edge.BadRequest(err.Error()))
		return
	}
	scope := "all"
	if !r.readsWholeAudit(p) {
		if query.Actor != "" && query.Actor != p.Avatar.ID {
			need := "no role may (the realm's audit roles are empty)"
			if len(r.cfg.AuditRoles) > 0 {
				need = "that needs one of the roles " + strings.Join(r.cfg.AuditRoles, ", ")
			}
			err := &edge.Error{Status: http.StatusForbidden, Detail: "this avatar may read only its own decisions (actor " +
				strconv.Quote(p.Avatar.ID) + ") in the audit log; to read another actor's, " + need}
			r.auditDeny(req, p.Avatar.ID, "ReadAudit", "AuditLog::"+strconv.Quote(query.Actor), err)
			r.edge.WriteError(w, req, err)
			return
		}
		query.Actor, scope = p.Avatar.ID, "own"
	}
	page := r.view.Page(query)
	body := map[string]any{"events": page.Events, "truncated": page.Truncated, "scope": scope}
	if !page.Next.IsZero() {
		body["next"] = page.Next.String()
	}
	edge.WriteJSON(w, http.StatusOK, body)
}

// readsWholeAudit reports whether the avatar holds a role that reads every
// event of the audit log. Roles are read anew with each request (see
// authenticate), so a role taken away stops the next read.
func (r *Realm) readsWholeAudit(p edge.Principal) bool {
	return slices.ContainsFunc(p.Avatar.Roles, func(role string) bool { return slices.Contains(r.cfg.AuditRoles, role) })
}
