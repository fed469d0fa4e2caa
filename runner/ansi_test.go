package runner

import (
	"bytes"
	"testing"
)

func TestStripANSI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "hello world", "hello world"},
		{"carriage return kept", "50%\r100%", "50%\r100%"},
		{"utf8 and C1 bytes kept", "héllo \u009b wörld", "héllo \u009b wörld"},
		{"sgr", "\x1b[31mred\x1b[0m text", "red text"},
		{"sgr no params", "\x1b[mx", "x"},
		{"sgr 256 and truecolor", "\x1b[38;5;208ma\x1b[48;2;1;2;3mb", "ab"},
		{"private mode", "\x1b[?25lhidden\x1b[?25h", "hidden"},
		{"csi intermediate", "a\x1b[2 qb", "ab"},
		{"erase line and cursor", "\x1b[2K\x1b[1Gprogress", "progress"},
		{"csi aborted by control byte", "a\x1b[12\tb", "a\tb"},
		{"csi unterminated", "text\x1b[12;3", "text"},
		{"osc bel", "\x1b]0;window title\x07after", "after"},
		{"osc st", "\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"osc unterminated", "a\x1b]0;title", "a"},
		{"osc aborted by escape", "a\x1b]0;ti\x1b[31mb", "ab"},
		{"dcs", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"dcs bel does not end it", "a\x1bPx\x07y\x1b\\b", "ab"},
		{"apc", "a\x1b_Gf=24;AAAA\x1b\\b", "ab"},
		{"sos and pm", "\x1bXsos\x1b\\a\x1b^pm\x1b\\b", "ab"},
		{"charset", "\x1b(Bplain\x1b)0", "plain"},
		{"dec line", "\x1b#8x", "x"},
		{"two byte", "\x1bcreset\x1bMup\x1b7\x1b8\x1b=\x1b>", "resetup"},
		{"lone esc at end", "abc\x1b", "abc"},
		{"esc before control", "a\x1b\tb", "a\tb"},
		{"esc before high byte", "a\x1b\xc3\xa9", "aé"},
		{"esc esc", "a\x1b\x1b[1mb", "ab"},
		{"esc del", "a\x1b\x7fb", "a\x7fb"},
		{"only escapes", "\x1b[0m\x1b[K", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StripANSI(nil, []byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("StripANSI(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Appending keeps what dst holds.
			got = StripANSI([]byte("pre:"), []byte(tt.in))
			if string(got) != "pre:"+tt.want {
				t.Errorf("StripANSI(pre:, %q) = %q, want %q", tt.in, got, "pre:"+tt.want)
			}
		})
	}
}

func TestStripANSINoEscapeNoCopy(t *testing.T) {
	line := []byte("no escapes here")
	got := StripANSI(nil, line)
	if &got[0] != &line[0] {
		t.Error("a line without ESC was copied")
	}
	if n := testing.AllocsPerRun(100, func() { StripANSI(nil, line) }); n != 0 {
		t.Errorf("fast path allocates %v times", n)
	}
}

func FuzzStripANSI(f *testing.F) {
	for _, s := range []string{
		"plain", "\x1b[31mred\x1b[0m", "\x1b]0;t\x07x", "\x1bPq\x1b\\", "\x1b(B", "\x1bc", "\x1b", "a\x1b]x\x1b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out := StripANSI(nil, in)
		if !bytes.Equal(in, orig) {
			t.Fatal("StripANSI modified its input")
		}
		if bytes.IndexByte(out, esc) >= 0 {
			t.Fatalf("StripANSI(%q) = %q contains ESC", in, out)
		}
		if len(out) > len(in) {
			t.Fatalf("StripANSI(%q) = %q is longer than its input", in, out)
		}
		if again := StripANSI(nil, out); !bytes.Equal(again, out) {
			t.Fatalf("StripANSI is not idempotent: %q -> %q -> %q", in, out, again)
		}
		if bytes.IndexByte(in, esc) < 0 && !bytes.Equal(out, in) {
			t.Fatalf("StripANSI(%q) = %q changed a line without ESC", in, out)
		}
		if got := StripANSI([]byte("x"), in); !bytes.Equal(got[1:], out) || got[0] != 'x' {
			t.Fatalf("appending to dst gives %q, want x%q", got, out)
		}
	})
}
