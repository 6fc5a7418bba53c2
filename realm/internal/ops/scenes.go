package ops

import "github.com/prometheus/client_golang/prometheus"

// sceneMembers is zerorealm_scene_members: the avatars connected to this
// node in each scene, read from the live edge at every scrape, so the
// gauge can never drift from what the node holds. Each node counts only
// its own connections: a sum over nodes is the whole realm.
type sceneMembers struct {
	desc *prometheus.Desc
	read func() map[string]int
}

func (c sceneMembers) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c sceneMembers) Collect(ch chan<- prometheus.Metric) {
	for scene, n := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), scene)
	}
}

// CountSceneMembers serves zerorealm_scene_members{scene} from read, which
// returns this node's members by scene id (scene ids come from the
// realm's catalog, so the label's values are bounded).
func (m *Monitor) CountSceneMembers(read func() map[string]int) {
	m.registry.MustRegister(sceneMembers{
		desc: prometheus.NewDesc("zerorealm_scene_members",
			"Avatars connected to this node in each scene they joined (sum over nodes for the realm).", []string{"scene"}, nil),
		read: read,
	})
}
