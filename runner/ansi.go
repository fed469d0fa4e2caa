package runner

import "bytes"

// Escape sequences removed by StripANSI (ECMA-48 / xterm control sequences,
// 7-bit forms only; 8-bit C1 bytes are left alone because in UTF-8 they are
// continuation bytes):
//
//   - CSI: ESC [ parameters (0x30–0x3F) intermediates (0x20–0x2F) final (0x40–0x7E)
//   - OSC: ESC ] … terminated by BEL or ESC \ (ST)
//   - DCS, SOS, PM, APC: ESC P / X / ^ / _ … terminated by ESC \
//   - nF, e.g. the charset designations ESC ( B and ESC # 8:
//     ESC, intermediates (0x20–0x2F), one final byte (0x30–0x7E)
//   - every other two-byte sequence: ESC followed by 0x30–0x7E (ESC 7, ESC M, ESC c, …)
//
// A sequence interrupted by a byte it cannot contain ends there and that byte
// is kept as text; an ESC inside a string (OSC, DCS…) that does not start ST
// ends the string and begins a new sequence; a sequence still open at the end
// of the line is dropped to the end. A lone ESC is dropped. So the result never
// contains ESC, which makes StripANSI idempotent.

const (
	esc = 0x1b
	bel = 0x07
)

// StripANSI appends line to dst with every ANSI escape sequence removed and
// returns the extended slice. Lines without ESC take a fast path: when dst is
// nil, line itself is returned, without copying.
func StripANSI(dst, line []byte) []byte {
	i := bytes.IndexByte(line, esc)
	if i < 0 {
		if dst == nil {
			return line
		}
		return append(dst, line...)
	}
	for i >= 0 {
		dst = append(dst, line[:i]...)
		line = line[i+escLen(line[i:]):]
		i = bytes.IndexByte(line, esc)
	}
	return append(dst, line...)
}

// escLen returns the length of the escape sequence at the start of b, where
// b[0] is ESC; it is at least 1.
func escLen(b []byte) int {
	if len(b) < 2 {
		return 1
	}
	switch c := b[1]; {
	case c == '[': // CSI
		i := 2
		for i < len(b) && b[i] >= 0x20 && b[i] <= 0x3f {
			i++
		}
		if i < len(b) && b[i] >= 0x40 && b[i] <= 0x7e {
			i++
		}
		return i
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_': // OSC, DCS, SOS, PM, APC
		for i := 2; i < len(b); i++ {
			switch b[i] {
			case bel:
				if c == ']' {
					return i + 1
				}
			case esc:
				if i+1 < len(b) && b[i+1] == '\\' {
					return i + 2
				}
				return i // aborted: the ESC starts the next sequence
			}
		}
		return len(b)
	case c >= 0x20 && c <= 0x2f: // nF: ESC ( B, ESC # 8, ESC % G…
		i := 2
		for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
			i++
		}
		if i < len(b) && b[i] >= 0x30 && b[i] <= 0x7e {
			i++
		}
		return i
	case c >= 0x30 && c <= 0x7e: // ESC 7, ESC =, ESC M, ESC c…
		return 2
	}
	return 1
}
