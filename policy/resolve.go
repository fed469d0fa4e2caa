package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Resolve returns the effective policy of every process in names (the
// Procfile's processes): Default, then the "*" keys, then the process's
// own keys. It reports, as an ErrorList at the offending lines, a policy
// name that is not in names, after= naming an unknown process or itself,
// after= cycles, scale above 1 with singleton, sticky without balance, two
// processes balancing one port, and balance together with schedule; it
// then returns no policies.
func (f *File) Resolve(names []string) (map[string]Policy, error) {
	var errs ErrorList
	fail := func(line int, format string, args ...any) {
		errs = append(errs, newError(f.name, line, fmt.Sprintf(format, args...)))
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, e := range f.entries {
		if e.name != "*" && !known[e.name] {
			fail(e.line, "%s is not a process in the Procfile%s", e.name, didYouMean(e.name, names))
		}
	}

	star := f.byName["*"]
	lineOf := f.KeyLine

	policies := make(map[string]Policy, len(names))
	balancers := map[int][]string{}
	var ports []int // balanced, in order
	for _, name := range names {
		if _, ok := policies[name]; ok {
			continue // a Procfile has no duplicates; be safe anyway
		}
		p := Default()
		star.apply(&p)
		if e := f.byName[name]; e != nil && name != "*" {
			e.apply(&p)
		}
		policies[name] = p

		for _, a := range p.After {
			switch {
			case a == name:
				fail(lineOf(name, "after"), "%s: after=%s names itself; a process cannot wait for itself", name, a)
			case !known[a]:
				fail(lineOf(name, "after"), "%s: after=%s: %s is not a process in the Procfile%s", name, strings.Join(p.After, ","), a, didYouMean(a, names))
			}
		}
		if p.Singleton && (p.Scale > 1 || p.Scale == ScaleMax) {
			fail(max(lineOf(name, "singleton"), lineOf(name, "scale")),
				"%s: singleton allows one instance, not scale=%s; drop scale or singleton", name, formatScale(p.Scale))
		}
		if p.Sticky && p.Balance == 0 {
			fail(lineOf(name, "sticky"), "%s: sticky needs balance=PORT", name)
		}
		if p.Balance != 0 && p.Schedule != "" {
			fail(max(lineOf(name, "balance"), lineOf(name, "schedule")),
				"%s: balance and schedule do not go together: a scheduled job cannot serve a port", name)
		}
		if p.Balance != 0 {
			if balancers[p.Balance] == nil {
				ports = append(ports, p.Balance)
			}
			balancers[p.Balance] = append(balancers[p.Balance], name)
		}
	}
	for _, port := range ports {
		// The process whose balance= comes first keeps the port.
		b := balancers[port]
		slices.SortStableFunc(b, func(x, y string) int { return lineOf(x, "balance") - lineOf(y, "balance") })
		for _, other := range b[1:] {
			fail(lineOf(other, "balance"), "%s: balance=%d is already balanced by %s; give each balanced process its own port",
				other, port, b[0])
		}
	}
	for _, c := range afterCycles(names, policies) {
		fail(lineOf(c[0], "after"), "after= cycle: %s", strings.Join(c, " -> "))
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return policies, nil
}

// KeyLine returns the line that set key for the process name: a line of
// its own, else the "*" line's, else 0. Checks made after Resolve (of
// the files a policy names) use it to report FILE:LINE.
func (f *File) KeyLine(name, key string) int {
	if e := f.byName[name]; e != nil {
		if s, ok := e.set[key]; ok {
			return s.line
		}
	}
	if star := f.byName["*"]; star != nil {
		return star.set[key].line
	}
	return 0
}

// Name is the file name the policy was parsed as, for messages.
func (f *File) Name() string { return f.name }

// apply sets the keys of e in p; e may be nil.
func (e *entry) apply(p *Policy) {
	if e == nil {
		return
	}
	for _, k := range keys {
		if s, ok := e.set[k.name]; ok {
			s.apply(p)
		}
	}
	for k, s := range e.set {
		if strings.HasPrefix(k, envPrefix) {
			s.apply(p) // each sets its own variable: order does not matter
		}
	}
}

// afterCycles returns each cycle of after= edges once, as names that start
// and end with the cycle's process that comes first in names.
func afterCycles(names []string, policies map[string]Policy) [][]string {
	order := map[string]int{}
	for i, n := range names {
		order[n] = i
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var cycles [][]string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		for _, m := range policies[n].After {
			if _, ok := order[m]; !ok || m == n {
				continue
			}
			switch state[m] {
			case unseen:
				visit(m)
			case active:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				ring := stack[i:]
				first := 0
				for j, r := range ring {
					if order[r] < order[ring[first]] {
						first = j
					}
				}
				c := append(append(append([]string{}, ring[first:]...), ring[:first]...), ring[first])
				if key := strings.Join(c, " "); !seen[key] {
					seen[key] = true
					cycles = append(cycles, c)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range names {
		if state[n] == unseen {
			visit(n)
		}
	}
	return cycles
}

// CheckScale reports whether n instances (or ScaleMax) are allowed for the
// process name with policy p: a singleton allows at most one.
func CheckScale(name string, p Policy, n int) error {
	switch {
	case n < 0 && n != ScaleMax:
		return fmt.Errorf("%s: scale %d: want a whole number >= 0, or max", name, n)
	case n > MaxScale:
		return fmt.Errorf("%s: scale %d: %s", name, n, tooMany)
	case p.Singleton && (n > 1 || n == ScaleMax):
		return fmt.Errorf("%s is a singleton: scale it to 0 or 1, not %s", name, formatScale(n))
	}
	return nil
}
