package formation

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The policy's env.NAME wins over the env files and the real environment,
// with --env-override or without, and yields to PORT, PS and MHRUN_SOCKET;
// `*:` variables reach every process, a process's own replace them by name.
func TestEnvPolicyPrecedence(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile": "web: node server.js\nworker: ./worker\n",
		"Procfile.policy": "*:   env.NODE_ENV=production env.TZ=UTC\n" +
			"web: env.HOST=127.0.0.1 env.NODE_ENV=development env.GREETING=\"hello world\"\n",
		".env": "HOST=0.0.0.0\nFROM_FILE=1\nTZ=Europe/Paris\n",
	})
	environ := []string{"HOME=/h", "HOST=real", "NODE_ENV=test", "FROM_FILE=real"}
	for _, override := range []bool{false, true} {
		f, err := Load(Options{Dir: dir, Environ: environ, EnvOverride: override})
		if err != nil {
			t.Fatal(err)
		}
		fromFile := "real"
		if override {
			fromFile = "1"
		}
		want := []string{"HOME=/h", "HOST=127.0.0.1", "NODE_ENV=development", "FROM_FILE=" + fromFile, "TZ=UTC",
			"GREETING=hello world", "PORT=5001", "PS=web.2", "MHRUN_SOCKET=/s"}
		if got := f.Env(f.Process("web"), 2, "/s"); !slices.Equal(got, want) {
			t.Errorf("override=%v: web.2 env\n%q\nwant\n%q", override, got, want)
		}
		want = []string{"HOME=/h", "HOST=" + map[bool]string{false: "real", true: "0.0.0.0"}[override], "NODE_ENV=production",
			"FROM_FILE=" + fromFile, "TZ=UTC", "PORT=5100", "PS=worker.1"}
		if got := f.Env(f.Process("worker"), 1, ""); !slices.Equal(got, want) {
			t.Errorf("override=%v: worker.1 env\n%q\nwant\n%q", override, got, want)
		}
	}
}

// mhrun started by a systemd .socket unit has LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES for itself: no instance inherits them.
func TestEnvDropsSocketActivation(t *testing.T) {
	dir := project(t, map[string]string{"Procfile": "web: ./web\n"})
	f, err := Load(Options{Dir: dir, Environ: []string{"HOME=/h", "LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=mhrun.socket", "LISTEN=kept"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOME=/h", "LISTEN=kept", "PORT=5000", "PS=web.1"}
	if got := f.Env(f.Process("web"), 1, ""); !slices.Equal(got, want) {
		t.Errorf("web.1 env\n%q\nwant\n%q", got, want)
	}
}

// A policy value exec cannot pass is refused at the line that sets it,
// once for a `*:` line, as in env files.
func TestEnvPolicyValuesExecCannotPass(t *testing.T) {
	big := strings.Repeat("x", 128<<10)
	dir := project(t, map[string]string{
		"Procfile": "web: ./web\nworker: ./worker\n",
		"Procfile.policy": "# env\n*: env.TOKEN=\"a\x00b\"\n" +
			"web: env.BLOB=" + big[:128<<10-len("BLOB=")] + "\n" +
			"worker: env.OK=" + big[:128<<10-len("OK=")-1] + "\n",
	})
	_, err := Load(Options{Dir: dir, Environ: []string{}})
	if err == nil {
		t.Fatal("loaded")
	}
	want := []string{
		"Procfile.policy:2: env.TOKEN holds a NUL byte, which no environment variable can carry (remove it)",
		"Procfile.policy:3: env.BLOB=... is 131072 bytes, more than exec takes for one variable (128 KiB): put the data in a file and pass its path",
	}
	got := strings.Split(err.Error(), "\n")
	for i := range got {
		got[i] = got[i][strings.Index(got[i], "Procfile.policy:"):]
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// env.NAME values that take the environment past what exec takes are
// refused by the total's check, which names the policy as the largest
// variable's source.
func TestEnvPolicyTooLargeTogether(t *testing.T) {
	limit, _ := execLimit()
	files := map[string]string{"Procfile": "web: ./web\n", "Procfile.policy": "web: env.BIG=" + strings.Repeat("b", 120<<10) + "\n"}
	var envFiles []string
	for i := 0; i*(100<<10) <= limit; i++ {
		name := fmt.Sprintf("%d.env", i/9)
		if !slices.Contains(envFiles, name) {
			envFiles = append(envFiles, name)
		}
		files[name] += fmt.Sprintf("V%d='%s'\n", i, strings.Repeat("v", 100<<10))
	}
	_, err := Load(Options{Dir: project(t, files), EnvFiles: envFiles, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "the largest variable is BIG, 122884 bytes, from the policy (env.BIG): make the policy's env. variables smaller") {
		t.Errorf("Load = %v, want the total refused, naming the policy", err)
	}
}
