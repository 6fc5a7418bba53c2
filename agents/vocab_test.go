package agents

import (
	"testing"

	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// The package may not import scenes or twin (domains do not import each
// other), so it spells their names again; this test keeps the spellings
// one.
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
		{string(RiskLow), string(twin.RiskLow)},
		{string(RiskMedium), string(twin.RiskMedium)},
		{string(RiskHigh), string(twin.RiskHigh)},
		{string(RiskCritical), string(twin.RiskCritical)},
		{string(RiskHigh), string(scenes.RiskHigh)},
	} {
		if p[0] != p[1] {
			t.Errorf("agents says %q, the owning package %q", p[0], p[1])
		}
	}
	if got := scenes.ActuatorUID("press-line", "conveyor").ID; got != "press-line/conveyor" {
		t.Errorf("actuator UID id %q: agents expects twin/actuator", got)
	}
}
