package scenesapi

import (
	"net/http"
	"strconv"

	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// API serves the version and the scenes.
type API struct {
	edge    *edge.Edge
	catalog *scenes.Catalog
}

// New makes the API; its scene routes answer once Bind has given it the
// catalog and the edge reports ready.
func New(e *edge.Edge) *API { return &API{edge: e} }

// Bind gives the API the scenes the node loaded. The composition root
// calls it once, during start-up, before the realm reports ready.
func (a *API) Bind(cat *scenes.Catalog) { a.catalog = cat }

// Routes registers the routes; one line each, which the OpenAPI test
// reads.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/version", a.handleVersion)
	mux.HandleFunc("GET /v1/scenes", a.edge.WhenReady(a.handleScenes))
	mux.HandleFunc("GET /v1/scenes/{id}", a.edge.WhenReady(a.handleScene))
}

func (a *API) handleVersion(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, buildinfo.Get())
}

// Wire views of scenes. They are separate from the scenes package's types
// so the published JSON stays stable when the internal model changes.
type (
	// Summary is a scene in the list of scenes.
	Summary struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	// Detail is one scene.
	Detail struct {
		Summary
		Zones       []Zone       `json:"zones"`
		Twins       []Twin       `json:"twins"`
		Collections []Collection `json:"collections"`
		Policies    []string     `json:"policies"`
	}
	// Zone is a box of a scene.
	Zone struct {
		ID   string     `json:"id"`
		Name string     `json:"name,omitempty"`
		Min  [3]float64 `json:"min"`
		Max  [3]float64 `json:"max"`
	}
	// Twin is a digital twin of a scene, in its zone.
	Twin struct {
		ID        string     `json:"id"`
		Name      string     `json:"name,omitempty"`
		Zone      string     `json:"zone"`
		Actuators []Actuator `json:"actuators"`
	}
	// Actuator is what a twin command may set, within its limits.
	Actuator struct {
		ID      string  `json:"id"`
		Name    string  `json:"name,omitempty"`
		Unit    string  `json:"unit"`
		Min     float64 `json:"min"`
		Max     float64 `json:"max"`
		MaxRate float64 `json:"max_rate"`
		Risk    string  `json:"risk"`
	}
	// Collection is an asset collection of a scene.
	Collection struct {
		ID        string `json:"id"`
		Name      string `json:"name,omitempty"`
		Kind      string `json:"kind"`
		Soulbound bool   `json:"soulbound,omitempty"`
		Decimals  uint8  `json:"decimals,omitempty"`
	}
)

func summarize(sc *scenes.Scene) Summary {
	return Summary{ID: sc.ID, Name: sc.Name, Description: sc.Description}
}

func (a *API) handleScenes(w http.ResponseWriter, _ *http.Request) {
	out := []Summary{}
	for _, sc := range a.catalog.Scenes() {
		out = append(out, summarize(sc))
	}
	edge.WriteJSON(w, http.StatusOK, map[string]any{"scenes": out})
}

func (a *API) handleScene(w http.ResponseWriter, req *http.Request) {
	sc, ok := a.catalog.Scene(req.PathValue("id"))
	if !ok {
		a.edge.WriteError(w, req, &edge.Error{Status: http.StatusNotFound, Detail: "no scene " + strconv.Quote(req.PathValue("id"))})
		return
	}
	edge.WriteJSON(w, http.StatusOK, Describe(sc))
}

// Describe is the wire view of one scene.
func Describe(sc *scenes.Scene) Detail {
	d := Detail{Summary: summarize(sc), Zones: []Zone{}, Twins: []Twin{}, Collections: []Collection{}, Policies: []string{}}
	for _, z := range sc.Zones {
		d.Zones = append(d.Zones, Zone{ID: z.ID, Name: z.Name, Min: z.Min, Max: z.Max})
	}
	for _, t := range sc.Twins {
		tv := Twin{ID: t.ID, Name: t.Name, Zone: t.Zone, Actuators: []Actuator{}}
		for _, act := range t.Actuators {
			tv.Actuators = append(tv.Actuators, Actuator{ID: act.ID, Name: act.Name, Unit: act.Unit, Min: act.Min, Max: act.Max, MaxRate: act.MaxRate, Risk: string(act.Risk)})
		}
		d.Twins = append(d.Twins, tv)
	}
	for _, c := range sc.Collections {
		d.Collections = append(d.Collections, Collection{ID: c.ID, Name: c.Name, Kind: string(c.Kind), Soulbound: c.Soulbound, Decimals: c.Decimals})
	}
	if sc.Policies != nil {
		d.Policies = sc.Policies.IDs()
	}
	return d
}
