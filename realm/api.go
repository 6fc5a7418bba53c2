package realm

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/scenes"
)

// handleHealth answers 200 once NATS, the streams and the scenes are ready
// and the NATS connection is up, and 503 with the reason otherwise, so a
// load balancer takes a node out while it starts, stops or loses NATS.
func (r *Realm) handleHealth(w http.ResponseWriter, req *http.Request) {
	body := map[string]any{"node": r.cfg.Node, "version": buildinfo.Get().Version}
	if !r.ready.Load() {
		body["status"] = *r.notReady.Load()
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if st := r.nc.Status(); st != nats.CONNECTED {
		body["status"] = "nats " + st.String()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ok"
	body["scenes"] = len(r.catalog.Scenes())
	body["replicas"] = r.store.Replicas()
	writeJSON(w, http.StatusOK, body)
}

func (r *Realm) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, buildinfo.Get())
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
	writeJSON(w, http.StatusOK, map[string]any{"scenes": out})
}

func (r *Realm) handleScene(w http.ResponseWriter, req *http.Request) {
	sc, ok := r.catalog.Scene(req.PathValue("id"))
	if !ok {
		r.writeError(w, req, &httpError{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
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
	writeJSON(w, http.StatusOK, d)
}

func (r *Realm) handleNodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"self": r.cfg.Node, "nodes": r.nodes.live()})
}

// handleAudit lists recent decisions from every node, newest first.
// Filters: node, actor, outcome (allow|deny), limit (1..1000).
func (r *Realm) handleAudit(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	query := audit.Query{Node: q.Get("node"), Actor: q.Get("actor")}
	switch o := q.Get("outcome"); o {
	case "", string(audit.Allow), string(audit.Deny):
		query.Outcome = audit.Outcome(o)
	default:
		r.writeError(w, req, badRequest("outcome must be allow or deny"))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			r.writeError(w, req, badRequest("limit must be a whole number from 1 to 1000"))
			return
		}
		query.Limit = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": r.view.Events(query)})
}

// handleAuditVerify walks the hash chain of one node (?node=) or of every
// node that has one, and reports the first broken link of each.
func (r *Realm) handleAuditVerify(w http.ResponseWriter, req *http.Request) {
	var nodes []string
	if n := req.URL.Query().Get("node"); n != "" {
		nodes = []string{n}
	} else {
		var err error
		nodes, err = audit.Chains(req.Context(), r.store)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
	}
	sort.Strings(nodes)
	reports := []audit.Report{}
	ok := true
	for _, n := range nodes {
		rep, err := audit.Verify(req.Context(), r.store, n)
		if err != nil {
			r.writeError(w, req, badRequest(err.Error()))
			return
		}
		ok = ok && rep.OK()
		reports = append(reports, rep)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": ok, "chains": reports})
}
