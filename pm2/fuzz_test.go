package pm2

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mhrun/formation"
)

// FuzzImportJSON checks what holds for any JSON ecosystem file: no panic;
// an error is an ErrorList of one-line errors naming the file; anything
// imported is accepted by mhrun's own reading of the three files. Seeds:
// testdata/fuzz/FuzzImportJSON, and the JSON files of testdata.
func FuzzImportJSON(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	dir := f.TempDir()
	o := Options{Node: "/nonexistent/node", lookPath: testLookPath}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parse(data, "eco.json", filepath.Join(dir, "eco.json"), dir, o)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if s := e.Error(); !strings.HasPrefix(s, "eco.json") || strings.Contains(s, "\n") {
					t.Errorf("bad error text %q", s)
				}
			}
			return
		}
		for _, w := range res.Warnings {
			if s := w.String(); !strings.HasPrefix(s, "eco.json") || strings.Contains(s, "\n") {
				t.Errorf("bad warning text %q", s)
			}
		}
		pdir := t.TempDir()
		os.WriteFile(filepath.Join(pdir, "Procfile"), []byte(res.Procfile), 0o644)
		os.WriteFile(filepath.Join(pdir, "Procfile.policy"), []byte(res.Policy), 0o644)
		if res.DotEnv != "" {
			os.WriteFile(filepath.Join(pdir, ".env"), []byte(res.DotEnv), 0o644)
		}
		fm, err := formation.Load(formation.Options{Dir: pdir, Environ: []string{}, CPUs: 1})
		if err != nil {
			// foreman's ports: process 600 of a Procfile is past 65535.
			if strings.Contains(err.Error(), "past 65535") && len(res.Apps) > 500 {
				return
			}
			t.Fatalf("mhrun check refuses what Import wrote:\n%v\n--- Procfile\n%s--- Procfile.policy\n%s--- .env\n%s", err, res.Procfile, res.Policy, res.DotEnv)
		}
		if len(fm.Processes) != len(res.Apps) {
			t.Fatalf("%d processes for %d apps", len(fm.Processes), len(res.Apps))
		}
	})
}

// FuzzDotenvValue checks that a value written for .env reads back as it
// was through mhrun's env file reader.
func FuzzDotenvValue(f *testing.F) {
	for _, v := range []string{"plain", "s3cr$t 'q'", `say "hi"`, "l1\nl2", `x\`, "${HOME}", " # c"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.IndexByte(v, 0) >= 0 || !isUTF8(v) {
			return // the importer leaves these out before
		}
		dotenvRoundTrip(t, v)
	})
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
