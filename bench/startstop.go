//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"time"
)

// settle is the pause between "all sleeps exist" and SIGTERM, so that the
// stop is measured on a runner done with its start.
const settle = 300 * time.Millisecond

// startStop measures start and stop of cfg.procs sleeps, shell and mhrun in
// turn, cfg.runs times each.
func (b *bench) startStop() ([]row, error) {
	c := b.cfg
	fmt.Fprintf(b.log, "start/stop: %d sleeps, %d runs each of the shell and mhrun\n", c.procs, c.runs)
	var bStart, bStop, mStart, mStop, oStart, oStop []time.Duration
	scans, spent := 0, time.Duration(0)
	busy := newBusy()
	kinds := []string{"shell", "mhrun"}
	if c.before != "" { // the -before binary, taking turns with the others
		kinds = append(kinds, "before")
	}
	hivemind := b.findHivemind()
	if hivemind != "" {
		kinds = append(kinds, "hivemind")
	}
	var hStart, hStop []time.Duration
	for i := 0; i < c.runs; i++ {
		for _, kind := range kinds {
			saved := b.mhrun
			if kind == "before" {
				if b.mhrun = c.before; !filepath.IsAbs(b.mhrun) {
					b.mhrun, _ = filepath.Abs(b.mhrun)
				}
			}
			var start, stop time.Duration
			var w *watcher
			var err error
			if kind == "hivemind" {
				start, stop, w, err = b.startStopOf(func() (*sleepers, error) { return b.startHivemind(hivemind, "startstop-hivemind", c.procs) })
			} else {
				start, stop, w, err = b.startStopRun(kind != "shell")
			}
			b.mhrun = saved
			if w != nil {
				scans, spent = scans+w.scans, spent+w.spent
			}
			if err != nil {
				return nil, err
			}
			switch kind {
			case "mhrun":
				mStart, mStop = append(mStart, start), append(mStop, stop)
			case "before":
				oStart, oStop = append(oStart, start), append(oStop, stop)
			case "hivemind":
				hStart, hStop = append(hStart, start), append(hStop, stop)
			default:
				bStart, bStop = append(bStart, start), append(bStop, stop)
			}
		}
	}
	b.logf("  machine busy %.0f%% over the start/stop runs (this benchmark's polling included)", busy.percent())
	if scans > 0 {
		b.logf("  /proc scans: %d, %.0f µs each on average", scans, float64(spent.Microseconds())/float64(scans))
	}
	name := fmt.Sprintf("start/stop %d", c.procs)
	bsm, msm := median(bStart), median(mStart)
	bpm, mpm := median(bStop), median(mStop)
	rows := []row{
		{name, fmt.Sprintf("start: exec → %d sleeps exist, median of %d", c.procs, c.runs), millis(bsm), millis(msm), ratio(msm, bsm), "< 100 ms", met(msm < 100*time.Millisecond)},
		{"", "start, best", millis(best(bStart)), millis(best(mStart)), ratio(best(mStart), best(bStart)), "", ""},
		{"", fmt.Sprintf("stop: SIGTERM → runner and sleeps gone, median of %d", c.runs), millis(bpm), millis(mpm), ratio(mpm, bpm), "≤ baseline + 50 ms", met(mpm <= bpm+50*time.Millisecond)},
		{"", "stop, best", millis(best(bStop)), millis(best(mStop)), ratio(best(mStop), best(bStop)), "", ""},
	}
	if len(oStart) > 0 {
		osm := median(oStart)
		rows = append(rows,
			row{"", fmt.Sprintf("start, median of %d: the -before binary (baseline column) → this one", c.runs), millis(osm), millis(msm), ratio(msm, osm), "≤ before", met(msm <= osm)},
			row{"", "start, best: before → this one", millis(best(oStart)), millis(best(mStart)), ratio(best(mStart), best(oStart)), "", ""},
			row{"", fmt.Sprintf("stop, median of %d: before → this one", c.runs), millis(median(oStop)), millis(mpm), ratio(mpm, median(oStop)), "", ""})
	}
	if len(hStart) > 0 {
		hsm := median(hStart)
		rows = append(rows,
			row{"", fmt.Sprintf("start, median of %d: hivemind (baseline column, %d processes in its Procfile) → mhrun", c.runs, c.procs), millis(hsm), millis(msm), ratio(msm, hsm), "≤ hivemind", met(msm <= hsm)},
			row{"", "start, best: hivemind → mhrun", millis(best(hStart)), millis(best(mStart)), ratio(best(mStart), best(hStart)), "", ""},
			row{"", fmt.Sprintf("stop, median of %d: hivemind → mhrun", c.runs), millis(median(hStop)), millis(mpm), ratio(mpm, median(hStop)), "", ""})
	}
	return rows, nil
}

func (b *bench) startStopRun(mhrun bool) (start, stop time.Duration, w *watcher, err error) {
	return b.startStopOf(func() (*sleepers, error) { return b.startSleepers(mhrun, "startstop") })
}

// startStopOf measures one start and stop of the runner launch starts.
func (b *bench) startStopOf(launch func() (*sleepers, error)) (start, stop time.Duration, w *watcher, err error) {
	s, err := launch()
	if err != nil {
		return 0, 0, nil, err
	}
	defer s.kill()
	if start, err = s.waitAll(); err != nil {
		return 0, 0, s.w, err
	}
	if err = b.pause(settle); err != nil {
		return 0, 0, s.w, err
	}
	stop, err = s.stop()
	b.logf("  %-5s start %7.1f ms (first sleep seen at %5.1f ms, half of them at %5.1f ms)  stop %7.1f ms",
		s.what, ms(start), ms(s.first), ms(s.half), ms(stop))
	return start, stop, s.w, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
