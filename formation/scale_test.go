package formation

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mhrun/policy"
)

// Issue 17: foreman's -m web=2 runs only web (a process -m does not name
// runs 0 times) and all=N sets every other; mhrun ran everything and
// refused all=. The rules are ParseScales's.
func TestScaleFormation(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "migrate: ./migrate\nweb: ./web\nworker: ./worker\nclock: ./clock\nreport: ./report\n",
		"Procfile.policy": "web: scale=3 after=migrate\nclock: singleton\nreport: schedule=\"@daily\"\n",
	})
	tests := []struct {
		m    []string
		only []string
		want string // "migrate web worker clock report", or an error
	}{
		// Without -m, each process runs its scale=.
		{nil, nil, "1 3 1 1 1"},
		{[]string{""}, nil, "1 3 1 1 1"},
		{[]string{" , "}, nil, "1 3 1 1 1"},
		// With -m, the values are the whole formation.
		{[]string{"web=2"}, nil, "0 2 0 0 0"},
		{[]string{"web=2,worker=1"}, nil, "0 2 1 0 0"},
		{[]string{"web=2", "worker=1"}, nil, "0 2 1 0 0"},
		{[]string{"all=0,web=1"}, nil, "0 1 0 0 0"},
		{[]string{"web=1,all=0"}, nil, "0 1 0 0 0"}, // order does not matter, as in foreman
		{[]string{"all=1,worker=0"}, nil, "1 1 0 1 1"},
		{[]string{"all=1"}, nil, "1 1 1 1 1"}, // foreman's default; not the policy's scale=3
		{[]string{"all=2"}, nil, "2 2 2 1 2"}, // a singleton runs once
		{[]string{"all=max"}, nil, "4 4 4 1 4"},
		{[]string{"all=0"}, nil, "0 0 0 0 0"},
		{[]string{"web=max"}, nil, "0 4 0 0 0"},
		{[]string{"web=2,web=5"}, nil, "0 5 0 0 0"}, // a later item wins
		{[]string{"all=2,all=0,clock=1"}, nil, "0 0 0 1 0"},
		// With NAMEs: the named keep their scale= unless -m says.
		{nil, []string{"web"}, "- 3 - - -"},
		{[]string{"worker=2"}, []string{"web", "worker"}, "- 3 2 - -"},
		{[]string{"all=2"}, []string{"web", "worker"}, "- 2 2 - -"},
		// Errors.
		{[]string{"clock=2"}, nil, "clock is a singleton: scale it to 0 or 1, not 2"},
		{[]string{"all=1,wbe=2"}, nil, `scale: unknown process "wbe" (did you mean "web"?)`},
		{[]string{"all"}, nil, `scale "all": want NAME=N, e.g. web=2 (or all=N for every process not named)`},
		{[]string{"all=lots"}, nil, "scale all=lots: want a whole number >= 0, or max for one per CPU"},
		{[]string{"all=1001"}, nil, "scale all=1001: want at most 1000 instances"},
		{[]string{"worker=2"}, []string{"web"}, "scale worker=2: worker is not started: the command names only web (name worker too, or leave it out of -m)"},
		{[]string{"all=1,report=max"}, []string{"web", "clock"}, "scale report=max: report is not started: the command names only web, clock"},
	}
	for _, tt := range tests {
		f, err := Load(Options{Dir: dir, Environ: []string{}, CPUs: 4, Scale: tt.m, Only: tt.only})
		var got string
		if err != nil {
			got = err.Error()
		} else {
			var counts []string
			for _, name := range []string{"migrate", "web", "worker", "clock", "report"} {
				if p := f.Process(name); p != nil {
					counts = append(counts, fmt.Sprint(p.Scale))
				} else {
					counts = append(counts, "-")
				}
			}
			got = strings.Join(counts, " ")
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("-m %q, NAMEs %q: %s\nwant %s", tt.m, tt.only, got, tt.want)
		}
	}
}

// A live mhrun scale changes only the processes it names: its parser
// refuses all=, which only -m takes.
func TestParseScale(t *testing.T) {
	got, err := ParseScale([]string{"web=2,worker=0", "clock=max"})
	if want := map[string]int{"web": 2, "worker": 0, "clock": policy.ScaleMax}; err != nil || !maps.Equal(got, want) {
		t.Errorf("ParseScale = %v, %v; want %v", got, err, want)
	}
	_, err = ParseScale([]string{"web=1,all=0"})
	want := "scale all=0: all= is for -m when a formation starts; a live scale changes only the processes it names, e.g. mhrun scale web=2 worker=0"
	if err == nil || err.Error() != want {
		t.Errorf("ParseScale(all=0) = %v\nwant %s", err, want)
	}
}

// A process named all gets the count of all=, as in foreman, where all=
// always means every process.
func TestScaleProcessNamedAll(t *testing.T) {
	dir := project(t, map[string]string{"Procfile": "all: ./all\nweb: ./web\n"})
	f, err := Load(Options{Dir: dir, Environ: []string{}, Scale: []string{"all=2,web=1"}})
	if err != nil || f.Process("all").Scale != 2 || f.Process("web").Scale != 1 {
		t.Errorf("-m all=2,web=1: %v", err)
	}
}

// mhrun save writes max back where the scale came from max: Load says
// which did, whether from scale=, -m NAME=max or all=max.
func TestScaleFromMax(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "web: ./web\nworker: ./worker\nclock: ./clock\n",
		"Procfile.policy": "web: scale=max\nclock: singleton\n",
	})
	tests := []struct {
		m    []string
		want string // web worker clock: "max" or the count
	}{
		{nil, "max 1 1"},
		{[]string{"web=4"}, "4 0 0"}, // as many as max gives, but asked for as 4
		{[]string{"web=max,worker=max"}, "max max 0"},
		{[]string{"all=max"}, "max max 1"}, // the singleton runs once, not one per CPU
		{[]string{"all=max,web=2"}, "2 max 1"},
	}
	for _, tt := range tests {
		f, err := Load(Options{Dir: dir, Environ: []string{}, CPUs: 4, Scale: tt.m})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range f.Processes {
			switch {
			case p.FromMax && p.Scale != 4:
				got = append(got, fmt.Sprintf("max(%d)", p.Scale))
			case p.FromMax:
				got = append(got, "max")
			default:
				got = append(got, fmt.Sprint(p.Scale))
			}
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("-m %q: %s, want %s", tt.m, s, tt.want)
		}
	}
}

// The formation keeps what it read for mhrun save: the policy file's sum
// (none without a file) and every process of the Procfile in order, the
// ones a start NAME… leaves out too.
func TestLoadKeepsWhatItRead(t *testing.T) {
	policyText := "# the site\nweb: scale=2\n"
	dir := project(t, map[string]string{
		"Procfile":        "clock: ./clock\nweb: ./web\nworker: ./worker\n",
		"Procfile.policy": policyText,
	})
	f, err := Load(Options{Dir: dir, Environ: []string{}, Only: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.PolicySum != PolicySum([]byte(policyText)) || len(f.PolicySum) != 64 {
		t.Errorf("PolicySum %q", f.PolicySum)
	}
	if got := strings.Join(f.AllNames, " "); got != "clock web worker" || len(f.Processes) != 1 {
		t.Errorf("AllNames %q, %d processes", got, len(f.Processes))
	}
	if PolicySum([]byte(policyText+" ")) == f.PolicySum {
		t.Error("a changed file has the same sum")
	}

	bare := project(t, map[string]string{"Procfile": "web: ./web\n"})
	f, err = Load(Options{Dir: bare, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if f.PolicySum != "" || f.HasPolicy {
		t.Errorf("without a policy file: PolicySum %q, HasPolicy %v", f.PolicySum, f.HasPolicy)
	}
}

// A policy file named with --policy must exist; the default one may not.
func TestExplicitPolicyMustExist(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: sleep 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Load(Options{Dir: dir, Environ: []string{}}); err != nil || f.HasPolicy {
		t.Fatalf("no policy file: %v, has policy %v", err, f != nil && f.HasPolicy)
	}
	_, err := Load(Options{Dir: dir, Environ: []string{}, Policy: "Procfile.polcy"})
	want := filepath.Join(dir, "Procfile.polcy") + ": no such policy file (name an existing one with --policy, or leave --policy out to give every process the defaults)"
	if err == nil || err.Error() != want {
		t.Errorf("--policy Procfile.polcy: %v\nwant %s", err, want)
	}
}
