package watch

import (
	"path"
	"strings"
	"testing"
)

var matchTests = []struct {
	glob, rel string
	want      bool
}{
	// Base-name globs match at any depth.
	{"*.go", "main.go", true},
	{"*.go", "cmd/x/main.go", true},
	{"*.go", "cmd/x/main.go.orig", false},
	{"*.go", "go/main.rb", false},
	{"Makefile", "sub/dir/Makefile", true},
	{"*", ".env", true},
	{"?.go", "a/b.go", true},
	{"?.go", "a/bc.go", false},
	{"[a-c]*.yml", "config/b.yml", true},
	{"[a-c]*.yml", "config/d.yml", false},
	{"[^a-c]*.yml", "config/d.yml", true},

	// Slash globs match the whole path; "*" stays within a segment.
	{"config/*.yml", "config/db.yml", true},
	{"config/*.yml", "config/sub/db.yml", false},
	{"config/*.yml", "x/config/db.yml", false},
	{"cmd/*/main.go", "cmd/x/main.go", true},
	{"cmd/*/main.go", "cmd/x/y/main.go", false},
	{"c?d/main.go", "cmd/main.go", true},
	{"c?d/main.go", "c/d/main.go", false},
	{"[a-z]pp/*.rb", "app/x.rb", true},
	{"[a-z]pp/*.rb", "App/x.rb", false},

	// "**" at the start, middle and end, for zero or more segments.
	{"**/*.rb", "x.rb", true},
	{"**/*.rb", "a/b/c/x.rb", true},
	{"**/*.rb", "a/b/c/x.go", false},
	{"app/**/*.rb", "app/x.rb", true},
	{"app/**/*.rb", "app/a/x.rb", true},
	{"app/**/*.rb", "app/a/b/x.rb", true},
	{"app/**/*.rb", "lib/app/x.rb", false},
	{"app/**/*.rb", "app/a/b/x.go", false},
	{"app/**", "app/a/b/x.rb", true},
	{"app/**", "app/x", true},
	{"app/**", "lib/x", false},
	{"**", "anything/at/all", true},
	{"a/**/b/**/c", "a/b/c", true},
	{"a/**/b/**/c", "a/x/b/y/z/c", true},
	{"a/**/b/**/c", "a/x/y/z/c", false},
	{"a/**/**/b", "a/b", true},
	{"**/a/**/a/**/a/**/b", strings.Repeat("a/", 40) + "c", false},

	// "**" inside a segment is just "*" twice.
	{"app/**.rb", "app/x.rb", true},
	{"app/**.rb", "app/a/x.rb", false},

	// A leading "/" or "./" anchors even a glob without another "/".
	{"/Gemfile", "Gemfile", true},
	{"/Gemfile", "sub/Gemfile", false},
	{"./config/*.yml", "config/db.yml", true},
	{"./*.go", "main.go", true},
	{"./*.go", "cmd/main.go", false},

	// Malformed or empty globs match nothing.
	{"", "x", false},
	{"x", "", false},
	{"/", "x", false},
	{"[", "[", false},
	{"app/[a-", "app/a", false},
	{"*.go\\", "x.go", false},
	{"a/[]/b", "a/]/b", false},
	{"a[/]b", "a/b", false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		if got := Match(tt.glob, tt.rel); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.glob, tt.rel, got, tt.want)
		}
	}
}

func TestIgnoredName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{".mhrun.sock", true},
		{".mhrun.sock.lock", true},
		{"main.go~", true},
		{".main.go.swp", true},
		{".main.go.swo", true},
		{".main.go.swx", true},
		{"4913", true},
		{".#main.go", true},
		{"main.go", false},
		{".env", false},
		{"x.swp", false}, // not a vim swap name: no leading dot
		{".swp", false},
		{"49130", false},
		{"mhrun.sock", false},
	} {
		if got := ignoredName(tt.name); got != tt.want {
			t.Errorf("ignoredName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		rel  string
		want bool
	}{
		{".git", true},
		{".git/HEAD", true},
		{"web/node_modules/x/index.js", true},
		{".mhrun/state", true},
		{"app/git/x", false},
		{"app/.gitignore", false},
		{"node_modules2/x", false},
	} {
		if got := inIgnoredDir(tt.rel); got != tt.want {
			t.Errorf("inIgnoredDir(%q) = %v, want %v", tt.rel, got, tt.want)
		}
	}
}

// FuzzMatch checks that Match never panics, never matches with a malformed
// glob, and agrees with path.Match where the two define the same thing.
func FuzzMatch(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.glob, tt.rel)
	}
	f.Fuzz(func(t *testing.T, glob, rel string) {
		got := Match(glob, rel)
		if _, err := path.Match(glob, ""); err != nil && got {
			t.Fatalf("Match(%q, %q) = true for a malformed glob", glob, rel)
		}
		if rel == "" || strings.ContainsAny(glob, `[\`) || strings.HasPrefix(glob, "./") || strings.HasPrefix(glob, "/") {
			return
		}
		var want bool
		switch {
		case !strings.Contains(glob, "/"):
			want, _ = path.Match(glob, path.Base(rel))
		case !strings.Contains(glob, "**"):
			want, _ = path.Match(glob, rel)
		default:
			return
		}
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, path.Match says %v", glob, rel, got, want)
		}
	})
}
