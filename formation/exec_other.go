//go:build !linux

package formation

// execLimit is a conservative bound on what exec takes of argument and
// environment strings where the kernel is not Linux, and why: 256 KiB,
// FreeBSD's ARG_MAX of old and a quarter of macOS's.
func execLimit() (int, string) {
	return 256 << 10, "ARG_MAX"
}
