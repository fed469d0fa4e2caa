package formation

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// project writes files into a temp dir and returns it.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInstancePort(t *testing.T) {
	tests := []struct{ base, idx, n, fixed, want int }{
		{5000, 0, 1, 0, 5000},
		{5000, 0, 2, 0, 5001},
		{5000, 1, 1, 0, 5100},
		{5000, 2, 3, 0, 5202},
		{5000, 2, 3, 8080, 8082},
		{3000, 1, 1, 0, 3100},
	}
	for _, tt := range tests {
		if got := InstancePort(tt.base, tt.idx, tt.n, tt.fixed); got != tt.want {
			t.Errorf("InstancePort(%d, %d, %d, %d) = %d, want %d", tt.base, tt.idx, tt.n, tt.fixed, got, tt.want)
		}
	}
}

func TestReadEnvFiles(t *testing.T) {
	dir := project(t, map[string]string{
		".env":  "A=1\nB=from-dotenv\n# comment\n\nexport C=\"multi\nline\"\n",
		"extra": "B=from-extra\r\nD=${B}x\n",
	})
	got, err := ReadEnvFiles([]string{filepath.Join(dir, ".env")}, []string{filepath.Join(dir, "extra")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "from-extra", "C": "multi\nline", "D": "from-extrax"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadEnvFilesErrors(t *testing.T) {
	dir := project(t, map[string]string{
		"bad":     "A=1\nJUST_A_NAME\nB=2\n9X=1\nC='open\n",
		"missing": "",
	})
	os.Remove(filepath.Join(dir, "missing"))
	bad, missing := filepath.Join(dir, "bad"), filepath.Join(dir, "missing")

	// A missing optional file is fine.
	if _, err := ReadEnvFiles([]string{missing}, nil); err != nil {
		t.Errorf("missing optional .env: %v", err)
	}
	_, err := ReadEnvFiles(nil, []string{bad, missing})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		bad + `:2: not a variable line: "JUST_A_NAME" (want KEY=value)`,
		bad + `:4: not a variable line: "9X=1" (want KEY=value)`,
		bad + `:5: unterminated '-quoted value (close it with ')`,
		missing + `: cannot read env file: no such file or directory (pass an existing, readable file to -e)`,
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBasePort(t *testing.T) {
	tests := []struct {
		file    map[string]string
		environ []string
		want    int
		err     string
	}{
		{nil, nil, 5000, ""},
		{nil, []string{"PORT=3000"}, 3000, ""},
		{map[string]string{"PORT": "4000"}, []string{"PORT=3000"}, 4000, ""},
		{map[string]string{"PORT": "http"}, nil, 0, `PORT in env file is "http": want a port number 1..65535`},
		{nil, []string{"PORT=70000"}, 0, `PORT in the environment is "70000": want a port number 1..65535`},
	}
	for _, tt := range tests {
		got, err := basePort(tt.file, tt.environ)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("basePort(%v, %v) error %v, want %q", tt.file, tt.environ, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("basePort(%v, %v) = %d, %v; want %d", tt.file, tt.environ, got, err, tt.want)
		}
	}
}

func TestLoadAndEnv(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "web: ./web\nworker: ./worker --fast\nclock: ./clock\n",
		"Procfile.policy": "web: scale=3\nclock: port=9000\n",
		".env":            "PORT=6000\nSHARED=file\nONLY_FILE=yes\n",
	})
	f, err := Load(Options{Dir: dir, Scale: []string{"worker=2"}, Environ: []string{"SHARED=real", "HOME=/h"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.BasePort != 6000 {
		t.Errorf("base port %d, want 6000 from .env", f.BasePort)
	}
	if got := f.Names(); !slices.Equal(got, []string{"web", "worker", "clock"}) {
		t.Errorf("names %v", got)
	}
	// -m is the whole formation, as in foreman: web's scale=3 and clock's
	// default give way to -m worker=2.
	if f.Process("web").Scale != 0 || f.Process("worker").Scale != 2 || f.Process("clock").Scale != 0 {
		t.Errorf("scales web %d worker %d clock %d", f.Process("web").Scale, f.Process("worker").Scale, f.Process("clock").Scale)
	}
	env := f.Env(f.Process("worker"), 2, "/s.sock")
	want := []string{"SHARED=real", "HOME=/h", "ONLY_FILE=yes", "PORT=6101", "PS=worker.2", "MHRUN_SOCKET=/s.sock"}
	if !slices.Equal(env, want) {
		t.Errorf("env %q\nwant %q", env, want)
	}
	if got := f.Env(f.Process("clock"), 1, ""); !slices.Contains(got, "PORT=9000") {
		t.Errorf("clock env %q lacks PORT=9000 from port=", got)
	}

	f, err = Load(Options{Dir: dir, EnvOverride: true, BasePort: 7000, Only: []string{"worker"}, Environ: []string{"SHARED=real"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"worker"}) {
		t.Errorf("only worker: names %v", got)
	}
	env = f.Env(f.Process("worker"), 1, "")
	want = []string{"SHARED=file", "ONLY_FILE=yes", "PORT=7100", "PS=worker.1"}
	if !slices.Equal(env, want) {
		t.Errorf("override env %q\nwant %q", env, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "web: ./web\nworker ./worker\n",
		"Procfile.policy": "web: scale=two\n",
		".env":            "NOPE\n",
	})
	_, err := Load(Options{Dir: dir, Environ: []string{}})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one error per file, got:\n%v", err)
	}
	for i, prefix := range []string{"Procfile:2:", "Procfile.policy:1:", ".env:1:"} {
		if !strings.Contains(lines[i], prefix) {
			t.Errorf("line %d %q lacks %q", i, lines[i], prefix)
		}
	}
}

func TestLoadScaleErrors(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "web: ./web\nagent: ./agent\n",
		"Procfile.policy": "agent: singleton\n",
	})
	tests := []struct {
		scale []string
		only  []string
		want  string
	}{
		{[]string{"wbe=2"}, nil, `scale: unknown process "wbe" (did you mean "web"?)`},
		{[]string{"zzzzzz=2"}, nil, `scale: unknown process "zzzzzz" (the formation has web, agent)`},
		{[]string{"web"}, nil, `scale "web": want NAME=N, e.g. web=2`},
		{[]string{"agent=2"}, nil, "agent"},
		{nil, []string{"wbe"}, `process: unknown process "wbe" (did you mean "web"?)`},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		_, err := Load(Options{Dir: dir, Scale: tt.scale, Only: tt.only, Environ: []string{}})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v %v: %v", tt.scale, tt.only, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: error %v, want %q", tt.scale, tt.only, err, tt.want)
		}
	}
	if _, err := Load(Options{Dir: dir, BasePort: 65500, Environ: []string{}}); err == nil || !strings.Contains(err.Error(), "agent.1 would get PORT 65600, past 65535") {
		t.Errorf("port overflow: %v", err)
	}
}

// Regression: a byte-order mark before a comment on line 1 was taken for
// a variable line.
func TestRegressionEnvBOMBeforeComment(t *testing.T) {
	if _, err := parseEnv([]byte("\uFEFF# comment\nA=1\n"), ".env"); err != nil {
		t.Error(err)
	}
}
