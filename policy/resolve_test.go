package policy

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// parseFile parses a policy file of testdata.
func parseFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(data), path)
}

var designNames = []string{"web", "scheduler", "organizer", "digest", "tunnel", "voice"}

// TestDesignExample resolves the example of DESIGN.md.
func TestDesignExample(t *testing.T) {
	f, err := parseFile("testdata/design.policy")
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Resolve(designNames)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	web := def
	web.Scale, web.Balance, web.Sticky, web.Memory = ScaleMax, 4321, true, 1<<30
	web.Ready = Ready{Kind: ReadyHTTP, Path: "/healthz"}
	scheduler := def
	scheduler.Singleton, scheduler.Restart = true, RestartAlways
	organizer := def
	organizer.Singleton, organizer.SingletonPath = true, "/run/metahuman/organizer.lock"
	digest := def
	digest.Schedule = "0 3 * * *"
	tunnel := def
	tunnel.Optional = true
	voice := def
	voice.Optional, voice.After = true, []string{"web"}
	want := map[string]Policy{"web": web, "scheduler": scheduler, "organizer": organizer, "digest": digest, "tunnel": tunnel, "voice": voice}
	if len(m) != len(want) {
		t.Errorf("got %d policies, want %d", len(m), len(want))
	}
	for name, w := range want {
		if !samePolicy(m[name], w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, m[name], w)
		}
		checkRoundTrip(t, name, m[name])
	}
	if got := m["web"].Instances(16); got != 16 {
		t.Errorf("web on 16 CPUs: %d instances", got)
	}
	if err := CheckScale("scheduler", m["scheduler"], 2); err == nil {
		t.Error("scheduler scales to 2")
	}
	if got, want := m["voice"].Format(), "after=web optional"; got != want {
		t.Errorf("voice.Format() = %q, want %q", got, want)
	}
	// grace=5s and backoff=1s..1m in "*:" are the defaults anyway.
	if m["tunnel"].Grace != 5*time.Second || m["tunnel"].BackoffMax != time.Minute {
		t.Errorf("tunnel = %+v", m["tunnel"])
	}
}

// resolveErrorCases are files that parse but do not fit their Procfile
// (testNames unless names is set), with the whole error of Resolve.
var resolveErrorCases = []struct {
	in    string
	names []string
	want  string
}{
	{"wbe: scale=2", nil, `Procfile.policy:1: wbe is not a process in the Procfile (did you mean "web"?)`},
	{"# x\nclock: scale=2\nclock: grace=1s", nil, `Procfile.policy:2: clock is not a process in the Procfile`},
	{"web: after=dbb", nil, `Procfile.policy:1: web: after=dbb: dbb is not a process in the Procfile (did you mean "db"?)`},
	{"web: after=db,redis", nil, `Procfile.policy:1: web: after=db,redis: redis is not a process in the Procfile`},
	{"web: after=web", nil, `Procfile.policy:1: web: after=web names itself; a process cannot wait for itself`},
	{"*: after=db", nil, `Procfile.policy:1: db: after=db names itself; a process cannot wait for itself`},
	{"web: after=voice\nvoice: after=web", []string{"web", "voice"}, `Procfile.policy:1: after= cycle: web -> voice -> web`},
	{"a: after=b\nb: after=c\nc: after=a", []string{"c", "b", "a"}, `Procfile.policy:3: after= cycle: c -> a -> b -> c`},
	{"a: after=b,c\nb: after=a\nc: after=a\nd: after=d", []string{"a", "b", "c", "d"}, `Procfile.policy:1: after= cycle: a -> b -> a
Procfile.policy:1: after= cycle: a -> c -> a
Procfile.policy:4: d: after=d names itself; a process cannot wait for itself`},
	{"web: singleton scale=2", nil, `Procfile.policy:1: web: singleton allows one instance, not scale=2; drop scale or singleton`},
	{"web: scale=max\nweb: singleton=/tmp/web.lock", nil, `Procfile.policy:2: web: singleton allows one instance, not scale=max; drop scale or singleton`},
	{"*: scale=2\nweb: singleton", nil, `Procfile.policy:2: web: singleton allows one instance, not scale=2; drop scale or singleton`},
	{"web: sticky", nil, `Procfile.policy:1: web: sticky needs balance=PORT`},
	{"web: balance=4321\nworker: balance=4321", nil, `Procfile.policy:2: worker: balance=4321 is already balanced by web; give each balanced or socket process its own port`},
	{"*: balance=80", []string{"web", "db"}, `Procfile.policy:1: db: balance=80 is already balanced by web; give each balanced or socket process its own port`},
	{`web: balance=4321 schedule="@hourly"`, nil, `Procfile.policy:1: web: balance and schedule do not go together: a scheduled job cannot serve a port`},
	{"web: balance=4321\n*: schedule=@daily", []string{"web"}, `Procfile.policy:2: web: balance and schedule do not go together: a scheduled job cannot serve a port`},
	{"web: socket=4321 balance=4322", nil, `Procfile.policy:1: web: socket and balance do not go together: socket= hands the listening socket to the instances, balance= has mhrun proxy the port; keep one`},
	{"web: socket=4321 sticky", nil, `Procfile.policy:1: web: sticky needs balance=PORT: with socket= the kernel picks the instance, which cannot be sticky; drop sticky, or use balance= instead of socket=`},
	{"web: socket=4321\nweb: schedule=@daily port=5000", nil, `Procfile.policy:2: web: socket and schedule do not go together: a scheduled job cannot serve a port
Procfile.policy:2: web: socket and port do not go together: socket= sets $PORT to the socket's port, 4321; drop port=`},
	{"web: socket=4321 ready=http:/healthz", nil, `Procfile.policy:1: web: ready=http:/healthz would be answered by any instance on the shared socket (mhrun itself holds it open), so it says nothing of the new one; use ready=log:REGEX, ready=notify or ready=exec:CMD, or no ready=`},
	{"web: socket=4321 ready=tcp", nil, `Procfile.policy:1: web: ready=tcp would be answered by any instance on the shared socket (mhrun itself holds it open), so it says nothing of the new one; use ready=log:REGEX, ready=notify or ready=exec:CMD, or no ready=`},
	{"web: socket=4321\nworker: socket=0.0.0.0:4321", []string{"web", "worker"}, `Procfile.policy:2: worker: socket=0.0.0.0:4321 is already web's shared socket; give each balanced or socket process its own port`},
	{"web: balance=4321\nworker: socket=4321", []string{"web", "worker"}, `Procfile.policy:2: worker: socket=4321 is already balanced by web; give each balanced or socket process its own port`},
	// Every error, in line order.
	{"web: sticky after=voice\nworker: singleton scale=3\nvoice: after=web\nwbe: grace=1s\n", []string{"web", "worker", "voice"}, `Procfile.policy:1: web: sticky needs balance=PORT
Procfile.policy:1: after= cycle: web -> voice -> web
Procfile.policy:2: worker: singleton allows one instance, not scale=3; drop scale or singleton
Procfile.policy:4: wbe is not a process in the Procfile (did you mean "web"?)`},
}

func TestResolveErrors(t *testing.T) {
	for _, c := range resolveErrorCases {
		t.Run(c.in, func(t *testing.T) {
			names := c.names
			if names == nil {
				names = testNames
			}
			m, err := parseString(t, c.in).Resolve(names)
			if err == nil {
				t.Fatalf("no error; resolved %+v", m)
			}
			if m != nil {
				t.Errorf("got policies with an error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, not ErrorList", err)
			}
		})
	}
}

func TestResolveAfterChain(t *testing.T) {
	// A chain and a diamond are fine.
	in := "a: after=b,c\nb: after=d\nc: after=d\nweb: after=a,b"
	m := resolve(t, in, "web", "a", "b", "c", "d")
	if got := strings.Join(m["a"].After, ","); got != "b,c" {
		t.Errorf("a.After = %q", got)
	}
}

func TestResolveUnaliased(t *testing.T) {
	// Policies from one File share nothing a caller could change.
	f := parseString(t, "*: watch=x,y\n")
	m, err := f.Resolve([]string{"web", "worker"})
	if err != nil {
		t.Fatal(err)
	}
	m["web"].Watch[0] = "changed"
	if m["worker"].Watch[0] != "x" {
		t.Error("policies share their Watch slice")
	}
	m2, _ := f.Resolve([]string{"web"})
	if m2["web"].Watch[0] != "x" {
		t.Error("a change to a resolved policy changed the File")
	}
}

func TestResolveLogPattern(t *testing.T) {
	m := resolve(t, `web: ready="log:listening on :(\d+)"`, "web")
	re := m["web"].Ready.Pattern
	if re == nil || !re.MatchString("listening on :4321") || re.String() != regexp.MustCompile(`listening on :(\d+)`).String() {
		t.Errorf("pattern = %v", re)
	}
}

// TestAllKeys resolves a file that sets every key.
func TestAllKeys(t *testing.T) {
	f, err := parseFile("testdata/all-keys.policy")
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Resolve([]string{"web", "worker", "digest", "voice", "clock"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"web":    `scale=max restart=always backoff=500ms..30s stable=20s max-restarts=5 memory=512M ready="log:listening on :(\\d+)" ready-timeout=1m stop-signal=INT grace=3s balance=4321 sticky watch=src/*.go,templates/* log="log/web out.log"`,
		"worker": `backoff=500ms..30s stable=20s max-restarts=5 singleton=locks/worker.lock cron-restart="CRON_TZ=UTC 0 4 * * *" after=web grace=3s optional port=6000`,
		"digest": `backoff=500ms..30s stable=20s max-restarts=5 schedule="@every 5m" ready=exec:true stop-signal=QUIT grace=3s`,
		"voice":  `backoff=500ms..30s stable=20s max-restarts=5 ready=tcp:9000 after=web,worker grace=3s socket=127.0.0.1:4322`,
		"clock":  `scale=0 backoff=500ms..30s stable=20s max-restarts=5 singleton ready=notify grace=3s`,
	}
	for name, w := range want {
		if got := m[name].Format(); got != w {
			t.Errorf("%s:\n got %s\nwant %s", name, got, w)
		}
		checkRoundTrip(t, name, m[name])
	}
}
