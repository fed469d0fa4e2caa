package export

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mhrun/formation"
	"mhrun/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testProject is a project named shop whose formation uses every policy
// key. The API server's validation in k8svalidate (a module of its own)
// exports it too.
const testProject = "testdata/shop"

// writeProject copies testProject into a new dir named shop, with the
// policy pol in place of its own, and returns the dir.
func writeProject(t *testing.T, pol string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"Procfile": testFile(t, "Procfile"), "Procfile.policy": pol, ".env": testFile(t, ".env")}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testFile is the text of a file of testProject.
func testFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testProject, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testFormation loads a formation that uses every policy key.
func testFormation(t *testing.T) *formation.Formation {
	t.Helper()
	f, err := formation.Load(formation.Options{Dir: writeProject(t, testFile(t, "Procfile.policy")), Environ: []string{}, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSystemdGolden(t *testing.T) {
	f := testFormation(t)
	files, warnings, err := Systemd(f, SystemdOptions{App: "shop", WorkDir: "/srv/shop", User: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	files["warnings.txt"] = []byte(strings.Join(warnings, "\n") + "\n")
	compareGolden(t, filepath.Join("testdata", "systemd"), files)
}

func TestSystemdMapping(t *testing.T) {
	f := testFormation(t)
	files, warnings, err := Systemd(f, SystemdOptions{NewRestartKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	target := string(files["shop.target"])
	for _, u := range []string{"shop-release@1.service", "shop-web@1.service", "shop-web@2.service", "shop-worker@1.service", "shop-report.timer"} {
		if !strings.Contains(target, u) {
			t.Errorf("shop.target does not want %s:\n%s", u, target)
		}
	}
	if strings.Contains(target, "shop-worker@2") {
		t.Errorf("singleton worker has a second instance:\n%s", target)
	}
	web := string(files["shop-web@.service"])
	for _, line := range []string{
		"After=shop-release@1.service", "Requires=shop-release@1.service",
		"StartLimitBurst=6", "StartLimitIntervalSec=180s", "Restart=on-failure", "RestartSec=500ms",
		"RestartSteps=6", "RestartMaxDelaySec=30s", "MemoryMax=314572800", "KillSignal=SIGTERM",
		"TimeoutStopSec=3s", "KillMode=control-group", "Type=simple",
		"EnvironmentFile=-" + filepath.Join(f.Dir, ".env"),
		`ExecStart=/usr/bin/env PORT=${MHRUN_PORT} PS=web.%i 'GREETING=hi $$(name) $$$$, 100%% "sure" \\o/' HOST=0.0.0.0 /bin/sh -c 'exec bundle exec puma -p $$PORT -C \'config/puma.rb\' --tag "100%%" --dir \\tmp'`,
		"# mhrun: balance=4321 not exported", "# mhrun: sticky not exported", "# mhrun: watch=app/*.rb not exported",
		"# mhrun: ready=http:/healthz not exported", "# mhrun: cron-restart=\"@daily\" not exported",
		"# mhrun: log=log/web.log not exported",
	} {
		if !strings.Contains(web, line+"\n") && !strings.Contains(web, line) {
			t.Errorf("shop-web@.service lacks %q:\n%s", line, web)
		}
	}
	if got := string(files["shop-web@2.service.d/port.conf"]); !strings.Contains(got, "Environment=MHRUN_PORT=8081\n") {
		t.Errorf("web.2 port drop-in = %q, want MHRUN_PORT=8081", got)
	}
	worker := string(files["shop-worker@.service"])
	for _, line := range []string{"Type=notify", "TimeoutStartSec=30s", "Restart=always", "KillSignal=SIGQUIT",
		"After=shop-web@1.service shop-web@2.service", "# mhrun: optional not exported"} {
		if !strings.Contains(worker, line) {
			t.Errorf("shop-worker@.service lacks %q:\n%s", line, worker)
		}
	}
	release := string(files["shop-release@.service"])
	for _, line := range []string{"Type=oneshot", "RemainAfterExit=yes", "Restart=no"} {
		if !strings.Contains(release, line) {
			t.Errorf("shop-release@.service lacks %q:\n%s", line, release)
		}
	}
	timer := string(files["shop-report.timer"])
	if !strings.Contains(timer, "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 03:30:00 Europe/Paris\n") {
		t.Errorf("timer:\n%s", timer)
	}
	if !strings.Contains(string(files["shop-report.service"]), "Type=oneshot") {
		t.Errorf("report service is not oneshot:\n%s", files["shop-report.service"])
	}
	if len(warnings) != 7 {
		t.Errorf("warnings = %d, want 7:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for _, w := range warnings {
		if !strings.Contains(w, "not exported") {
			t.Errorf("warning %q", w)
		}
	}
	if _, _, err := Systemd(f, SystemdOptions{}); err != nil {
		t.Fatal(err)
	}
	if files2, _, _ := Systemd(f, SystemdOptions{}); files2["shop.target"] == nil {
		t.Errorf("default app name is not the dir's base name: %v", keys(files2))
	}
	if files2, _, _ := Systemd(f, SystemdOptions{}); !strings.Contains(string(files2["shop-web@.service"]), "# mhrun: backoff up to 30s needs RestartSteps=6") ||
		strings.Contains(string(files2["shop-web@.service"]), "\nRestartSteps=") {
		t.Errorf("without NewRestartKeys:\n%s", files2["shop-web@.service"])
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// A stop signal systemd does not count as clean is made clean, and under
// restart=on-failure the same signal from anyone else still restarts.
func TestSystemdStopSignal(t *testing.T) {
	f := testFormation(t)
	worker := f.Process("worker")
	for _, tt := range []struct {
		signal  string
		restart policy.Restart
		want    []string
		wantNot []string
	}{
		{"QUIT", policy.RestartOnFailure, []string{"KillSignal=SIGQUIT\n", "SuccessExitStatus=SIGQUIT\n", "RestartForceExitStatus=SIGQUIT\n"}, nil},
		{"USR1", policy.RestartAlways, []string{"SuccessExitStatus=SIGUSR1\n"}, []string{"RestartForceExitStatus"}},
		{"INT", policy.RestartOnFailure, []string{"KillSignal=SIGINT\n"}, []string{"SuccessExitStatus", "RestartForceExitStatus"}},
	} {
		worker.Policy.StopSignal, worker.Policy.Restart = tt.signal, tt.restart
		files, _, err := Systemd(f, SystemdOptions{App: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		unit := string(files["shop-worker@.service"])
		for _, w := range tt.want {
			if !strings.Contains(unit, w) {
				t.Errorf("stop-signal=%s restart=%s: no %q in\n%s", tt.signal, tt.restart, w, unit)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(unit, w) {
				t.Errorf("stop-signal=%s restart=%s: %q in\n%s", tt.signal, tt.restart, w, unit)
			}
		}
	}
}

func TestSystemdBadSchedule(t *testing.T) {
	f := testFormation(t)
	f.Process("report").Policy.Schedule = "0 3 1 * mon"
	_, _, err := Systemd(f, SystemdOptions{})
	if err == nil || !strings.Contains(err.Error(), `process report: schedule "0 3 1 * mon"`) || !strings.Contains(err.Error(), "supported:") {
		t.Errorf("err = %v", err)
	}
}

func TestConvertCron(t *testing.T) {
	for _, tt := range []struct{ spec, cal string }{
		{"0 3 * * *", "*-*-* 03:00:00"},
		{"*/15 * * * *", "*-*-* *:00/15:00"},
		{"0 9-17 * * *", "*-*-* 09..17:00:00"},
		{"0 8-18/2 * * *", "*-*-* 08,10,12,14,16,18:00:00"},
		{"5,35 * * * *", "*-*-* *:05,35:00"},
		{"0 0 1 jan,jul *", "*-01,07-01 00:00:00"},
		{"0 0 * * mon-fri", "Mon,Tue,Wed,Thu,Fri *-*-* 00:00:00"},
		{"0 0 * * 0", "Sun *-*-* 00:00:00"},
		{"0 0 * * 7", "Sun *-*-* 00:00:00"},
		{"0 0 * * */2", "Tue,Thu,Sat,Sun *-*-* 00:00:00"},
		{"0 0 1-5 * ?", "*-*-01..05 00:00:00"},
		{"0 0 1/10 * *", "*-*-01/10 00:00:00"},
		{"30 0 3 * * *", "*-*-* 03:00:30"},
		{"*/10 * * * * *", "*-*-* *:*:00/10"},
		{"@yearly", "*-01-01 00:00:00"},
		{"@annually", "*-01-01 00:00:00"},
		{"@monthly", "*-*-01 00:00:00"},
		{"@weekly", "Sun *-*-* 00:00:00"},
		{"@daily", "*-*-* 00:00:00"},
		{"@midnight", "*-*-* 00:00:00"},
		{"@hourly", "*-*-* *:00:00"},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "*-*-* 03:00:00 Europe/Paris"},
		{"TZ=UTC @daily", "*-*-* 00:00:00 UTC"},
	} {
		got, err := ConvertCron(tt.spec)
		if err != nil || got.OnCalendar != tt.cal || got.Every != 0 {
			t.Errorf("ConvertCron(%q) = %+v, %v; want OnCalendar %q", tt.spec, got, err, tt.cal)
		}
	}
	if got, err := ConvertCron("@every 90s"); err != nil || got.Every != 90*time.Second || got.OnCalendar != "" {
		t.Errorf("@every 90s = %+v, %v", got, err)
	}
	for _, spec := range []string{
		"0 3 1 * mon",   // cron ORs day of month and day of week
		"0 3 * *",       // 4 fields
		"1 2 3 4 5 6 7", // 7 fields
		"@reboot",       // no OnCalendar equivalent
		"@every -5m",    // not a positive duration
		"0 25 * * *",    // out of range
		"0 5-2 * * *",   // backwards
		"0 3 * * L",     // not a cron form robfig knows either
		"CRON_TZ=Nowhere/X 0 3 * * *",
		"CRON_TZ=Local 0 3 * * *", // this machine's zone, not the engine's
		"*/0 * * * *",
	} {
		if _, err := ConvertCron(spec); err == nil || !strings.Contains(err.Error(), spec) || !strings.Contains(err.Error(), "supported:") {
			t.Errorf("ConvertCron(%q) err = %v, want a refusal naming it and what is supported", spec, err)
		}
	}
}

// TestConvertCronAnalyze asks systemd when each converted OnCalendar=
// elapses next (systemd-analyze calendar, 8 iterations from a fixed time)
// and compares with when mhrun's cron parser would fire: the conversion
// keeps the meaning, not only the syntax.
func TestConvertCronAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not on PATH: OnCalendar forms not checked by systemd")
	}
	base := time.Date(2026, 11, 25, 23, 58, 7, 0, time.UTC)
	for _, spec := range []string{"0 3 * * *", "*/15 * * * *", "0 8-18/2 * * *", "0 9-17 * * *", "5,35 * * * *",
		"0 0 1 jan,jul *", "0 0 * * mon-fri", "0 0 * * 0", "0 0 * * */2", "0 0 1-5 * ?", "0 0 1/10 * *",
		"30 0 3 * * *", "*/10 * * * * *", "@yearly", "@monthly", "@weekly", "@daily", "@hourly",
		"CRON_TZ=Europe/Paris 0 3 * * *", "TZ=America/New_York 30 2 * mar sun", "0 12 29 feb *"} {
		got, err := ConvertCron(spec)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("systemd-analyze", "calendar", "--iterations=8", "--base-time="+base.Format("2006-01-02 15:04:05 UTC"), got.OnCalendar)
		cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%q → %q: systemd-analyze calendar: %v\n%s", spec, got.OnCalendar, err, out)
			continue
		}
		var elapses []time.Time
		for _, line := range strings.Split(string(out), "\n") {
			_, v, ok := strings.Cut(line, ": ")
			if !ok || !(strings.Contains(line, "Next elapse:") || strings.Contains(line, "Iter. #")) {
				continue
			}
			e, err := time.Parse("Mon 2006-01-02 15:04:05 MST", strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("systemd-analyze line %q: %v", line, err)
			}
			elapses = append(elapses, e)
		}
		sched, err := policy.ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		if len(elapses) != 8 {
			t.Errorf("%q → %q: %d elapses from systemd-analyze:\n%s", spec, got.OnCalendar, len(elapses), out)
			continue
		}
		next := base
		for i, e := range elapses {
			next = sched.Next(next)
			if !next.Equal(e) {
				t.Errorf("%q → %q: elapse %d is %v in systemd, %v in cron", spec, got.OnCalendar, i+1, e, next.UTC())
				break
			}
		}
	}
}

func TestSystemdVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not on PATH: generated units not verified")
	}
	f := testFormation(t)
	o := SystemdOptions{App: "shop"}
	if u, err := user.Current(); err == nil {
		o.User = u.Username // a user that exists here
	}
	files, _, err := Systemd(f, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var args []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(name) == "." {
			args = append(args, p)
		}
	}
	slices.Sort(args)
	if bad := verifyUnits(t, dir, args); bad != "" {
		t.Errorf("systemd-analyze verify:\n%s", bad)
	}
}

// verifyUnits runs systemd-analyze verify on the unit files paths, with
// dir on the unit path, and returns what it said beyond what the test
// machine causes: "" when the units are sound. A non-zero exit with only
// ignorable lines is the machine's fault, not the units'.
func verifyUnits(t *testing.T, dir string, paths []string) string {
	t.Helper()
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	t.Logf("systemd-analyze verify output:\n%s", out)
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !ignorableVerify(line) {
			bad = append(bad, line)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%v\n%s", err, strings.Join(bad, "\n"))
}

// compareGolden checks files against the directory golden, or rewrites it
// with -update.
func compareGolden(t *testing.T, golden string, files map[string][]byte) {
	t.Helper()
	if *update {
		os.RemoveAll(golden)
		for name, body := range files {
			p := filepath.Join(golden, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	err := filepath.WalkDir(golden, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(golden, p)
			want = append(want, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(files); !slices.Equal(got, want) {
		t.Fatalf("files = %q, golden has %q (go test ./export -update rewrites it)", got, want)
	}
	for _, name := range want {
		body, err := os.ReadFile(filepath.Join(golden, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files[name], body) {
			t.Errorf("%s differs from the golden file (go test ./export -update rewrites it):\n%s", name, files[name])
		}
	}
}

// ignorableVerify reports messages caused by the test machine, not the units.
func ignorableVerify(line string) bool {
	for _, s := range []string{"is not executable", "No such file or directory", "Failed to resolve user"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// FuzzConvertCron: every spec the policy accepts converts to exactly one
// of OnCalendar= or a period, or is refused in one line that names it.
// (TestConvertCronAnalyze checks the meaning with systemd itself.)
func FuzzConvertCron(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/10 * * * * *", "@every 90s", "CRON_TZ=UTC 0 3 1 * mon", "0 8-18/2 * jan-mar mon,fri", "@weekly", "CRON_TZ=Local 0 3 * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if _, err := policy.ParseSchedule(spec); err != nil {
			return
		}
		got, err := ConvertCron(spec)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(spec)) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal of %q is not one line naming it: %v", spec, err)
			}
			return
		}
		if (got.OnCalendar == "") == (got.Every == 0) {
			t.Fatalf("%q became %+v", spec, got)
		}
		if strings.ContainsAny(got.OnCalendar, "\n\r") {
			t.Fatalf("%q became a multi-line OnCalendar %q", spec, got.OnCalendar)
		}
	})
}
