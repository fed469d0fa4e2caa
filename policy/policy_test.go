package policy

import "testing"

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512B", 1024: "1K", 300 << 20: "300M", 1 << 30: "1G",
		1288490188: "1.2G", 1536 << 20: "1.5G", 3 << 40: "3T",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
