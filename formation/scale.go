package formation

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"mhrun/policy"
)

// Scales is a parsed -m: the count of each process it names, and All, the
// count of every other process when HasAll (foreman's all=N). A count is
// a whole number or policy.ScaleMax.
type Scales struct {
	Named  map[string]int
	All    int
	HasAll bool

	allItem string // the all=N item, for messages
}

// Given reports whether the values set any count: -m with no items (-m "")
// is as if no -m had been given.
func (s Scales) Given() bool { return len(s.Named) > 0 || s.HasAll }

// ParseScales reads -m values: NAME=N items separated by commas, the flag
// repeatable, N a whole number or max; the item all=N sets the count of
// every process not named. A later item for the same name wins.
//
// How -m, all= and the policy's scale= decide how many instances of each
// process a start runs (Load applies them):
//
//   - Without -m, each process runs the scale= of its policy (default 1).
//   - With -m, as with foreman's -m, the values are the whole formation:
//     each process named runs the count given, every other the count of
//     all=N, or none when there is no all=. So -m web=2 runs two web and
//     nothing else, -m all=0,web=1 the same with one web, and
//     -m all=1,worker=0 everything but the worker, once each. The
//     policy's scale= does not apply then: -m says every count.
//   - mhrun start NAME… -m …: a process named on the command line that -m
//     does not name keeps its scale= (all= still counts for it); the
//     processes not named on the command line are not run at all.
//   - all=N gives a singleton at most 1: all= does not name it, and a
//     singleton runs once. Naming one with N > 1 is an error, as
//     scale= > 1 is.
//   - A process at 0 is not started, and nothing waits for it (after=).
//
// foreman's own rule (lib/foreman/engine.rb, parse_formation): the
// formation is a hash whose default is 0, set by all=N, and -m defaults
// to "all=1". A process named all cannot be given a count of its own by
// -m, as in foreman: all= always means every process.
func ParseScales(values []string) (Scales, error) {
	s := Scales{Named: map[string]int{}}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, n, ok := strings.Cut(item, "=")
			if !ok || name == "" {
				return Scales{}, fmt.Errorf("scale %q: want NAME=N, e.g. web=2 (or all=N for every process not named)", item)
			}
			k, err := policy.ParseScale(n)
			if err != nil {
				// Name the item once: "scale web=x: want ...".
				return Scales{}, fmt.Errorf("scale %s: %s", item, strings.TrimPrefix(err.Error(), "scale "+strconv.Quote(n)+": "))
			}
			if name == "all" {
				s.All, s.HasAll, s.allItem = k, true, item
				continue
			}
			s.Named[name] = k
		}
	}
	return s, nil
}

// ParseScale reads the NAME=N arguments of a live mhrun scale into a map,
// as ParseScales reads them. It refuses all=: a live scale changes the
// processes it names and leaves the others as they run.
func ParseScale(values []string) (map[string]int, error) {
	s, err := ParseScales(values)
	if err != nil {
		return nil, err
	}
	if s.HasAll {
		return nil, fmt.Errorf("scale %s: all= is for -m when a formation starts; a live scale changes only the processes it names, e.g. mhrun scale web=2 worker=0", s.allItem)
	}
	return s.Named, nil
}

// applyScale sets each process's Scale from the -m values, by the rules of
// ParseScales; only is the processes named on the command line.
func (f *Formation) applyScale(values, only []string, cpus int) error {
	s, err := ParseScales(values)
	if err != nil || !s.Given() {
		return err
	}
	names := f.Names()
	keys := make([]string, 0, len(s.Named))
	for k := range s.Named {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, name := range keys {
		if f.Process(name) == nil {
			errs = append(errs, unknown("scale", name, names))
		} else if len(only) > 0 && !slices.Contains(only, name) {
			errs = append(errs, fmt.Errorf("scale %s=%s: %s is not started: the command names only %s (name %s too, or leave it out of -m)",
				name, scaleText(s.Named[name]), name, strings.Join(only, ", "), name))
		}
	}
	perCPU := min(max(cpus, 1), policy.MaxScale)
	for _, p := range f.Processes {
		n, named := s.Named[p.Name]
		switch {
		case named:
		case s.HasAll:
			n = s.All
			if p.Policy.Singleton && n != 0 {
				n = 1 // all= names no singleton, and one runs once (max too)
			}
		case slices.Contains(only, p.Name):
			continue // its scale=
		default:
			n = 0
		}
		fromMax := n == policy.ScaleMax
		if fromMax {
			n = perCPU
		}
		if err := policy.CheckScale(p.Name, p.Policy, n); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Scale, p.FromMax = n, fromMax
	}
	return errors.Join(errs...)
}

// scaleText is a scale as written: a count, or max.
func scaleText(n int) string {
	if n == policy.ScaleMax {
		return "max"
	}
	return strconv.Itoa(n)
}
