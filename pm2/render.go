package pm2

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// flagKeys are the policy keys written bare when set.
var flagKeys = map[string]bool{"optional": true, "sticky": true, "singleton": true}

// splitEnv takes the variables every process sets alike out of the
// processes and returns them, for .env (or the "*:" line with
// inPolicy). A variable a policy line cannot hold (a line break) and
// .env does not take is left out with a warning.
func splitEnv(procs []*proc, inPolicy bool, r *reader) []envVar {
	var shared []envVar
	if len(procs) > 0 && (!inPolicy || len(procs) > 1) {
		for _, v := range procs[0].env {
			same := true
			for _, p := range procs[1:] {
				if w, ok := p.pol.Env[v.name]; !ok || w != v.value {
					same = false
					break
				}
			}
			if !same {
				continue
			}
			if _, ok := dotenvValue(v.value); !ok && !inPolicy {
				continue
			}
			shared = append(shared, v)
		}
	}
	for _, p := range procs {
		for _, v := range shared {
			delete(p.pol.Env, v.name)
		}
	}
	lineBreak := func(v string) bool { return strings.ContainsAny(v, "\n\r") }
	for _, p := range procs {
		for _, v := range p.env {
			if val, ok := p.pol.Env[v.name]; ok && lineBreak(val) {
				delete(p.pol.Env, v.name)
				r.app = p.spec.index
				r.warn(v.line, "env", fmt.Sprintf("%s left out: its value has a line break, which a policy line cannot hold (put it in .env, or in a file whose path the app reads)", v.name))
			}
		}
	}
	r.app = -1
	if inPolicy {
		var kept []envVar
		for _, v := range shared {
			if lineBreak(v.value) {
				r.warn(v.line, "env", fmt.Sprintf("%s left out: its value has a line break, which a policy line cannot hold (put it in .env)", v.name))
				continue
			}
			kept = append(kept, v)
		}
		shared = kept
	}
	return shared
}

// header is the first line of each file written.
func header(file string) string {
	return "# Imported from " + filepath.Base(file) + " by mhrun import pm2."
}

func renderProcfile(procs []*proc, file string) string {
	var b strings.Builder
	b.WriteString(header(file) + "\n")
	for _, p := range procs {
		b.WriteString(p.name + ": " + p.command + "\n")
	}
	return b.String()
}

func renderPolicy(procs []*proc, file string, shared []envVar, inPolicy bool) string {
	star := starPolicy()
	starFields := star.Fields()
	type line struct{ name, items string }
	starItems := []string{"restart=always", "stop-signal=INT"}
	if inPolicy {
		starEnv := map[string]string{}
		for _, v := range shared {
			starEnv[v.name] = v.value
		}
		starItems = append(starItems, envItems(starEnv)...)
	}
	lines := []line{{"*", strings.Join(starItems, " ")}}
	for _, p := range procs {
		var items []string
		for i, kv := range p.pol.Fields() {
			if kv.Value == starFields[i].Value {
				continue
			}
			if flagKeys[kv.Key] && kv.Value == "yes" {
				items = append(items, kv.Key)
				continue
			}
			items = append(items, kv.Key+"="+quote(kv.Value))
		}
		items = append(items, envItems(p.pol.Env)...)
		if len(items) > 0 {
			lines = append(lines, line{p.name, strings.Join(items, " ")})
		}
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l.name)+1)
	}
	var b strings.Builder
	b.WriteString(header(file) + "\n")
	b.WriteString("# PM2 restarts an app whatever its exit code, and stops it with SIGINT:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s %s\n", width, l.name+":", l.items)
	}
	return b.String()
}

// envItems returns env.NAME=value items sorted by name.
func envItems(env map[string]string) []string {
	var items []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		items = append(items, "env."+k+"="+quote(env[k]))
	}
	return items
}

func renderDotEnv(shared []envVar, file string) string {
	if len(shared) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(header(file) + " Variables every app sets alike;\n")
	b.WriteString("# the real environment wins over them (mhrun start --env-override turns that around).\n")
	for _, v := range shared {
		val, _ := dotenvValue(v.value)
		b.WriteString(v.name + "=" + val + "\n")
	}
	return b.String()
}

// quote writes a policy value: as it is, or in double quotes with " and \
// escaped when it is empty or holds blanks, control characters or quotes
// (as policy.Policy.Format does).
func quote(v string) string {
	if v != "" && !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// dotenvValue writes v as a godotenv value that reads back as v: bare
// when it is plain printable ASCII, in single quotes (taken literally)
// when it can be, else in double quotes with \\ \" \$ \n \r escaped. ok
// is false for what godotenv cannot read back: a value that would need
// double quotes and ends in " or \.
func dotenvValue(v string) (string, bool) {
	plain := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("#$\"'\\`", c) >= 0 {
			plain = false
			break
		}
	}
	switch {
	case plain:
		return v, true
	case !strings.ContainsAny(v, "'\n\r") && !strings.HasSuffix(v, `\`):
		return "'" + v + "'", true
	case strings.HasSuffix(v, `"`) || strings.HasSuffix(v, `\`):
		return "", false
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(v) + `"`, true
}
