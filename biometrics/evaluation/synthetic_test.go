package evaluation

import "testing"

func TestSyntheticProtocol(t *testing.T) {
	recs := SyntheticRecordings(12, 100, 60)
	res := runDefaults(t, recs)
	for _, s := range res.Spans {
		t.Logf("%-8s EER %.1f%% rank-1 %.1f%% (%d genuine, %d impostor trials)", s.Name, 100*s.EER, 100*s.Rank1, len(s.Genuine), len(s.Impostor))
	}
	if got := res.Spans[1].EER; got > 0.1 {
		t.Errorf("synthetic 10s EER = %.3f, want at most 0.1", got)
	}
}
