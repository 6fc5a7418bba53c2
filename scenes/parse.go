package scenes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/zerorealm/zerorealm/internal/ident"
)

// MaxFileSize bounds a scene or policy file: definitions are hand-written and
// small, and the bound keeps a hostile file from costing more than that.
const MaxFileSize = 1 << 20

// Parse reads one scene.yaml. It reads no policy files, so the scene's
// Policies is nil; PolicyFiles are checked for form only. Every problem is
// reported in a *[LoadError].
func Parse(file string, data []byte) (*Scene, error) {
	scene, _, problems := parse(file, data)
	if len(problems) > 0 {
		return nil, loadError(problems)
	}
	return scene, nil
}

// position is where in a scene file something was written, kept so that
// problems found after parsing (missing policy files, duplicate scene ids)
// still point at the line to fix.
type position struct{ line, column int }

type sceneSource struct {
	id       position
	policies []position
}

type parser struct {
	file     string
	problems []Problem
}

func parse(file string, data []byte) (scene *Scene, src sceneSource, problems []Problem) {
	p := &parser{file: file}
	defer func() {
		// yaml.v3 is third-party code fed untrusted bytes: a panic inside
		// it must become a problem, not take the realm down.
		if r := recover(); r != nil {
			scene = nil
			problems = append(p.problems, Problem{File: file, Msg: fmt.Sprintf("unreadable YAML: %v", r)})
		}
	}()
	scene, src = p.parse(data)
	sortProblems(p.problems)
	if len(p.problems) > 0 {
		return nil, src, p.problems
	}
	return scene, src, nil
}

func (p *parser) at(line, column int, format string, args ...any) {
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) addf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.at(n.Line, n.Column, "%s", msg)
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser stage. yaml.v3
// reports their line zero-based (its scanner errors are one-based), and
// leaves the line out when it is the first one.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func (p *parser) syntaxError(err error) {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		p.at(0, 0, "invalid YAML: %s", err)
		return
	}
	line, _ := strconv.Atoi(m[1]) // 0 when yaml.v3 gave no line
	if yamlParserProblems[m[2]] {
		line++
	}
	p.at(line, 0, "invalid YAML: %s", m[2])
}

func (p *parser) parse(data []byte) (*Scene, sceneSource) {
	var src sceneSource
	if len(data) > MaxFileSize {
		p.at(0, 0, "file is larger than %d bytes", MaxFileSize)
		return nil, src
	}
	// yaml.v3 refuses invalid UTF-8 too, but without saying where.
	if line, column, bad := firstInvalidUTF8(data); bad {
		p.at(line, column, "invalid UTF-8: a scene file is UTF-8 text")
		return nil, src
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.at(0, 0, "empty scene file")
		} else {
			p.syntaxError(err)
		}
		return nil, src
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.at(extra.Line, extra.Column, "a scene file holds one YAML document; found another")
		return nil, src
	case !errors.Is(err, io.EOF):
		p.syntaxError(err)
		return nil, src
	}
	if len(doc.Content) != 1 {
		p.at(doc.Line, doc.Column, "empty scene file")
		return nil, src
	}
	// Following aliases would let a small file expand into a large amount
	// of validation work; scene files have no need for them.
	if p.rejectAliases(&doc) {
		return nil, src
	}
	return p.scene(doc.Content[0], &src), src
}

// firstInvalidUTF8 finds the first byte of data that is not UTF-8, as a
// 1-based line and column (in characters, as editors count).
func firstInvalidUTF8(data []byte) (line, column int, found bool) {
	line, column = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size == 1 {
			return line, column, true
		}
		if r == '\n' {
			line, column = line+1, 1
		} else {
			column++
		}
		data = data[size:]
	}
	return 0, 0, false
}

func (p *parser) rejectAliases(n *yaml.Node) bool {
	found := false
	if n.Kind == yaml.AliasNode {
		p.at(n.Line, n.Column, "YAML aliases are not allowed in scene files")
		return true
	}
	for _, c := range n.Content {
		if p.rejectAliases(c) {
			found = true
		}
	}
	return found
}

// fields is a YAML mapping whose keys were checked against the schema.
type fields map[string]field

type field struct{ key, value *yaml.Node }

// mapping checks that n is a mapping with no duplicate or unknown keys.
func (p *parser) mapping(path string, n *yaml.Node, known ...string) (fields, bool) {
	if n.Kind != yaml.MappingNode {
		p.addf(n, path, "must be a mapping of fields (%s)", strings.Join(known, ", "))
		return nil, false
	}
	m := make(fields, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			p.addf(key, path, "field names must be plain strings")
			continue
		}
		name := key.Value
		if prev, dup := m[name]; dup {
			p.addf(key, join(path, name), "duplicate field (first at line %d)", prev.key.Line)
			continue
		}
		isKnown := false
		for _, k := range known {
			if k == name {
				isKnown = true
				break
			}
		}
		if !isKnown {
			if s := suggest(name, known); s != "" {
				p.addf(key, path, "unknown field %q (did you mean %q?)", name, s)
			} else {
				p.addf(key, path, "unknown field %q (known: %s)", name, strings.Join(known, ", "))
			}
			continue
		}
		m[name] = field{key, value}
	}
	return m, true
}

// require reports the missing fields of mapping n.
func (p *parser) require(path string, n *yaml.Node, m fields, names ...string) bool {
	ok := true
	for _, name := range names {
		if _, present := m[name]; !present {
			p.addf(n, path, "missing required field %q", name)
			ok = false
		}
	}
	return ok
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

const maxSuggestCandidates = 64

// suggest returns the candidate closest to a misspelt name, if close enough
// to be the likely intent.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str reads a scalar as text. Numbers and booleans are accepted as their
// literal text, so that `name: 2024` means what its author sees.
func (p *parser) str(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.addf(n, path, "must be a string")
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool":
		return n.Value, true
	case "!!null":
		p.addf(n, path, "must not be empty")
		return "", false
	}
	p.addf(n, path, "must be a string, not %s", n.ShortTag())
	return "", false
}

func (p *parser) nonEmpty(path string, n *yaml.Node) (string, bool) {
	s, ok := p.str(path, n)
	if ok && strings.TrimSpace(s) == "" {
		p.addf(n, path, "must not be empty")
		return "", false
	}
	return s, ok
}

// MaxIDLength is the longest id a scene, zone, twin, actuator, collection or
// item may have.
const MaxIDLength = ident.MaxLength

func (p *parser) id(path string, n *yaml.Node) (string, bool) {
	s, ok := p.str(path, n)
	if !ok {
		return "", false
	}
	if !ident.Valid(s) {
		p.addf(n, path, "invalid id %q: want 1 to %d of a-z, 0-9 and -", s, MaxIDLength)
		return "", false
	}
	return s, true
}

func (p *parser) number(path string, n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		p.addf(n, path, "must be a number")
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		p.addf(n, path, "must be a number")
		return 0, false
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		p.addf(n, path, "must be a finite number, not %s", n.Value)
		return 0, false
	}
	return f, true
}

func (p *parser) vector(path string, n *yaml.Node) ([3]float64, bool) {
	var v [3]float64
	if n.Kind != yaml.SequenceNode || len(n.Content) != 3 {
		p.addf(n, path, "must be a list of 3 numbers [x, y, z]")
		return v, false
	}
	ok := true
	for i, c := range n.Content {
		f, good := p.number(index(path, i), c)
		v[i] = f
		ok = ok && good
	}
	return v, ok
}

func (p *parser) boolean(path string, n *yaml.Node) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.addf(n, path, "must be true or false")
		return false, false
	}
	return b, true
}

func (p *parser) sequence(path string, n *yaml.Node) ([]*yaml.Node, bool) {
	switch {
	case n.Kind == yaml.SequenceNode:
		return n.Content, true
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, true // `zones:` with nothing under it: an empty list
	}
	p.addf(n, path, "must be a list")
	return nil, false
}

// ids finds duplicates among the ids of one list.
type ids struct {
	what  string
	lines map[string]int
}

func newIDs(what string) *ids { return &ids{what: what, lines: map[string]int{}} }

func (p *parser) unique(set *ids, path string, n *yaml.Node, id string) bool {
	if first, dup := set.lines[id]; dup {
		p.addf(n, path, "duplicate %s id %q (first at line %d)", set.what, id, first)
		return false
	}
	set.lines[id] = n.Line
	return true
}

func (p *parser) scene(root *yaml.Node, src *sceneSource) *Scene {
	m, ok := p.mapping("", root, "id", "name", "description", "zones", "twins", "collections", "policies")
	if !ok {
		return nil
	}
	p.require("", root, m, "id", "name", "policies")
	s := &Scene{}
	if f, ok := m["id"]; ok {
		s.ID, _ = p.id("id", f.value)
		src.id = position{f.value.Line, f.value.Column}
	}
	if f, ok := m["name"]; ok {
		s.Name, _ = p.nonEmpty("name", f.value)
	}
	if f, ok := m["description"]; ok {
		s.Description, _ = p.str("description", f.value)
	}
	zoneIDs := newIDs("zone")
	if f, ok := m["zones"]; ok {
		items, _ := p.sequence("zones", f.value)
		for i, n := range items {
			if z, ok := p.zone(index("zones", i), n, zoneIDs); ok {
				s.Zones = append(s.Zones, z)
			}
		}
	}
	if f, ok := m["twins"]; ok {
		items, _ := p.sequence("twins", f.value)
		twinIDs := newIDs("twin")
		for i, n := range items {
			if t, ok := p.twin(index("twins", i), n, twinIDs, zoneIDs); ok {
				s.Twins = append(s.Twins, t)
			}
		}
	}
	if f, ok := m["collections"]; ok {
		items, _ := p.sequence("collections", f.value)
		collectionIDs := newIDs("collection")
		for i, n := range items {
			if c, ok := p.collection(index("collections", i), n, collectionIDs); ok {
				s.Collections = append(s.Collections, c)
			}
		}
	}
	if f, ok := m["policies"]; ok {
		s.PolicyFiles = p.policyFiles(f.value, src)
	}
	return s
}

// uniqueID reads the element's "id" field, if present, and claims it in
// set; it reports false after recording the problem.
func (p *parser) uniqueID(path string, m fields, set *ids) (string, bool) {
	f, present := m["id"]
	if !present {
		return "", true // a missing id is require's problem
	}
	id, good := p.id(join(path, "id"), f.value)
	return id, good && p.unique(set, join(path, "id"), f.value, id)
}

// identity reads the "id" (claimed in set) and "name" fields that zones,
// twins, actuators and collections share.
func (p *parser) identity(path string, m fields, set *ids) (id, name string, ok bool) {
	id, ok = p.uniqueID(path, m, set)
	if f, present := m["name"]; present {
		var good bool
		name, good = p.nonEmpty(join(path, "name"), f.value)
		ok = ok && good
	}
	return id, name, ok
}

func (p *parser) zone(path string, n *yaml.Node, zoneIDs *ids) (Zone, bool) {
	var z Zone
	m, ok := p.mapping(path, n, "id", "name", "min", "max")
	if !ok {
		return z, false
	}
	ok = p.require(path, n, m, "id", "name", "min", "max")
	var identityOK bool
	z.ID, z.Name, identityOK = p.identity(path, m, zoneIDs)
	ok = identityOK && ok
	minOK, maxOK := false, false
	if f, present := m["min"]; present {
		z.Min, minOK = p.vector(join(path, "min"), f.value)
	}
	if f, present := m["max"]; present {
		z.Max, maxOK = p.vector(join(path, "max"), f.value)
	}
	ok = ok && minOK && maxOK
	if minOK && maxOK {
		for axis, name := range [3]string{"x", "y", "z"} {
			if z.Max[axis] <= z.Min[axis] {
				p.addf(m["max"].value, join(path, "max"), "max %s (%g) must be greater than min %s (%g): a zone needs volume",
					name, z.Max[axis], name, z.Min[axis])
				ok = false
				break
			}
		}
	}
	return z, ok
}

func (p *parser) twin(path string, n *yaml.Node, twinIDs, zoneIDs *ids) (Twin, bool) {
	var t Twin
	m, ok := p.mapping(path, n, "id", "name", "zone", "actuators")
	if !ok {
		return t, false
	}
	ok = p.require(path, n, m, "id", "name", "zone")
	var identityOK bool
	t.ID, t.Name, identityOK = p.identity(path, m, twinIDs)
	ok = identityOK && ok
	if f, present := m["zone"]; present {
		zone, good := p.id(join(path, "zone"), f.value)
		if good {
			if _, known := zoneIDs.lines[zone]; !known {
				var known []string
				// Suggestions cost an edit distance per zone for every bad
				// reference; past a hand-written number of zones, skip them.
				if len(zoneIDs.lines) <= maxSuggestCandidates {
					for id := range zoneIDs.lines {
						known = append(known, id)
					}
					slices.Sort(known)
				}
				if s := suggest(zone, known); s != "" {
					p.addf(f.value, join(path, "zone"), "unknown zone %q (did you mean %q?)", zone, s)
				} else {
					p.addf(f.value, join(path, "zone"), "unknown zone %q: a twin must stand in a zone of this scene", zone)
				}
				good = false
			}
		}
		t.Zone = zone
		ok = ok && good
	}
	if f, present := m["actuators"]; present {
		items, good := p.sequence(join(path, "actuators"), f.value)
		ok = ok && good
		actuatorIDs := newIDs("actuator")
		for i, n := range items {
			a, good := p.actuator(index(join(path, "actuators"), i), n, actuatorIDs)
			ok = ok && good
			t.Actuators = append(t.Actuators, a)
		}
	}
	return t, ok
}

func (p *parser) actuator(path string, n *yaml.Node, actuatorIDs *ids) (Actuator, bool) {
	var a Actuator
	m, ok := p.mapping(path, n, "id", "name", "unit", "min", "max", "max_rate", "risk")
	if !ok {
		return a, false
	}
	ok = p.require(path, n, m, "id", "name", "unit", "min", "max", "max_rate", "risk")
	var identityOK bool
	a.ID, a.Name, identityOK = p.identity(path, m, actuatorIDs)
	ok = identityOK && ok
	if f, present := m["unit"]; present {
		var good bool
		a.Unit, good = p.nonEmpty(join(path, "unit"), f.value)
		ok = ok && good
	}
	minOK, maxOK := false, false
	if f, present := m["min"]; present {
		a.Min, minOK = p.number(join(path, "min"), f.value)
	}
	if f, present := m["max"]; present {
		a.Max, maxOK = p.number(join(path, "max"), f.value)
	}
	ok = ok && minOK && maxOK
	if minOK && maxOK && a.Max <= a.Min {
		p.addf(m["max"].value, join(path, "max"), "max (%g) must be greater than min (%g)", a.Max, a.Min)
		ok = false
	}
	if f, present := m["max_rate"]; present {
		var good bool
		a.MaxRate, good = p.number(join(path, "max_rate"), f.value)
		if good && a.MaxRate <= 0 {
			p.addf(f.value, join(path, "max_rate"), "must be greater than 0, not %g", a.MaxRate)
			good = false
		}
		ok = ok && good
	}
	ok = word(p, path, m, "risk", ParseRisk, "low, medium, high or critical", &a.Risk) && ok
	return a, ok
}

// word reads field name of m, when present, as one of a vocabulary's words
// (parse knows them, want lists them for the problem) into dst; it
// reports false when the field is there and not such a word.
func word[T any](p *parser, path string, m fields, name string, parse func(string) (T, error), want string, dst *T) bool {
	f, present := m[name]
	if !present {
		return true
	}
	s, good := p.str(join(path, name), f.value)
	if !good {
		return false
	}
	v, err := parse(s)
	if err != nil {
		p.addf(f.value, join(path, name), "unknown %s %q (want %s)", name, s, want)
		return false
	}
	*dst = v
	return true
}

// maxAmount is the largest amount an EIP-712 uint256 can carry.
var maxAmount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func (p *parser) collection(path string, n *yaml.Node, collectionIDs *ids) (Collection, bool) {
	var c Collection
	m, ok := p.mapping(path, n, "id", "name", "kind", "soulbound", "decimals", "items", "mints")
	if !ok {
		return c, false
	}
	ok = p.require(path, n, m, "id", "name", "kind")
	var identityOK bool
	c.ID, c.Name, identityOK = p.identity(path, m, collectionIDs)
	ok = identityOK && ok
	ok = word(p, path, m, "kind", ParseKind, "unique or fungible", &c.Kind) && ok
	if f, present := m["soulbound"]; present {
		var good bool
		c.Soulbound, good = p.boolean(join(path, "soulbound"), f.value)
		ok = ok && good
	}
	// Fields of the other kind are reported only when the kind is known,
	// so that a misspelt kind yields one problem, not several.
	if f, present := m["decimals"]; present {
		if c.Kind == KindUnique {
			p.addf(f.key, join(path, "decimals"), "only fungible collections have decimals")
			ok = false
		} else if d, good := p.decimals(join(path, "decimals"), f.value); good {
			c.Decimals = d
		} else {
			ok = false
		}
	}
	if f, present := m["items"]; present {
		if c.Kind == KindFungible {
			p.addf(f.key, join(path, "items"), "fungible collections have mints, not items")
			ok = false
		} else {
			items, good := p.sequence(join(path, "items"), f.value)
			ok = ok && good
			itemIDs := newIDs("item")
			for i, n := range items {
				item, good := p.item(index(join(path, "items"), i), n, itemIDs)
				ok = ok && good
				c.Items = append(c.Items, item)
			}
		}
	}
	if f, present := m["mints"]; present {
		if c.Kind == KindUnique {
			p.addf(f.key, join(path, "mints"), "unique collections have items, not mints")
			ok = false
		} else {
			items, good := p.sequence(join(path, "mints"), f.value)
			ok = ok && good
			total := new(big.Int)
			for i, n := range items {
				mint, good := p.mint(index(join(path, "mints"), i), n)
				ok = ok && good
				if good {
					total.Add(total, mint.Amount)
				}
				c.Mints = append(c.Mints, mint)
			}
			if total.Cmp(maxAmount) > 0 {
				p.addf(f.value, join(path, "mints"), "total supply exceeds 2^256-1 base units")
				ok = false
			}
		}
	}
	return c, ok
}

func (p *parser) decimals(path string, n *yaml.Node) (uint8, bool) {
	var d int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&d) != nil {
		p.addf(n, path, "must be a whole number from 0 to 18")
		return 0, false
	}
	if d < 0 || d > 18 {
		p.addf(n, path, "must be from 0 to 18, not %d", d)
		return 0, false
	}
	return uint8(d), true
}

func (p *parser) item(path string, n *yaml.Node, itemIDs *ids) (Item, bool) {
	var it Item
	m, ok := p.mapping(path, n, "id", "owner")
	if !ok {
		return it, false
	}
	ok = p.require(path, n, m, "id", "owner")
	var idOK bool
	it.ID, idOK = p.uniqueID(path, m, itemIDs)
	ok = idOK && ok
	if f, present := m["owner"]; present {
		var good bool
		it.Owner, good = p.owner(join(path, "owner"), f.value)
		ok = ok && good
	}
	return it, ok
}

func (p *parser) mint(path string, n *yaml.Node) (Mint, bool) {
	var mt Mint
	m, ok := p.mapping(path, n, "to", "amount")
	if !ok {
		return mt, false
	}
	ok = p.require(path, n, m, "to", "amount")
	if f, present := m["to"]; present {
		var good bool
		mt.To, good = p.owner(join(path, "to"), f.value)
		ok = ok && good
	}
	if f, present := m["amount"]; present {
		var good bool
		mt.Amount, good = p.amount(join(path, "amount"), f.value)
		ok = ok && good
	}
	return mt, ok
}

func (p *parser) owner(path string, n *yaml.Node) (string, bool) {
	s, ok := p.nonEmpty(path, n)
	if !ok {
		return "", false
	}
	if s == RealmOwner {
		return s, true
	}
	if !isHexAddress(s) {
		p.addf(n, path, "%q is neither %q nor a 0x address of 40 hex digits", s, RealmOwner)
		return "", false
	}
	want := checksumAddress(s)
	if s != want {
		p.addf(n, path, "address %s is not in EIP-55 checksum form (want %s)", s, want)
		return "", false
	}
	if s == zeroAddress {
		p.addf(n, path, "the zero address cannot own assets")
		return "", false
	}
	return s, true
}

func (p *parser) amount(path string, n *yaml.Node) (*big.Int, bool) {
	s, ok := p.str(path, n)
	if !ok {
		return nil, false
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		p.addf(n, path, "must be a decimal string of base units, like \"1000\"; got %q", s)
		return nil, false
	}
	if len(s) > 1 && s[0] == '0' {
		p.addf(n, path, "%q must not have leading zeros", s)
		return nil, false
	}
	if len(s) > 78 { // 2^256 has 78 decimal digits; stop before big work
		p.addf(n, path, "must be below 2^256")
		return nil, false
	}
	v, _ := new(big.Int).SetString(s, 10)
	if v.Sign() <= 0 {
		p.addf(n, path, "must be greater than 0")
		return nil, false
	}
	if v.Cmp(maxAmount) > 0 {
		p.addf(n, path, "must be below 2^256")
		return nil, false
	}
	return v, true
}

func (p *parser) policyFiles(n *yaml.Node, src *sceneSource) []string {
	items, ok := p.sequence("policies", n)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.addf(n, "policies", "at least one Cedar file is required: without policies every request is denied")
		return nil
	}
	var files []string
	seen := map[string]int{}
	for i, item := range items {
		path := index("policies", i)
		name, ok := p.nonEmpty(path, item)
		if !ok {
			continue
		}
		if !fs.ValidPath(name) || name == "." {
			p.addf(item, path, "%q must be a relative path inside the scene folder, like policies.cedar", name)
			continue
		}
		if !strings.HasSuffix(name, ".cedar") {
			p.addf(item, path, "%q must be a Cedar file ending in .cedar", name)
			continue
		}
		if first, dup := seen[name]; dup {
			p.addf(item, path, "duplicate policy file %q (first at line %d)", name, first)
			continue
		}
		seen[name] = item.Line
		files = append(files, name)
		src.policies = append(src.policies, position{item.Line, item.Column})
	}
	return files
}
