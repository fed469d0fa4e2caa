package runner

import (
	"fmt"
	"strings"

	"mhrun/formation"
)

// checkMemorySupport refuses memory= where there is no /proc to read, so a
// cap is never silently ignored.
func checkMemorySupport(f *formation.Formation) error {
	if MemorySupported() {
		return nil
	}
	var names []string
	for _, p := range f.Processes {
		if p.Policy.Memory > 0 && p.Scale > 0 {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("memory= needs /proc to measure process trees, which this system lacks: remove memory= from %s, or run on Linux", strings.Join(names, ", "))
}

// capped reports whether any process of the formation has a memory cap.
func (r *Runner) capped() bool {
	for _, in := range r.insts {
		if in.proc.Policy.Memory > 0 {
			return true
		}
	}
	return false
}

// sampleMemory reads every capped running instance's tree once and
// restarts, gracefully, the ones over their cap; such restarts never count
// as failures.
func (r *Runner) sampleMemory() {
	if r.stopping {
		return
	}
	roots := r.roots[:0]
	for _, in := range r.insts {
		if in.state == StateRunning && in.proc.Policy.Memory > 0 {
			roots = append(roots, in.run.pid)
		}
	}
	r.roots = roots
	if len(roots) == 0 {
		return
	}
	samples := r.sampler.Sample(roots)
	for _, in := range r.insts {
		if in.state != StateRunning || in.proc.Policy.Memory <= 0 {
			continue
		}
		s, ok := samples[in.run.pid]
		if !ok {
			continue
		}
		in.rss = s.RSS
		if limit := in.proc.Policy.Memory; s.RSS > limit {
			r.out.Event("%s over memory cap: %s > %s, restarting", in.name, FormatBytes(s.RSS), FormatBytes(limit))
			r.stopInstance(in, "memory")
		}
	}
}

// FormatBytes prints a size as the policy writes it, with one decimal
// where it helps: 1.2G, 300M, 512K; for events, status and top alike.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, u := float64(n)/unit, "K"
	for _, next := range []string{"M", "G", "T"} {
		if v < unit {
			break
		}
		v, u = v/unit, next
	}
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0") + u
}
