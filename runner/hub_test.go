package runner

import (
	"bytes"
	"testing"
)

// The ring keeps exactly the last hubRing bytes, in order, whatever the
// sizes of the writes.
func TestHubRing(t *testing.T) {
	for _, chunk := range []int{1, 7, 4096, hubRing - 1, hubRing, hubRing + 3} {
		h := newHub()
		var all []byte
		for i := 0; len(all) < 3*hubRing; i++ {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, chunk)
			p[0] = byte(i)
			h.Write(p)
			all = append(all, p...)
			// Reading the whole ring after each of 200,000 one-byte writes
			// took 86 s under -race: small writes are checked every 997th
			// write (a stride that lands on ever other ring offsets) and
			// after the last.
			if chunk < 64 && i%997 != 0 && len(all) < 3*hubRing {
				continue
			}
			want := all[max(0, len(all)-hubRing):]
			if got := h.recent(); !bytes.Equal(got, want) {
				t.Fatalf("chunk %d, write %d: ring holds %d bytes, not the last %d written", chunk, i, len(got), len(want))
			}
		}
	}
}
