package policy

// The per-process environment: env.NAME=value, one item per variable,
// quoted like every value (env.GREETING="hello world"). Each variable is
// a key of its own, so `*:` gives defaults that a process's own
// env.NAME replaces name by name, lines for one process merge, and a
// variable set twice for one process is an error like any key. The value
// is taken as written: no $VAR expansion. NAME is a shell variable name;
// PORT, PS and MHRUN_* are mhrun's and refused. What no exec can pass (a
// NUL byte, a NAME=value over 128 KiB) is refused by the formation, as
// for env files.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// envPrefix starts the key of a per-process variable: env.HOST.
const envPrefix = "env."

// EnvVars returns the per-process environment of p sorted by name, each
// as a KeyValue of the variable's name and value.
func (p Policy) EnvVars() []KeyValue {
	kv := make([]KeyValue, 0, len(p.Env))
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		kv = append(kv, KeyValue{k, p.Env[k]})
	}
	return kv
}

// ReservedEnv reports why mhrun keeps the variable name for itself, or
// "" when a process may set it.
func ReservedEnv(name string) string {
	switch {
	case name == "PORT":
		return "PORT is mhrun's: each instance gets its own; set port= for this process's first port"
	case name == "PS":
		return "PS is mhrun's: the instance's name, like web.2"
	case strings.HasPrefix(name, "MHRUN_"):
		return "names starting with MHRUN_ are mhrun's"
	}
	return ""
}

// parseEnvItem handles an item whose key is env.NAME, or looks like a
// try at one; ok is false for any other key. It records a good item in
// e (nil after a bad name) and returns an error message, or "".
func (f *File) parseEnvItem(e *entry, line int, it item) (msg string, ok bool) {
	name, isEnv := strings.CutPrefix(it.key, envPrefix)
	if !isEnv {
		msg = envNearMiss(it)
		return msg, msg != ""
	}
	example := envPrefix + "HOST=127.0.0.1"
	if isVarName(name) {
		example = it.key + "=VALUE"
	}
	switch {
	case name == "":
		return fmt.Sprintf("%s needs a variable name: write env.NAME=value, e.g. %s", it.key, example), true
	case !isVarName(name):
		return fmt.Sprintf("%s: %s is not a variable name: want letters, digits and _, not starting with a digit, e.g. %s",
			it.key, shortQuote(name), envPrefix+"HOST=127.0.0.1"), true
	case ReservedEnv(name) != "":
		return fmt.Sprintf("%s: %s", it.key, ReservedEnv(name)), true
	case !it.hasValue:
		return fmt.Sprintf("%s needs a value, e.g. %s (%s=\"\" for an empty one)", it.key, example, it.key), true
	}
	if e != nil {
		if prev, dup := e.set[it.key]; dup && prev.line == line {
			return fmt.Sprintf("%s is set twice for %s on this line", it.key, e.name), true
		} else if dup {
			return fmt.Sprintf("%s is set twice for %s, on lines %d and %d", it.key, e.name, prev.line, line), true
		}
		value := it.value
		e.set[it.key] = setting{line: line, apply: func(p *Policy) {
			env := maps.Clone(p.Env)
			if env == nil {
				env = map[string]string{}
			}
			env[name] = value
			p.Env = env
		}}
	}
	return "", true
}

// envNearMiss returns the message for a key that is no env.NAME but
// looks meant as one (env=..., ENV.HOST, evn.HOST, environment.HOST), or
// "".
func envNearMiss(it item) string {
	before, name, dotted := strings.Cut(it.key, ".")
	switch {
	case it.key == "env" || it.key == "environment":
		if first, _, _ := strings.Cut(strings.TrimSpace(it.value), " "); it.hasValue && strings.Contains(first, "=") {
			return fmt.Sprintf("%s: set one variable per item: write %s%s (and env.NAME=value for each other one)", it.key, envPrefix, first)
		}
		return fmt.Sprintf("%s: set one variable per item: write env.NAME=value, e.g. env.HOST=127.0.0.1", it.key)
	case dotted && isVarName(name) && (strings.EqualFold(before, "env") || Suggest(before, []string{"env", "environment"}) != ""):
		return fmt.Sprintf("unknown key %q (did you mean %q?)", it.key, envPrefix+name)
	}
	return ""
}

// isVarName reports whether s is a shell variable name: a letter or _,
// then letters, digits and _.
func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// formatEnv returns the per-process variables of p as policy items,
// sorted by name: env.HOST=127.0.0.1 env.GREETING="hello world".
func formatEnv(p Policy) []string {
	var items []string
	for _, kv := range p.EnvVars() {
		items = append(items, envPrefix+kv.Key+"="+quote(kv.Value))
	}
	return items
}
