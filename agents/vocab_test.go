package agents

import (
	"testing"

	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// A risk passes between twin, scenes and agents without conversion: this
// compiles only while the three name internal/risk's one type.
var _ = func(r twin.Risk) (scenes.Risk, Risk) { return r, r }

// The package may not import scenes (domains do not import each other), so
// it spells its names again; this test keeps the spellings one.
func TestVocabularyMatchesScenesAndTwin(t *testing.T) {
	for _, p := range [][2]string{
		{ActionJoinScene, scenes.ActionJoinScene},
		{ActionEnterZone, scenes.ActionEnterZone},
		{ActionTransferAsset, scenes.ActionTransferAsset},
		{ActionCommandActuator, scenes.ActionCommandActuator},
		{ActionViewTwin, scenes.ActionViewTwin},
		{KindScene, scenes.TypeScene},
		{KindTwin, scenes.TypeTwin},
		{KindActuator, scenes.TypeActuator},
	} {
		if p[0] != p[1] {
			t.Errorf("agents says %q, the owning package %q", p[0], p[1])
		}
	}
	if got := scenes.ActuatorUID("press-line", "conveyor").ID; got != "press-line/conveyor" {
		t.Errorf("actuator UID id %q: agents expects twin/actuator", got)
	}
}
