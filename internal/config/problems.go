package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problems lists every invalid setting found, each "key: message" naming its
// key (for example "apps[0].oidc.clientID: required"). The order is the
// file's: problems are stable-sorted by the line of their key (or of its
// closest ancestor present in the file), so two runs on the same input give
// the same list. No entry ever contains a secret value.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

// problems collects Problems with the line of the key each one names.
type problems struct {
	list  []problem
	lines map[string]int // key path → line in the file
}

type problem struct {
	key, msg string
}

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, problem{key, fmt.Sprintf(format, args...)})
}

func (p *problems) empty() bool { return len(p.list) == 0 }

// lineOf returns the line of key, or of its closest ancestor in the file.
func (p *problems) lineOf(key string) int {
	for {
		if l, ok := p.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return p.lines[""]
		}
		key = key[:i]
	}
}

func (p *problems) sorted() Problems {
	list := slices.Clone(p.list)
	slices.SortStableFunc(list, func(a, b problem) int { return p.lineOf(a.key) - p.lineOf(b.key) })
	out := make(Problems, len(list))
	for i, q := range list {
		out[i] = q.key + ": " + q.msg
	}
	return out
}

// yamlValue matches the value yaml quotes in a type error ("!!str `abc...`").
var yamlValue = regexp.MustCompile("(?s)(!!\\w+) `.*` into")

// addYAML reports a decoding error that checkKeys did not foresee, without
// the value the YAML library quotes in it (it could be a secret).
func (p *problems) addYAML(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := err.Error()
		if strings.ContainsAny(msg, "`\"'{[") { // may quote a value
			msg = "the YAML cannot be decoded"
		}
		p.add("config", "%s", msg)
		return
	}
	for _, e := range te.Errors {
		p.add("config", "%s", yamlValue.ReplaceAllString(e, "$1 into"))
	}
}
