package runner

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	s, m := time.Second, time.Minute
	tests := []struct {
		b      backoff
		n      int
		jitter float64
		want   time.Duration
	}{
		{backoff{s, m}, 1, 0, s},
		{backoff{s, m}, 2, 0, 2 * s},
		{backoff{s, m}, 3, 0, 4 * s},
		{backoff{s, m}, 6, 0, 32 * s},
		{backoff{s, m}, 7, 0, m},
		{backoff{s, m}, 1000, 0, m}, // no overflow however long the loop
		{backoff{s, m}, 3, 1, 4400 * time.Millisecond},
		{backoff{s, m}, 3, -1, 3600 * time.Millisecond},
		{backoff{0, 0}, 5, 1, 0},
		{backoff{2 * s, 2 * s}, 9, 0, 2 * s},
		{backoff{500 * time.Millisecond, 30 * s}, 2, 0, s},
	}
	for _, tt := range tests {
		if got := tt.b.delay(tt.n, tt.jitter); got != tt.want {
			t.Errorf("%v.delay(%d, %v) = %v, want %v", tt.b, tt.n, tt.jitter, got, tt.want)
		}
	}
}
