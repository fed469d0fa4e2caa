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
// processes balancing one port, and balance together with schedule; and,
// for socket=, socket with balance, sticky, schedule or port, a ready=
// check that any instance would answer (tcp or http on $PORT, which is
// the shared socket), and a port two processes share or balance (the
// same number, whatever the address); it then returns no policies.
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
		if p.Socket != 0 {
			resolveSocket(name, p, lineOf, fail)
		}
		if p.Sticky && p.Balance == 0 && p.Socket == 0 {
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
		if p.Socket != 0 && p.Balance == 0 {
			if balancers[p.Socket] == nil {
				ports = append(ports, p.Socket)
			}
			balancers[p.Socket] = append(balancers[p.Socket], name)
		}
	}
	for _, port := range ports {
		// The process whose balance= comes first keeps the port.
		b := balancers[port]
		keyOf := func(name string) string {
			if policies[name].Balance != 0 {
				return "balance"
			}
			return "socket"
		}
		slices.SortStableFunc(b, func(x, y string) int { return lineOf(x, keyOf(x)) - lineOf(y, keyOf(y)) })
		for _, other := range b[1:] {
			by := "balanced by " + b[0]
			if keyOf(b[0]) == "socket" {
				by = b[0] + "'s shared socket"
			}
			fail(lineOf(other, keyOf(other)), "%s: %s=%s is already %s; give each balanced or socket process its own port",
				other, keyOf(other), formatPortOf(policies[other], keyOf(other)), by)
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

// formatPortOf is the value of key (balance or socket) in p.
func formatPortOf(p Policy, key string) string {
	if key == "balance" {
		return formatPort(p.Balance)
	}
	return formatSocket(p)
}

// resolveSocket reports what does not go with socket= in p.
func resolveSocket(name string, p Policy, lineOf func(name, key string) int, fail func(int, string, ...any)) {
	at := func(key string) int { return max(lineOf(name, "socket"), lineOf(name, key)) }
	switch {
	case p.Balance != 0:
		fail(at("balance"), "%s: socket and balance do not go together: socket= hands the listening socket to the instances, balance= has mhrun proxy the port; keep one", name)
	case p.Sticky:
		fail(at("sticky"), "%s: sticky needs balance=PORT: with socket= the kernel picks the instance, which cannot be sticky; drop sticky, or use balance= instead of socket=", name)
	}
	if p.Schedule != "" {
		fail(at("schedule"), "%s: socket and schedule do not go together: a scheduled job cannot serve a port", name)
	}
	if p.Port != 0 {
		fail(at("port"), "%s: socket and port do not go together: socket= sets $PORT to the socket's port, %d; drop port=", name, p.Socket)
	}
	if k := p.Ready.Kind; k == ReadyHTTP || (k == ReadyTCP && (p.Ready.Port == 0 || p.Ready.Port == p.Socket)) {
		fail(at("ready"), "%s: ready=%s would be answered by any instance on the shared socket (mhrun itself holds it open), so it says nothing of the new one; use ready=log:REGEX, ready=notify or ready=exec:CMD, or no ready=", name, p.Ready)
	}
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
