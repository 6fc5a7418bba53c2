package biometrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// twoDays is a person's windows on two days: the second day's centre
// drifts from the first, as real people's do.
func twoDays(seed uint64, n int) (day1, day2 []Features) {
	day1 = randomWindows(seed, n)
	day2 = randomWindows(seed, n) // the same centre and noise...
	for k := range day2 {
		for i := range day2[k].Core {
			// ...moved along a direction of the person's own.
			day2[k].Core[i] += 0.2 * math.Sin(float64(seed)+float64(i))
		}
	}
	return day1, day2
}

func scatterOf(windows ...[]Features) *Scatter {
	s := &Scatter{}
	for _, ws := range windows {
		for i := range ws {
			s.Add(&ws[i])
		}
	}
	return s
}

func TestScatterMergeEqualsOnePass(t *testing.T) {
	d1, d2 := twoDays(3, 20)
	merged := scatterOf(d1)
	merged.Merge(scatterOf(d2))
	whole := scatterOf(d1, d2)
	if merged.N != whole.N {
		t.Fatalf("merged N %d, one pass %d", merged.N, whole.N)
	}
	if diff := maxRelDiff(merged.Outer, whole.Outer); diff > 1e-12 {
		t.Errorf("merged scatter differs from one pass by %g", diff)
	}
	// Its moments are the windows' own.
	tm, err := NewTemplate(append(append([]Features(nil), d1...), d2...), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	mu, cov := whole.moments()
	if diff := maxRelDiff(mu, tm.Mean); diff > 1e-9 {
		t.Errorf("scatter mean differs from the template's by %g", diff)
	}
	if diff := maxRelDiff(cov, unpackSymmetric(tm.Cov, NumCoreFeatures)); diff > 1e-9 {
		t.Errorf("scatter covariance differs from the template's by %g", diff)
	}
}

// TestFederatedBackgroundEqualsCentral: three nodes each sum their own
// people's statistics and share only those sums; the model fitted from the
// combined sums is the model fitted centrally from every person's
// statistics, to rounding.
func TestFederatedBackgroundEqualsCentral(t *testing.T) {
	sizes := []int{5, 6, 7}
	var central, combined Background
	var cohort []NamedTemplate
	seed := uint64(10)
	for node, size := range sizes {
		var local Background
		for p := range size {
			seed++
			d1, d2 := twoDays(seed, 15)
			s := scatterOf(d1, d2)
			if err := local.AddScatter(s); err != nil {
				t.Fatal(err)
			}
			if err := central.AddScatter(s); err != nil {
				t.Fatal(err)
			}
			tm, err := NewTemplate(d1, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			cohort = append(cohort, NamedTemplate{ID: fmt.Sprintf("n%d-p%d", node, p), Template: tm})
		}
		shared, err := local.Share(DefaultShareMinPeople)
		if err != nil {
			t.Fatalf("node %d of %d people: %v", node, size, err)
		}
		// What crosses the wire is the encoding.
		wire, err := shared.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var received Background
		if err := received.UnmarshalBinary(wire); err != nil {
			t.Fatal(err)
		}
		combined.Merge(&received)
	}
	if combined.People != central.People {
		t.Fatalf("combined %d people, central %d", combined.People, central.People)
	}
	mc, err := FitBackground(&central, cohort, DefaultMaxCohort)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := FitBackground(&combined, cohort, DefaultMaxCohort)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]float64{
		"mean": {mc.mean, mf.mean}, "scale": {mc.scale, mf.scale}, "whitening": {mc.whiten, mf.whiten},
	} {
		if diff := maxRelDiff(pair[0], pair[1]); diff > 1e-9 {
			t.Errorf("federated %s differs from the central fit by %g", name, diff)
		}
	}
	probe, _ := twoDays(999, 5)
	claim := cohort[0]
	cc, cf := mc.Claim(claim.ID, claim.Template), mf.Claim(claim.ID, claim.Template)
	for i := range probe {
		sc, sf := mc.Score(cc, mc.Embed(&probe[i])), mf.Score(cf, mf.Embed(&probe[i]))
		if math.Abs(sc-sf) > 1e-9 {
			t.Errorf("window %d: central score %v, federated %v", i, sc, sf)
		}
	}
}

func TestShareNeedsKPeople(t *testing.T) {
	var b Background
	for p := range DefaultShareMinPeople - 1 {
		d1, d2 := twoDays(uint64(100+p), 10)
		if err := b.AddScatter(scatterOf(d1, d2)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []int{0, 2, DefaultShareMinPeople} {
		if got, err := b.Share(k); !errors.Is(err, ErrTooFewToShare) || got != nil {
			t.Errorf("Share(%d) with %d people = %v, %v; want nothing and ErrTooFewToShare", k, b.People, got, err)
		}
	}
	d1, d2 := twoDays(200, 10)
	if err := b.AddScatter(scatterOf(d1, d2)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Share(DefaultShareMinPeople); err != nil {
		t.Errorf("Share with %d people: %v", b.People, err)
	}
	if _, err := b.Share(DefaultShareMinPeople + 1); !errors.Is(err, ErrTooFewToShare) {
		t.Errorf("Share(k=%d) with %d people: %v, want ErrTooFewToShare", DefaultShareMinPeople+1, b.People, err)
	}
}

func TestStatisticsRoundTripAndRejects(t *testing.T) {
	d1, d2 := twoDays(7, 12)
	s := scatterOf(d1, d2)
	sb, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var gotS Scatter
	if err := gotS.UnmarshalBinary(sb); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&gotS, s) {
		t.Error("scatter changed in a round trip")
	}
	var b Background
	for p := range 3 {
		d1, d2 := twoDays(uint64(p+20), 10)
		if err := b.AddScatter(scatterOf(d1, d2)); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var gotB Background
	if err := gotB.UnmarshalBinary(bb); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotB, b) {
		t.Error("background changed in a round trip")
	}

	nan := append([]byte(nil), sb...)
	copy(nan[statsHeaderSize:], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
	bad := map[string][]byte{
		"empty":            nil,
		"truncated":        sb[:len(sb)-1],
		"trailing":         append(append([]byte(nil), sb...), 0),
		"background bytes": bb,
		"version":          append([]byte{9}, sb[1:]...),
		"NaN":              nan,
	}
	for name, in := range bad {
		keep := *s
		if err := keep.UnmarshalBinary(in); !errors.Is(err, ErrTemplate) {
			t.Errorf("%s: err = %v, want ErrTemplate", name, err)
		}
		if !reflect.DeepEqual(&keep, s) {
			t.Errorf("%s: a rejected decode changed the scatter", name)
		}
	}
	var one Scatter
	one.Add(&d1[0])
	if _, err := one.MarshalBinary(); !errors.Is(err, ErrTemplate) {
		t.Errorf("scatter of one window: %v, want ErrTemplate", err)
	}
	if err := b.AddScatter(&one); !errors.Is(err, ErrTemplate) || b.People != 3 {
		t.Errorf("AddScatter of one window: %v (%d people), want ErrTemplate and no change", err, b.People)
	}
}

// FuzzStatisticsUnmarshal: arbitrary bytes never panic, and whatever
// decodes re-encodes to the same bytes.
func FuzzStatisticsUnmarshal(f *testing.F) {
	d1, d2 := twoDays(1, 8)
	s := scatterOf(d1, d2)
	sb, _ := s.MarshalBinary()
	var b Background
	_ = b.AddScatter(s)
	d3, d4 := twoDays(2, 8)
	_ = b.AddScatter(scatterOf(d3, d4))
	bb, _ := b.MarshalBinary()
	f.Add(sb)
	f.Add(bb)
	f.Add([]byte{statsVersion, kindScatter, 0, 0, 2, 0, 0, 0})
	f.Fuzz(checkStatisticsRoundTrip)
}

// checkStatisticsRoundTrip: in decodes as a scatter or a background only
// if it re-encodes to the same bytes; nothing panics.
func checkStatisticsRoundTrip(t *testing.T, in []byte) {
	var gs Scatter
	if gs.UnmarshalBinary(in) == nil {
		out, err := gs.MarshalBinary()
		if err != nil || string(out) != string(in) {
			t.Fatalf("decoded scatter re-encodes to %d bytes (%v), from %d", len(out), err, len(in))
		}
	}
	var gb Background
	if gb.UnmarshalBinary(in) == nil {
		out, err := gb.MarshalBinary()
		if err != nil || string(out) != string(in) {
			t.Fatalf("decoded background re-encodes to %d bytes (%v), from %d", len(out), err, len(in))
		}
	}
}

// FuzzStatisticsTiled decodes statistics of the length their kind needs,
// built from a few fuzzed bytes: the header's fields as given, and the
// body a short fuzzed pattern repeated to that length (or to the
// pattern's own length for another kind). FuzzStatisticsUnmarshal's
// inputs are whole encodings of 35-70 KB, which the fuzzer mutates at a
// few inputs a second; these are tens of bytes, so that the checks on
// the values (non-finite, negative variances, counts) are explored at
// the fuzzer's usual pace.
func FuzzStatisticsTiled(f *testing.F) {
	one := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1))
	f.Add(byte(statsVersion), byte(kindScatter), uint16(NumCoreFeatures), uint32(8), one)
	f.Add(byte(statsVersion), byte(kindBackground), uint16(NumCoreFeatures), uint32(3), one)
	f.Add(byte(statsVersion), byte(kindScatter), uint16(NumCoreFeatures), uint32(8), binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Inf(1))))
	f.Add(byte(statsVersion), byte(kindBackground), uint16(NumCoreFeatures), uint32(1), binary.LittleEndian.AppendUint64(one, math.Float64bits(-1)))
	d := NumCoreFeatures
	floats := map[byte]int{kindScatter: d + packedLen(d), kindBackground: d + 2*d*d}
	f.Fuzz(func(t *testing.T, version, kind byte, features uint16, n uint32, pattern []byte) {
		if len(pattern) == 0 || len(pattern) > 256 {
			return
		}
		in := []byte{version, kind}
		in = binary.LittleEndian.AppendUint16(in, features)
		in = binary.LittleEndian.AppendUint32(in, n)
		body := len(pattern)
		if k, ok := floats[kind]; ok {
			body = 8 * k
		}
		for i := range body {
			in = append(in, pattern[i%len(pattern)])
		}
		checkStatisticsRoundTrip(t, in)
	})
}

func maxRelDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var worst float64
	for i := range a {
		d := math.Abs(a[i]-b[i]) / math.Max(1, math.Max(math.Abs(a[i]), math.Abs(b[i])))
		worst = math.Max(worst, d)
	}
	return worst
}

// TestTemplateKeepsTrustedStatistics: a template carries the statistics
// of its enrollment windows, adds every window it adapts with, keeps them
// through its encoding, and a template of the first version still decodes.
func TestTemplateKeepsTrustedStatistics(t *testing.T) {
	d1, d2 := twoDays(5, 12)
	tm, err := NewTemplate(d1, time.Unix(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Drift == nil || tm.Drift.N != len(d1) {
		t.Fatalf("enrollment statistics = %+v, want %d windows", tm.Drift, len(d1))
	}
	for i := range d2 {
		tm.adapt(&d2[i], 0.01, time.Unix(20, 0))
	}
	want := scatterOf(d1, d2)
	if tm.Drift.N != want.N || maxRelDiff(tm.Drift.Outer, want.Outer) > 1e-12 {
		t.Fatalf("after adapting: %d windows, want %d with both days' scatter", tm.Drift.N, want.N)
	}
	got, b := roundTrip(t, tm)
	if !reflect.DeepEqual(got.Drift, tm.Drift) {
		t.Error("statistics changed in a round trip")
	}
	// Version 1: the same blocks, no statistics after them.
	v1 := append([]byte{templateVersionV1}, b[1:len(b)-4-statsLen(tm.Drift)]...)
	var old Template
	if err := old.UnmarshalBinary(v1); err != nil {
		t.Fatalf("version 1 template: %v", err)
	}
	if old.Drift != nil || !reflect.DeepEqual(old.Mean, tm.Mean) {
		t.Errorf("version 1 template decoded with statistics %v or another mean", old.Drift)
	}
	// Statistics that do not decode make the template not decode.
	bad := append([]byte(nil), b...)
	bad[len(bad)-statsLen(tm.Drift)+1] = kindBackground
	if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrTemplate) {
		t.Errorf("template with a background for statistics: %v, want ErrTemplate", err)
	}
}

func statsLen(s *Scatter) int {
	b, _ := s.MarshalBinary()
	return len(b)
}

// TestEngineBackgroundSources: with DriftBackground the engine whitens by
// its people's statistics across days; a peer's shared statistics join
// the whitening but not the cohort; a node shares only from k people.
func TestEngineBackgroundSources(t *testing.T) {
	people := map[string]*Template{}
	var central Background
	var cohort []NamedTemplate
	for p := range 6 {
		d1, d2 := twoDays(uint64(300+p), 12)
		tm, err := NewTemplate(d1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range d2 {
			tm.adapt(&d2[i], 0.002, time.Time{})
		}
		id := fmt.Sprintf("p%d", p)
		people[id] = tm
		if err := central.AddScatter(tm.Drift); err != nil {
			t.Fatal(err)
		}
		cohort = append(cohort, NamedTemplate{ID: id, Template: tm})
	}
	e, err := NewEngine(Config{DriftBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ShareBackground(DefaultShareMinPeople); !errors.Is(err, ErrTooFewToShare) {
		t.Errorf("empty node shares: %v", err)
	}
	for _, nt := range cohort {
		e.SetTemplate(nt.ID, nt.Template)
	}
	waitModel := func(ok func(*Model) bool, what string) *Model {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if m := e.Model(); m != nil && ok(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("engine model never %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want, err := FitBackground(&central, cohort, DefaultMaxCohort)
	if err != nil {
		t.Fatal(err)
	}
	waitModel(func(m *Model) bool { return maxRelDiff(m.whiten, want.whiten) < 1e-9 }, "whitened by the people's statistics across days")

	shared, err := e.ShareBackground(DefaultShareMinPeople)
	if err != nil || shared.People != 6 {
		t.Fatalf("ShareBackground = %v, %v; want 6 people", shared, err)
	}
	// A peer of another realm: its people join the whitening only.
	var peer Background
	for p := range 5 {
		d1, d2 := twoDays(uint64(400+p), 12)
		if err := peer.AddScatter(scatterOf(d1, d2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SetPeerBackground("other-realm", &Background{People: 1}); err == nil {
		t.Error("a malformed peer background was accepted")
	}
	small := Background{}
	for p := range 4 {
		d1, d2 := twoDays(uint64(500+p), 12)
		_ = small.AddScatter(scatterOf(d1, d2))
	}
	if err := e.SetPeerBackground("tiny", &small); !errors.Is(err, ErrTooFewToShare) {
		t.Errorf("peer of 4 people: %v, want ErrTooFewToShare", err)
	}
	if err := e.SetPeerBackground("other-realm", &peer); err != nil {
		t.Fatal(err)
	}
	combined := Background{}
	combined.Merge(&central)
	combined.Merge(&peer)
	wantFed, err := FitBackground(&combined, cohort, DefaultMaxCohort)
	if err != nil {
		t.Fatal(err)
	}
	m := waitModel(func(m *Model) bool { return maxRelDiff(m.whiten, wantFed.whiten) < 1e-9 }, "whitened with the peer's statistics")
	if m.CohortSize() != len(cohort) {
		t.Errorf("cohort of %d, want the node's own %d", m.CohortSize(), len(cohort))
	}
	if again, _ := e.ShareBackground(DefaultShareMinPeople); again == nil || again.People != 6 {
		t.Errorf("the node shares %v, want its own 6 people (never a peer's)", again)
	}
	// One more person: a share now would give them away by subtraction.
	d1, _ := twoDays(600, 12)
	extra, _ := NewTemplate(d1, time.Time{})
	e.SetTemplate("p-extra", extra)
	if got, err := e.ShareBackground(DefaultShareMinPeople); !errors.Is(err, ErrTooFewToShare) || got != nil {
		t.Errorf("share after one person joined = %v, %v; want nothing and ErrTooFewToShare", got, err)
	}
	for p := range DefaultShareMinPeople - 1 {
		d1, _ := twoDays(uint64(700+p), 12)
		tm, _ := NewTemplate(d1, time.Time{})
		e.SetTemplate(fmt.Sprintf("p-more-%d", p), tm)
	}
	if got, err := e.ShareBackground(DefaultShareMinPeople); err != nil || got.People != 6+DefaultShareMinPeople {
		t.Errorf("share after %d people joined = %v, %v; want %d people", DefaultShareMinPeople, got, err, 6+DefaultShareMinPeople)
	}
}

// populationOf is the background of n people drawn from seeds from seed
// on, each by their windows of two days.
func populationOf(seed uint64, n int) *Background {
	b := &Background{}
	for p := range n {
		d1, d2 := twoDays(seed+uint64(p), 12)
		_ = b.AddScatter(scatterOf(d1, d2))
	}
	return b
}

// maxAbs is the largest magnitude among xs.
func maxAbs(xs []float64) float64 {
	var m float64
	for _, x := range xs {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// whiteningBound is the most any entry of a model's whitening can be when
// the total scatter it inverts is positive semi-definite before the floor:
// every eigenvalue is then at least the floor.
var whiteningBound = 1/math.Sqrt(scatterFloor) + 1e-9

// TestStatisticsNoPopulationGivesAreRefused: a share whose sums no
// people could have is refused with its reason, and the engine keeps what
// it had. Taken, the first of them would have made the whitening amplify
// one direction past anything a population can.
func TestStatisticsNoPopulationGivesAreRefused(t *testing.T) {
	d := NumCoreFeatures
	own := populationOf(900, 6)
	good := populationOf(950, 5)
	indefinite := func(b *Background) {
		// Features 0 and 1 "correlated" ten times beyond what their
		// variances allow: one direction of negative variance.
		c := 10 * math.Sqrt(b.SumWithin[0]*b.SumWithin[d+1])
		b.SumWithin[1], b.SumWithin[d] = c, c
	}
	for _, tc := range []struct {
		name   string
		tamper func(b *Background)
		says   string
	}{
		{"within-person covariances with a negative direction", indefinite, "within-person covariances correlate features 0 and 1 beyond 1"},
		{"within-person covariances not symmetric", func(b *Background) { b.SumWithin[2*d+3] *= 1.5 }, "not symmetric (features 2 and 3)"},
		{"means spread less than nothing", func(b *Background) { b.SumMeanOuter[4*d+4] = 0.5 * b.SumMean[4] * b.SumMean[4] / float64(b.People) }, "spread of the people's means have a negative variance (feature 4)"},
		{"means spread with a negative direction", func(b *Background) {
			// Each feature's spread as it was, but all of them
			// perfectly anti-correlated: no set of means does that.
			n := float64(b.People)
			for i := range d {
				for j := range d {
					if i != j {
						vi := b.SumMeanOuter[i*d+i]/n - b.SumMean[i]*b.SumMean[i]/n/n
						vj := b.SumMeanOuter[j*d+j]/n - b.SumMean[j]*b.SumMean[j]/n/n
						b.SumMeanOuter[i*d+j] = n * (b.SumMean[i]*b.SumMean[j]/n/n - 0.9*math.Sqrt(vi*vj))
					}
				}
			}
		}, "spread of the people's means have a direction of negative variance"},
		{"sums beyond their numbers' range", func(b *Background) { b.SumMean[5] = 1e300 }, "beyond the range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEngine(Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetPeerBackground("peer", good); err != nil {
				t.Fatalf("an honest peer's statistics: %v", err)
			}
			bad := &Background{}
			bad.Merge(good)
			tc.tamper(bad)
			err = e.SetPeerBackground("peer", bad)
			if !errors.Is(err, ErrNotAPopulation) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("SetPeerBackground = %v; want ErrNotAPopulation saying %q", err, tc.says)
			}
			if kept := e.PeerBackground("peer"); kept == nil || !reflect.DeepEqual(kept, good) {
				t.Error("a refused share changed the peer's statistics in use")
			}
		})
	}
	// Why: the whitening of the node's own people and an honest peer
	// stays within the floor's bound; with the first share above, it
	// would not.
	fit := func(peer *Background) *Model {
		b := &Background{}
		b.Merge(own)
		b.Merge(peer)
		m, err := FitBackground(b, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if w := maxAbs(fit(good).whiten); w > whiteningBound {
		t.Fatalf("honest whitening reaches %.3g, bound %.3g", w, whiteningBound)
	}
	bad := &Background{}
	bad.Merge(good)
	indefinite(bad)
	if w := maxAbs(fit(bad).whiten); w <= 100*whiteningBound {
		t.Errorf("the indefinite share's whitening reaches only %.3g: the test no longer shows the harm", w)
	}
}

// TestPeersNeverOutweighTheNodesOwnPeople: a peer that claims ten times
// the node's people weighs as the node's people do, and two such peers
// together too; an honest small peer counts in full.
func TestPeersNeverOutweighTheNodesOwnPeople(t *testing.T) {
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var own Background
	var cohort []NamedTemplate
	for p := range 6 {
		d1, _ := twoDays(uint64(1000+p), 12)
		tm, err := NewTemplate(d1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("p%d", p)
		e.SetTemplate(id, tm)
		_ = own.AddTemplate(tm)
		cohort = append(cohort, NamedTemplate{ID: id, Template: tm})
	}
	// The peer's people sit elsewhere: every feature's mean moved.
	big := populationOf(1100, 60)
	for i := range big.SumMean {
		big.SumMean[i] += float64(big.People) * 0.5
	}
	big.SumMeanOuter = make([]float64, len(big.SumMeanOuter))
	for p := range 60 {
		d1, d2 := twoDays(uint64(1100+p), 12)
		mu, _ := scatterOf(d1, d2).moments()
		for i := range mu {
			mu[i] += 0.5
		}
		d := NumCoreFeatures
		for i := range d {
			for j := range d {
				big.SumMeanOuter[i*d+j] += mu[i] * mu[j]
			}
		}
	}
	expect := func(peerWeight float64, peers ...*Background) *Model {
		b := &Background{}
		b.Merge(&own)
		for _, p := range peers {
			scaled := &Background{}
			scaled.mergeAtMost(p, int(math.Round(peerWeight*float64(p.People))))
			b.Merge(scaled)
		}
		m, err := FitBackground(b, cohort, DefaultMaxCohort)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	waitFor := func(want *Model, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if m := e.Model(); m != nil && maxRelDiff(m.mean, want.mean) < 1e-9 && maxRelDiff(m.whiten, want.whiten) < 1e-9 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the engine's model is never %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := e.SetPeerBackground("big", big); err != nil {
		t.Fatal(err)
	}
	capped, full := expect(0.1, big), expect(1, big)
	if maxRelDiff(capped.mean, full.mean) < 1e-3 {
		t.Fatal("the peer's weight changes nothing: the test cannot tell the cap")
	}
	waitFor(capped, "the node's six people and the peer's sixty weighed as six")
	if err := e.SetPeerBackground("big2", big); err != nil {
		t.Fatal(err)
	}
	waitFor(expect(0.05, big, big), "two peers of sixty weighed together as six")
	if err := e.SetPeerBackground("big", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPeerBackground("big2", nil); err != nil {
		t.Fatal(err)
	}
	small := populationOf(1200, 5)
	if err := e.SetPeerBackground("small", small); err != nil {
		t.Fatal(err)
	}
	waitFor(expect(1, small), "the node's six and a peer's five, each in full")
}

// FuzzPeerStatistics: whatever a peer puts in its sums, the check never
// panics, and statistics it takes keep the whitening of the node's own
// people and the peer's within the floor's bound.
func FuzzPeerStatistics(f *testing.F) {
	own, honest := populationOf(900, 6), populationOf(950, 5)
	f.Add(uint8(0), uint8(0), uint8(1), 1.0, uint16(5))
	f.Add(uint8(1), uint8(3), uint8(3), -2.0, uint16(7))
	f.Add(uint8(2), uint8(5), uint8(9), 1e300, uint16(5))
	f.Add(uint8(0), uint8(7), uint8(7), 0.0, uint16(60000))
	f.Fuzz(func(t *testing.T, sum, i, j uint8, v float64, people uint16) {
		d := NumCoreFeatures
		b := &Background{}
		b.Merge(honest)
		b.People = int(people)
		i, j = i%uint8(d), j%uint8(d)
		switch sum % 3 {
		case 0:
			b.SumMean[i] = v
		case 1:
			b.SumMeanOuter[int(i)*d+int(j)], b.SumMeanOuter[int(j)*d+int(i)] = v, v
		case 2:
			b.SumWithin[int(i)*d+int(j)], b.SumWithin[int(j)*d+int(i)] = v, v
		}
		if b.checkPopulation() != nil {
			return
		}
		all := &Background{}
		all.Merge(own)
		all.mergeAtMost(b, own.People)
		m, err := FitBackground(all, nil, 0)
		if err != nil {
			t.Fatalf("accepted statistics do not fit: %v", err)
		}
		if w := maxAbs(m.whiten); !(w <= 1/math.Sqrt(scatterFloor*0.999)) {
			t.Fatalf("accepted statistics whiten up to %.4g", w)
		}
	})
}
