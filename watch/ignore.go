package watch

import "strings"

// ignoredDirs are directory names never walked, watched or reported, at any
// depth: version control, dependencies, and mhrun's own state.
var ignoredDirs = map[string]bool{
	".git":         true,
	"node_modules": true,
	".mhrun":       true,
}

// inIgnoredDir reports whether rel is, or lies below, an ignored directory.
func inIgnoredDir(rel string) bool {
	for seg := range strings.SplitSeq(rel, "/") {
		if ignoredDirs[seg] {
			return true
		}
	}
	return false
}

// ignoredName reports whether a base name is mhrun's control socket or an
// editor's scratch file:
//
//	.mhrun.sock*   mhrun's control socket (and its lock)
//	*~             backups (vim, emacs, nano)
//	.*.swp .*.swx  vim swap files (.swp down to .swa as they collide, .swx probe)
//	4913           vim's probe for whether it may create files in the dir
//	.#*            emacs lock files
func ignoredName(base string) bool {
	switch {
	case strings.HasPrefix(base, ".mhrun.sock"),
		strings.HasSuffix(base, "~"),
		base == "4913",
		strings.HasPrefix(base, ".#"):
		return true
	}
	if strings.HasPrefix(base, ".") && len(base) > 4 {
		ext := base[len(base)-4:]
		if ext == ".swx" || (strings.HasPrefix(ext, ".sw") && ext[3] >= 'a' && ext[3] <= 'p') {
			return true
		}
	}
	return false
}
