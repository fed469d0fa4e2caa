package watch

import (
	"path"
	"strings"
)

// Match reports whether the slash-separated path rel (relative to the project
// dir) matches glob. A glob without "/" matches the base name at any depth
// ("*.go" matches "cmd/x/main.go"). A glob with "/" matches the whole relative
// path, where a "**" segment matches zero or more path segments ("app/**/*.rb"
// matches "app/x.rb" and "app/a/b/x.rb"); a leading "/" or "./" anchors a glob
// at the project dir ("/Gemfile" matches only the top-level Gemfile). Every
// other segment follows path.Match, so "*" never crosses a "/". A malformed
// glob matches nothing.
func Match(glob, rel string) bool {
	if glob == "" || rel == "" {
		return false
	}
	// Reject malformed globs up front: path.Match on an empty name checks
	// the whole pattern, so no segment-wise match below can succeed with a
	// syntax error left unexamined.
	if _, err := path.Match(glob, ""); err != nil {
		return false
	}
	anchored := false
	for {
		if g, ok := strings.CutPrefix(glob, "./"); ok {
			glob, anchored = g, true
		} else if g, ok := strings.CutPrefix(glob, "/"); ok {
			glob, anchored = g, true
		} else {
			break
		}
	}
	if glob == "" {
		return false
	}
	if !anchored && !strings.Contains(glob, "/") {
		ok, err := path.Match(glob, path.Base(rel))
		return err == nil && ok
	}
	return matchSegments(strings.Split(glob, "/"), strings.Split(rel, "/"))
}

// matchSegments matches glob segments against path segments, "**" standing
// for any number of whole segments. It is a dynamic program over prefixes
// (len(g)·len(p) steps), not backtracking, so globs like "**/a/**/a/**/b"
// cannot make it exponential.
func matchSegments(g, p []string) bool {
	// cur[j] reports whether g[:i] matches p[:j].
	cur := make([]bool, len(p)+1)
	next := make([]bool, len(p)+1)
	cur[0] = true
	for _, seg := range g {
		if seg == "**" {
			seen := false
			for j := range cur {
				seen = seen || cur[j]
				next[j] = seen
			}
		} else {
			next[0] = false
			for j := 1; j <= len(p); j++ {
				next[j] = false
				if cur[j-1] {
					ok, err := path.Match(seg, p[j-1])
					if err != nil {
						return false
					}
					next[j] = ok
				}
			}
		}
		cur, next = next, cur
	}
	return cur[len(p)]
}
