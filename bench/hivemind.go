//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Hivemind (github.com/DarthSim/hivemind) is the peer closest to mhrun's
// start: one Go binary, a pty per process, no daemon. When -hivemind names
// it, or one is on $PATH, startstop and idle measure it in the same rounds
// as mhrun. It has no scale, so its Procfile lists cfg.procs processes,
// s1 … sN, each "exec sleep 1000".

// findHivemind returns the hivemind binary to measure, "" for none.
func (b *bench) findHivemind() string {
	if b.cfg.hivemind != "" {
		if p, err := filepath.Abs(b.cfg.hivemind); err == nil {
			return p
		}
		return b.cfg.hivemind
	}
	if p, err := exec.LookPath("hivemind"); err == nil {
		return p
	}
	return ""
}

// startHivemind starts hivemind on n sleeps in tag's dir under the temp dir.
func (b *bench) startHivemind(bin, tag string, n int) (*sleepers, error) {
	dir, err := b.runDir(tag)
	if err != nil {
		return nil, err
	}
	var pf strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&pf, "s%d: exec sleep 1000\n", i)
	}
	path := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(path, []byte(pf.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := b.command(bin, "--root", dir, path)
	cmd.Dir = dir
	return b.launch("hivemind", dir, n, cmd)
}
