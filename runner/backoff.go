package runner

import "time"

// backoff is the delay before the n-th restart in a row of an instance:
// min·2ⁿ⁻¹, capped at max, with up to ±10% jitter so that a formation of
// crashing instances does not restart in lock step.
type backoff struct {
	min, max time.Duration
}

// delay is the wait before restart n (1-based); jitter in [-1, 1] scales
// the ±10%.
func (b backoff) delay(n int, jitter float64) time.Duration {
	d := b.min
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d + time.Duration(float64(d)*0.1*jitter)
}
