package realm

import (
	"net/http"
	"strconv"

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
	edge.WriteJSON(w, http.StatusOK, map[string]any{"self": r.cfg.Node, "nodes": r.nodes.Live()})
}
