package output

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// filterTests give, for one line of a child, the plain text (no colour, the
// log files, Tap) and what a terminal gets (colour). color "=" is the input
// unchanged.
var filterTests = []struct {
	name, in, plain, color string
}{
	{"empty", "", "", ""},
	{"plain", "hello world", "hello world", "="},
	{"tab kept", "a\tb\t", "a\tb\t", "="},

	// C0 controls, DEL
	{"backspace", "ab\bc", "abc", "abc"},
	{"bell", "ding\a", "ding", "ding"},
	{"other C0", "a\x00\x01\x0b\x0c\x0e\x1fb", "ab", "ab"},
	{"newline", "a\nb", "ab", "ab"},
	{"DEL", "a\x7fb", "ab", "ab"},
	{"CAN and SUB", "a\x18\x1ab", "ab", "ab"},

	// "\r"
	{"progress", "50%\r100%", "100%", "100%"},
	{"progress steps", "a\rbb\rccc", "ccc", "ccc"},
	{"cr at the end", "done\r", "done", "done"},
	{"crs at the end", "abc\r\r", "abc", "abc"},
	{"cr at the start", "\rabc", "abc", "abc"},
	{"tab after cr is text", "a\r\tb", "\tb", "\tb"},
	{"cr then only escapes", "msg\r\x1b[K", "msg", "msg"},
	{"cr then erase then text", "old\r\x1b[2Knew", "new", "new"},
	{"cr keeps the colours before it", "\x1b[32m50%\r100%\x1b[0m", "100%", "\x1b[32m100%\x1b[0m"},
	{"cr keeps every colour before it", "\x1b[31mred\r\x1b[1mgreen", "green", "\x1b[31m\x1b[1mgreen\x1b[0m"},
	{"cr cr text", "a\r\rb", "b", "b"},

	// UTF-8 and 8-bit bytes
	{"utf8", "héllo wörld ✓ 日本 🙂", "héllo wörld ✓ 日本 🙂", "="},
	{"replacement char is text", "a\uFFFDb", "a\uFFFDb", "="},
	{"nbsp is text", "a\u00a0b", "a\u00a0b", "="},
	{"utf8 C1 NEL", "a\u0085b", "ab", "ab"},
	{"utf8 C1 ST alone", "a\u009cb", "ab", "ab"},
	{"raw C1", "a\x85\x8d\x9cb", "ab", "ab"},
	{"latin-1 kept", "caf\xe9 \xff\xa0", "caf\xe9 \xff\xa0", "="},
	{"cut utf8 lead kept", "a\xc2", "a\xc2", "="},
	{"cut utf8 continuation is C1", "x\xe2\x82", "x\xe2", "x\xe2"},
	{"invalid lead then text", "\xf0a", "\xf0a", "="},

	// 8-bit introducers, raw and UTF-8 encoded
	{"raw CSI sgr", "a\x9b31mb", "ab", "a\x1b[31mb\x1b[0m"},
	{"raw CSI DSR", "a\x9b6nb", "ab", "ab"},
	{"utf8 CSI", "a\u009b6nb", "ab", "ab"},
	{"utf8 CSI sgr", "a\u009b1mb", "ab", "a\x1b[1mb\x1b[0m"},
	{"utf8 CSI eats its parameters", "héllo \u009b wörld", "héllo örld", "héllo örld"},
	{"raw OSC bel", "a\x9d0;title\x07b", "ab", "ab"},
	{"raw OSC raw ST", "a\x9d0;title\x9cb", "ab", "ab"},
	{"raw OSC utf8 ST", "a\x9d0;title\u009cb", "ab", "ab"},
	{"utf8 OSC 7-bit ST", "a\u009d2;t\x1b\\b", "ab", "ab"},
	{"raw DCS", "a\x90$qm\x9cb", "ab", "ab"},
	{"raw APC PM SOS", "\x9fapc\x9ca\x9epm\x9cb\x98sos\x9cc", "abc", "abc"},
	{"0x9c inside utf8 is not ST", "a\x1b]0;\u271c ok\x07b", "ab", "ab"},

	// SGR: kept with colour only
	{"sgr", "\x1b[31mred\x1b[0m text", "red text", "="},
	{"sgr left open", "\x1b[1;41mbold", "bold", "\x1b[1;41mbold\x1b[0m"},
	{"sgr no params", "\x1b[mx", "x", "="},
	{"sgr 256 and truecolor", "\x1b[38;5;208ma\x1b[48;2;1;2;3mb", "ab", "\x1b[38;5;208ma\x1b[48;2;1;2;3mb\x1b[0m"},
	{"sgr colon subparameters", "\x1b[4:3mx\x1b[58:2::1:2:3my\x1b[0m", "xy", "="},
	{"modifyOtherKeys is not sgr", "\x1b[>4;2mx", "x", "x"},
	{"query modifiers is not sgr", "\x1b[?4mx", "x", "x"},
	{"sgr with intermediate is not sgr", "\x1b[1 mx", "x", "x"},

	// sequences that make the terminal answer
	{"DSR cursor", "a\x1b[6nb", "ab", "ab"},
	{"DSR status", "a\x1b[5nb", "ab", "ab"},
	{"DSR private", "a\x1b[?6nb", "ab", "ab"},
	{"DA", "a\x1b[cb\x1b[0c", "ab", "ab"},
	{"DA2 DA3", "a\x1b[>cb\x1b[=c", "ab", "ab"},
	{"XTVERSION", "a\x1b[>qb", "ab", "ab"},
	{"window report", "a\x1b[18tb\x1b[21t", "ab", "ab"},
	{"window op", "a\x1b[8;24;80tb", "ab", "ab"},
	{"DECRQSS", "a\x1bP$qm\x1b\\b", "ab", "ab"},
	{"XTGETTCAP", "a\x1bP+q544e\x1b\\b", "ab", "ab"},
	{"OSC colour query bel", "a\x1b]10;?\x07b", "ab", "ab"},
	{"OSC colour query st", "a\x1b]11;?\x1b\\b", "ab", "ab"},
	{"DECRQM", "a\x1b[?2026$pb", "ab", "ab"},

	// sequences that reset or change the terminal for good
	{"RIS", "\x1bcreset", "reset", "reset"},
	{"DECSTR", "a\x1b[!pb", "ab", "ab"},
	{"title", "\x1b]0;window title\x07after", "after", "after"},
	{"title 2 st", "\x1b]2;t\x1b\\after", "after", "after"},
	{"clipboard", "a\x1b]52;c;aGVsbG8=\x07b", "ab", "ab"},
	{"hyperlink", "\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link", "link"},
	{"alternate screen", "a\x1b[?1049hb", "ab", "ab"},
	{"mouse reporting", "a\x1b[?1000h\x1b[?1006hb", "ab", "ab"},
	{"cursor hidden", "\x1b[?25lhidden\x1b[?25h", "hidden", "hidden"},
	{"cursor style", "a\x1b[2 qb", "ab", "ab"},
	{"charset", "\x1b(0plain\x1b(B\x1b)0", "plain", "plain"},
	{"keypad", "a\x1b=b\x1b>", "ab", "ab"},

	// cursor movement and erasing
	{"erase line and column", "\x1b[2K\x1b[1Gprogress", "progress", "progress"},
	{"cursor up", "a\x1b[Ab\x1b[3A", "ab", "ab"},
	{"cursor position", "a\x1b[10;20Hb", "ab", "ab"},
	{"save restore", "\x1b7a\x1b8b", "ab", "ab"},
	{"reverse index", "a\x1bMb", "ab", "ab"},
	{"dec line", "\x1b#8x", "x", "x"},

	// malformed
	{"csi aborted by tab", "a\x1b[12\tb", "a\tb", "a\tb"},
	{"csi aborted by CAN", "a\x1b[31\x18mb", "amb", "amb"},
	{"csi unterminated", "text\x1b[12;3", "text", "text"},
	{"csi aborted by high byte", "a\x1b[1\xc3\xa9", "aé", "aé"},
	{"osc unterminated", "a\x1b]0;title", "a", "a"},
	{"osc aborted by sgr", "a\x1b]0;ti\x1b[31mb", "ab", "a\x1b[31mb\x1b[0m"},
	{"osc aborted by SUB", "a\x1b]0;ti\x1ab", "ab", "ab"},
	{"dcs bel does not end it", "a\x1bPx\x07y\x1b\\b", "ab", "ab"},
	{"apc", "a\x1b_Gf=24;AAAA\x1b\\b", "ab", "ab"},
	{"sos and pm", "\x1bXsos\x1b\\a\x1b^pm\x1b\\b", "ab", "ab"},
	{"lone esc at end", "abc\x1b", "abc", "abc"},
	{"esc before control", "a\x1b\tb", "a\tb", "a\tb"},
	{"esc before high byte", "a\x1b\xc3\xa9", "aé", "aé"},
	{"esc esc", "a\x1b\x1b[1mb", "ab", "a\x1b[1mb\x1b[0m"},
	{"esc del", "a\x1b\x7fb", "ab", "ab"},
	{"esc cr", "old\x1b\rnew", "new", "new"},
	{"only escapes", "\x1b[0m\x1b[K", "", "\x1b[0m"},
}

func TestFilterLine(t *testing.T) {
	for _, tt := range filterTests {
		t.Run(tt.name, func(t *testing.T) {
			color := tt.color
			if color == "=" {
				color = tt.in
			}
			for _, c := range []struct {
				keepSGR bool
				want    string
			}{{false, tt.plain}, {true, color}} {
				got, st := filterLine(nil, []byte(tt.in), c.keepSGR, ground)
				if string(got) != c.want {
					t.Errorf("filterLine(%q, color %v) = %q, want %q", tt.in, c.keepSGR, got, c.want)
				}
				_ = st
				// Appending keeps what dst holds.
				got, _ = filterLine([]byte("pre:"), []byte(tt.in), c.keepSGR, ground)
				if string(got) != "pre:"+c.want {
					t.Errorf("filterLine(pre:, %q, color %v) = %q, want %q", tt.in, c.keepSGR, got, "pre:"+c.want)
				}
			}
			if got := StripANSI(nil, []byte(tt.in)); string(got) != tt.plain {
				t.Errorf("StripANSI(%q) = %q, want %q", tt.in, got, tt.plain)
			}
		})
	}
}

// TestFilterLineCut: a line written after Pause (the child paused) may end
// inside a sequence; the rest of it, at the start of the next line, is dropped.
func TestFilterLineCut(t *testing.T) {
	tests := []struct {
		name, first, next, want1, want2 string
	}{
		{"csi", "abc\x1b[3", "1mred", "abc", "red"},
		{"esc", "abc\x1b", "[1mbold", "abc", "bold"},
		{"esc two byte", "abc\x1b", "cx", "abc", "x"},
		{"osc", "a\x1b]0;ti", "tle\x07b", "a", "b"},
		{"osc whole next line", "a\x1b]0;ti", "tle", "a", ""},
		{"esc in osc then st", "\x1b]0;t\x1b", "\\b", "", "b"},
		{"esc in osc then csi", "\x1b]0;t\x1b", "[31mb", "", "b"},
		{"dcs raw st", "a\x90$q", "m\x9cb", "a", "b"},
		{"nF", "a\x1b(", "Bb", "a", "b"},
		{"csi aborted at once", "a\x1b[", "\x07b", "a", "b"},
		{"nothing open", "done", "\x1b[1mnext", "done", "next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, keepSGR := range []bool{false, true} {
				got1, st := filterLine(nil, []byte(tt.first), keepSGR, ground)
				got2, _ := filterLine(nil, []byte(tt.next), keepSGR, st)
				got1, got2 = removeSGR(nil, got1), removeSGR(nil, got2)
				if string(got1) != tt.want1 || string(got2) != tt.want2 {
					t.Errorf("color %v: %q, %q filtered to %q, %q, want %q, %q", keepSGR, tt.first, tt.next, got1, got2, tt.want1, tt.want2)
				}
			}
		})
	}
}

func TestStripANSINoChangeNoCopy(t *testing.T) {
	for _, s := range []string{"no escapes here", "tab\tand ütf-8 ✓ and 8-bit \xe9", ""} {
		line := []byte(s)
		got := StripANSI(nil, line)
		if len(line) > 0 && &got[0] != &line[0] {
			t.Errorf("%q was copied", s)
		}
		if n := testing.AllocsPerRun(100, func() { StripANSI(nil, line) }); n != 0 {
			t.Errorf("fast path allocates %v times", n)
		}
	}
	buf := make([]byte, 0, 256)
	line := []byte("\x1b[31mred\x1b[0m 50%\r100% \u0085\x9b6n done")
	if n := testing.AllocsPerRun(100, func() { filterLine(buf[:0], line, true, ground) }); n != 0 {
		t.Errorf("filtering into a buffer with room allocates %v times", n)
	}
}

func TestTextRun(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"a", 1}, {"abcdefgh", 8}, {"abcdefghi", 9}, {"abcdefg\x7f", 7},
		{"abcdefgh\x1f", 8}, {"\tabc", 0}, {"abc ~~~~}", 9}, {"a\x00cdefgh", 1},
		{"abcdefghijklmnopqrstuvwxyz\r", 26}, {"abcdefghijklmno\x80", 15}, {"abcdefg\xff", 8},
		{"héllo ✓ 日本 🙂 wörld", len("héllo ✓ 日本 🙂 wörld")}, {"héllo\tx", 6},
		{"ab\u0085cd", 2}, {"é\u009b", 2}, {"\u00a0\u00bf", 4}, {"\xc2", 1}, {"ab\xc2\x85", 2},
		{"caf\xe9 \x9b", 5}, {"✓\xe2\x82", 4}, {"\xe2\x9c\x93\x9c", 3}, {"ok\xc3\xa9\x1b[m", 4},
	} {
		if got := textRun([]byte(c.in)); got != c.want {
			t.Errorf("textRun(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	// Every byte value at every position of two words, among ASCII and
	// among UTF-8 text, against a rune-at-a-time reading of the rule.
	for _, fill := range []string{"x", "é", "✓a"} {
		for v := range 256 {
			for pos := range 18 {
				b := []byte(strings.Repeat(fill, 18))
				b = slices.Concat(b[:pos], []byte{byte(v)}, b[pos:])
				if got, want := textRun(b), refTextRun(b); got != want {
					t.Fatalf("textRun(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

// refTextRun is textRun a rune at a time.
func refTextRun(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case size == 1 && b[i] >= 0x80:
			if b[i] <= 0x9f { // a raw C1 control
				return i
			}
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return i
		}
		i += size
	}
	return len(b)
}

// checkPlain fails unless out is printable text: no C0 control but TAB, no
// DEL, no C1 control raw or UTF-8 encoded.
func checkPlain(t *testing.T, in, out []byte) {
	t.Helper()
	for i := 0; i < len(out); {
		c := out[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			t.Fatalf("filter(%q) = %q holds control %#x at %d", in, out, c, i)
		}
		if c < 0x80 {
			i++
			continue
		}
		r, size := utf8.DecodeRune(out[i:])
		if size > 1 && r >= 0x80 && r <= 0x9f || size == 1 && c <= 0x9f {
			t.Fatalf("filter(%q) = %q holds C1 control at %d", in, out, i)
		}
		i += size
	}
}

// checkColor fails unless every ESC in out begins an SGR, and out without
// them is plain.
func checkColor(t *testing.T, in, out, plain []byte) {
	t.Helper()
	for i := 0; i < len(out); i++ {
		if out[i] != esc {
			continue
		}
		j := i + 1
		if j >= len(out) || out[j] != '[' {
			t.Fatalf("filter(%q, color) = %q: ESC at %d is not a CSI", in, out, i)
		}
		for j++; j < len(out) && out[j] >= '0' && out[j] <= ';'; j++ {
		}
		if j >= len(out) || out[j] != 'm' {
			t.Fatalf("filter(%q, color) = %q: ESC at %d is not an SGR", in, out, i)
		}
	}
	if got := removeSGR(nil, out); !bytes.Equal(got, plain) {
		t.Fatalf("filter(%q, color) = %q is %q without its SGRs, plain is %q", in, out, got, plain)
	}
}

func FuzzStripANSI(f *testing.F) {
	for _, tt := range filterTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		plain := StripANSI(nil, in)
		if !bytes.Equal(in, orig) {
			t.Fatal("StripANSI modified its input")
		}
		checkPlain(t, in, plain)
		if len(plain) > len(in) {
			t.Fatalf("StripANSI(%q) = %q is longer than its input", in, plain)
		}
		if again := StripANSI(nil, plain); !bytes.Equal(again, plain) {
			t.Fatalf("StripANSI is not idempotent: %q -> %q -> %q", in, plain, again)
		}
		if got := StripANSI([]byte("x"), in); !bytes.Equal(got[1:], plain) || got[0] != 'x' {
			t.Fatalf("appending to dst gives %q, want x%q", got, plain)
		}
		color, _ := filterLine(nil, in, true, ground)
		checkColor(t, in, color, plain)
		if again, _ := filterLine(nil, color, true, ground); !bytes.Equal(again, color) {
			t.Fatalf("colour filter is not idempotent: %q -> %q -> %q", in, color, again)
		}

		// Cut anywhere, as a partial line written after Pause: each part is
		// clean, whatever the state carried.
		if len(in) == 0 {
			return
		}
		k := int(in[0]) % (len(in) + 1)
		for _, keepSGR := range []bool{false, true} {
			a, st := filterLine(nil, in[:k], keepSGR, ground)
			b, _ := filterLine(nil, in[k:], keepSGR, st)
			pa, pb := removeSGR(nil, a), removeSGR(nil, b)
			checkPlain(t, in[:k], pa)
			checkPlain(t, in[k:], pb)
			if keepSGR {
				checkColor(t, in[:k], a, pa)
				checkColor(t, in[k:], b, pb)
			}
		}
	})
}

// BenchmarkFilterLine: one 98-byte line into the writer's buffer, as format
// does for each line.
func BenchmarkFilterLine(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"ascii", "web.1 line 0001234 " + strings.Repeat("abcdefghijklmnopqrstuvwxyz", 4)[:79]},
		{"utf8", "web.1 ligne 0001234 données reçues: " + strings.Repeat("é✓", 12)},
		{"sgr", "\x1b[32mweb.1\x1b[0m line 0001234 " + strings.Repeat("abcdefghijklmnopqrstuvwxyz", 3)[:60]},
	} {
		line := []byte(c.line)
		buf := make([]byte, 0, 4096)
		for _, color := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/color=%v", c.name, color), func(b *testing.B) {
				b.SetBytes(int64(len(line)))
				for b.Loop() {
					filterLine(buf[:0], line, color, ground)
				}
			})
		}
		b.Run(c.name+"/indexbyte+append", func(b *testing.B) { // the former fast path, for comparison
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if bytes.IndexByte(line, esc) < 0 {
					_ = append(buf[:0], line...)
				}
			}
		})
	}
}
