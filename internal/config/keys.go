package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the nodes checkKeys visits, aliases included, so that an
// alias bomb costs a problem, not the CPU.
const maxNodes = 1 << 16

// checkKeys walks the YAML tree against the Config type and reports, each
// with its full key path and line: unknown keys, duplicate keys and values
// of the wrong kind. Messages never quote a value (it could be a secret).
// It also records the line of every key it sees, to sort problems.
func checkKeys(n *yaml.Node, t reflect.Type, key string, p *problems) {
	budget := maxNodes
	w := walker{p: p, budget: &budget}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	p.lines[""] = n.Line
	w.walk(n, t, key)
}

type walker struct {
	p      *problems
	budget *int
}

var durationType = reflect.TypeFor[time.Duration]()

func (w walker) walk(n *yaml.Node, t reflect.Type, key string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if *w.budget--; *w.budget == 0 {
		w.p.add(keyOr(key), "too many nodes or aliases (line %d)", n.Line)
	}
	if *w.budget <= 0 {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the default
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		if n.Kind != yaml.ScalarNode {
			w.p.add(keyOr(key), "must be %s (line %d)", kindName(t), n.Line)
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			w.p.add(keyOr(key), "must be %s (line %d)", kindName(t), n.Line)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.p.add(keyOr(key), "must be a list (line %d)", n.Line)
			return
		}
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", key, i)
			w.p.lines[k] = c.Line
			w.walk(c, t.Elem(), k)
		}
	default:
		if n.Kind != yaml.MappingNode {
			w.p.add(keyOr(key), "must be a mapping (line %d)", n.Line)
			return
		}
		w.mapping(n, t, key, map[string]int{})
	}
}

// mapping checks the keys of n, a mapping decoded into struct type t; seen
// holds the keys already set, to report duplicates. It is nil for a mapping
// merged in with "<<", whose keys the explicit ones override.
func (w walker) mapping(n *yaml.Node, t reflect.Type, key string, seen map[string]int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.ShortTag() == "!!merge" {
			w.merge(vn, t, key)
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			w.p.add(keyOr(key), "keys must be plain names (line %d)", kn.Line)
			continue
		}
		k := kn.Value
		if key != "" {
			k = key + "." + kn.Value
		}
		if seen != nil {
			if first, dup := seen[kn.Value]; dup {
				w.p.add(k, "duplicate key (line %d, first at line %d)", kn.Line, first)
				continue
			}
			seen[kn.Value] = kn.Line
			w.p.lines[k] = kn.Line
		}
		f, ok := field(t, kn.Value)
		if !ok {
			w.p.add(k, "unknown key (line %d)", kn.Line)
			continue
		}
		w.walk(vn, f.Type, k)
	}
}

func (w walker) merge(n *yaml.Node, t reflect.Type, key string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if *w.budget--; *w.budget == 0 {
		w.p.add(keyOr(key), "too many nodes or aliases (line %d)", n.Line)
	}
	if *w.budget <= 0 {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		w.mapping(n, t, key, nil)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			w.merge(c, t, key)
		}
	default:
		w.p.add(keyOr(key), "a merge (<<) must name a mapping (line %d)", n.Line)
	}
}

// field finds the struct field yaml decodes key into.
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration like 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	default:
		return "a mapping"
	}
}

func keyOr(key string) string {
	if key == "" {
		return "config"
	}
	return key
}
