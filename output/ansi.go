package output

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// What of a child's line reaches the merged output, the log files and Tap.
// The output is one line per line of the child, behind a prefix, interleaved
// with other instances' lines: nothing may move the cursor off the line, make
// the terminal answer, or change it for good. So the filter keeps an
// allow-list, and everything not on it is dropped:
//
//   - Text: printable ASCII (0x20–0x7E), TAB, and valid UTF-8 except
//     U+0080–U+009F, the C1 controls. A byte that is not part of valid UTF-8
//     is kept as it is when it is 0xA0–0xFF (Latin-1 and other 8-bit text
//     passes as before) and is a raw C1 control when it is 0x80–0x9F.
//   - Every other C0 control (BS, BEL, VT, FF, …), DEL and every C1 control,
//     raw or UTF-8 encoded, is dropped.
//   - "\r": a carriage return followed by more text on the line drops what
//     came before it on the line, as a terminal shows only the last state of a
//     progress bar ("50%\r100%" is "100%"); one with no text after it is
//     dropped, so "\r\n" ends a line with no "\r" left and "done\r" is "done".
//     (A terminal would show the old text where the new one is shorter; a log
//     line does not keep half of an overwritten one.)
//   - Escape sequences are removed with their parameters, introduced by ESC
//     or by a C1 control (raw, or UTF-8 encoded) in its place:
//     CSI (ESC [ or 0x9B) parameters 0x30–0x3F, intermediates 0x20–0x2F,
//     final 0x40–0x7E; OSC (ESC ] or 0x9D) … ended by BEL or ST; DCS, SOS,
//     PM, APC (ESC P X ^ _, or 0x90 0x98 0x9E 0x9F) … ended by ST, where ST
//     is ESC \ or 0x9C; nF (ESC, intermediates 0x20–0x2F, final 0x30–0x7E:
//     ESC ( B, ESC # 8); and ESC with any other byte 0x30–0x7E (ESC c, ESC 7).
//     A sequence interrupted by a byte it cannot contain ends there and the
//     byte is filtered as text; CAN and SUB end any sequence; an ESC inside a
//     string that does not start ST ends the string and begins a sequence; a
//     lone ESC is dropped.
//   - With Color (a terminal), SGR, CSI with only digits, ':' and ';' as
//     parameters and final 'm', is kept, in its 7-bit form: colours and text
//     attributes. Nothing else is: not the queries a terminal answers into
//     mhrun's own input (DSR ESC[6n, DA ESC[c, DECRQSS, XTVERSION, OSC 10;?,
//     window reports), not resets (RIS ESC c, DECSTR ESC[!p), titles (OSC 0,
//     1, 2), the clipboard (OSC 52), modes (alternate screen, mouse reporting,
//     cursor hiding, keyboard protocols such as ESC[>4;2m), charsets, nor
//     cursor movement and erasing, which would cross the prefix or other
//     instances' lines. An allow-list, not a deny-list: what a terminal may do
//     with a sequence grows with every terminal, what a prefixed line needs is
//     known. A line whose last SGR kept sets an attribute ends with ESC[0m,
//     so its colours never reach the next prefix. With a "\r" that drops
//     text, the SGRs before it are kept.
//   - A sequence never spans lines: one still open at the end of a line is
//     dropped to its end, and the next line starts outside it. The exception
//     is a line ended only because the child paused (the partial line the
//     output writes after Pause or Hold): the rest of its sequence at the
//     start of the stream's next line is dropped too. Sequences cut between
//     two writes are whole again once the line is, as filtering runs on
//     whole lines.
//   - `mhrun connect` is not filtered: it is the instance's own terminal.
//
// The plain output is the colour output without its SGRs, so Tap and the log
// files see the same text in both modes.

const (
	esc = 0x1b
	bel = 0x07
	can = 0x18
	sub = 0x1a
)

// escState is where a sequence left open at the end of a line stands.
type escState uint8

const (
	ground   escState = iota // not in a sequence
	inEsc                    // after ESC
	inCSI                    // CSI parameters and intermediates
	inNF                     // ESC and intermediates
	inOSC                    // an OSC string: ends with BEL or ST
	inStr                    // a DCS, SOS, PM or APC string: ends with ST
	inOSCEsc                 // ESC inside an OSC string
	inStrEsc                 // ESC inside another string
)

// StripANSI appends line to dst filtered as plain text (the rules at the top
// of this file, without colour) and returns the extended slice. A line that
// needs no change takes a fast path: when dst is nil, line itself is
// returned, without copying.
func StripANSI(dst, line []byte) []byte {
	dst, _ = filterLine(dst, line, false, ground)
	return dst
}

// filterLine appends line, which holds no "\n", to dst with the rules at the
// top of this file applied; keepSGR keeps the SGR sequences (colour). st is
// the state a cut line of the same stream left open, ground otherwise; the
// returned state is the one open at the end of line. When line needs no
// change and dst is nil, line itself is returned.
func filterLine(dst, line []byte, keepSGR bool, st escState) ([]byte, escState) {
	start := len(dst) // where the line begins in dst
	i := 0
	if st != ground {
		if i, st = skipSeq(line, 0, st); st != ground {
			return dst, st
		}
	}
	from := i        // the text not yet copied begins here
	changed := i > 0 // dst is being built: line itself is not the result
	cr := false      // a "\r" is waiting for text to follow it
	open := false    // the last SGR kept set an attribute: reset at the end
	for {
		i += textRun(line[i:])
		if i >= len(line) {
			break
		}
		// A control: C0, DEL or C1.
		c := line[i]
		n := 1      // its length
		var c1 byte // a C1 control, raw or encoded; 0 for C0 and DEL
		switch {
		case c == '\t':
			i++
			continue
		case c == 0xc2: // U+0080–U+009F
			c1, n = line[i+1], 2
		case c >= 0x80: // not UTF-8: a raw C1 control
			c1 = c
		}
		// Not text: copy the text before it, and handle it.
		changed = true
		if cr && i > from {
			dst, cr = dropBeforeCR(dst, start, keepSGR), false
		}
		dst = append(dst, line[from:i]...)
		csi := -1 // where the parameters of a CSI begin
		switch {
		case c == '\r':
			cr = true
			i++
		case c == esc && i+1 < len(line) && line[i+1] == '[':
			csi = i + 2
		case c == esc:
			i, st = skipSeq(line, i+1, inEsc)
		case c1 == 0x9b: // CSI
			csi = i + n
		case c1 == 0x9d: // OSC
			i, st = skipSeq(line, i+n, inOSC)
		case c1 == 0x90 || c1 == 0x98 || c1 == 0x9e || c1 == 0x9f: // DCS, SOS, PM, APC
			i, st = skipSeq(line, i+n, inStr)
		default: // any other control
			i += n
		}
		if csi >= 0 {
			i, st = skipSeq(line, csi, inCSI)
			if keepSGR && st == ground && isSGR(line[csi:i]) {
				dst = append(dst, esc, '[')
				dst = append(dst, line[csi:i]...)
				open = !isReset(line[csi : i-1])
			}
		}
		from = i
		if st != ground {
			break
		}
	}
	if !changed {
		if dst == nil {
			return line, ground
		}
		return append(dst, line...), ground
	}
	if cr && len(line) > from {
		dst = dropBeforeCR(dst, start, keepSGR)
	}
	dst = append(dst, line[from:]...)
	if open {
		dst = append(dst, "\x1b[0m"...)
	}
	return dst, st
}

// isSGR reports whether seq, the parameters, intermediates and final byte of
// a whole CSI, is SGR: parameters of digits, ':' and ';', and final 'm'. A
// private marker (<, =, >, ?) makes it another sequence (ESC[>4;2m sets
// the keyboard's modifyOtherKeys).
func isSGR(seq []byte) bool {
	n := len(seq)
	if n == 0 || seq[n-1] != 'm' {
		return false
	}
	for _, c := range seq[:n-1] {
		if c < '0' || c > ';' {
			return false
		}
	}
	return true
}

// isReset reports whether the parameters of an SGR only reset: ESC[m, ESC[0m.
func isReset(params []byte) bool {
	for _, c := range params {
		if c != '0' && c != ';' {
			return false
		}
	}
	return true
}

// dropBeforeCR removes the text of the line begun at start in dst, keeping
// the SGRs with keepSGR: dst[start:] holds only text and the SGRs kept.
func dropBeforeCR(dst []byte, start int, keepSGR bool) []byte {
	if !keepSGR {
		return dst[:start]
	}
	w, r := start, start
	for {
		k := bytes.IndexByte(dst[r:], esc)
		if k < 0 {
			return dst[:w]
		}
		r += k
		e := r + bytes.IndexByte(dst[r:], 'm') + 1
		w += copy(dst[w:], dst[r:e])
		r = e
	}
}

// removeSGR appends b, the output of filterLine with keepSGR, to dst without
// its SGRs: the line as plain text. When b has none and dst is nil, b itself
// is returned.
func removeSGR(dst, b []byte) []byte {
	k := bytes.IndexByte(b, esc)
	if k < 0 {
		if dst == nil {
			return b
		}
		return append(dst, b...)
	}
	for k >= 0 {
		dst = append(dst, b[:k]...)
		b = b[k+bytes.IndexByte(b[k:], 'm')+1:]
		k = bytes.IndexByte(b, esc)
	}
	return append(dst, b...)
}

// skipSeq returns where the sequence that is in state st at b[i] ends, and
// ground; or len(b) and the state still open at the end of b.
func skipSeq(b []byte, i int, st escState) (int, escState) {
	for ; i < len(b); i++ {
		c := b[i]
		if c == can || c == sub {
			return i, ground // dropped as controls
		}
		switch st {
		case inEsc:
			switch {
			case c == '[':
				st = inCSI
			case c == ']':
				st = inOSC
			case c == 'P' || c == 'X' || c == '^' || c == '_':
				st = inStr
			case c >= 0x20 && c <= 0x2f:
				st = inNF
			case c >= 0x30 && c <= 0x7e:
				return i + 1, ground
			default: // a lone ESC
				return i, ground
			}
		case inCSI, inNF:
			switch {
			case c >= 0x20 && c <= 0x2f:
			case c >= 0x30 && c <= 0x3f && st == inCSI:
			case c >= 0x30 && c <= 0x7e:
				return i + 1, ground
			default: // interrupted
				return i, ground
			}
		case inOSC, inStr:
			switch {
			case c == bel && st == inOSC:
				return i + 1, ground
			case c == esc:
				st += inOSCEsc - inOSC
			case c >= 0x80:
				// ST is 0x9C raw or U+009C; 0x9C inside other UTF-8 is text.
				r, size := utf8.DecodeRune(b[i:])
				if r == 0x9c || size == 1 && c == 0x9c {
					return i + size, ground
				}
				i += size - 1
			}
		case inOSCEsc, inStrEsc:
			if c == '\\' {
				return i + 1, ground
			}
			// The ESC ends the string and begins a sequence of its own.
			if i > 0 {
				return i - 1, ground
			}
			st = inEsc // the ESC ended a cut line: skip its sequence
			i--
		}
	}
	return i, st
}

// textRun returns the length of the text at the start of b (the first rule
// at the top of this file), TAB aside: where the first C0 control, DEL or C1
// control is, or len(b). Printable ASCII is checked eight bytes at a time,
// and bytes from 0x80 on as a whole with utf8.Valid: a rune at a time only
// when that fails.
func textRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	// Printable ASCII, the common case. Where no byte has its high bit set,
	// none carries into the next: x+0x60 has its high bit clear where the
	// byte is below 0x20, x+1 has it set where the byte is 0x7F.
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x|(x+ones)|^(x+0x60*ones))&highs != 0 {
			break
		}
	}
	// Any text: the same with the high bits cleared, for bytes from 0x80
	// on do not count here.
	var high uint64 // the bytes seen, OR-ed: its high bits say if any was 0x80 or more
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		x7 := x &^ highs
		if (^(x7+0x60*ones)|(x7+ones))&^x&highs != 0 {
			break
		}
		high |= x
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c < 0x20 || c == 0x7f {
			break
		}
		high |= uint64(c)
	}
	if high&highs == 0 {
		return i
	}
	// b[:n] holds no C0 control and no DEL; it may hold C1 controls.
	n := i
	if utf8.Valid(b[:n]) && !hasEncodedC1(b[:n]) {
		return n
	}
	for i = 0; i < n; {
		c := b[i]
		if c < 0x80 {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:n])
		switch {
		case size > 1 && r <= 0x9f: // U+0080–U+009F
			return i
		case size > 1:
			i += size
		case c <= 0x9f: // not UTF-8: a raw C1 control
			return i
		default: // not UTF-8: 8-bit text
			i++
		}
	}
	return n
}

// hasEncodedC1 reports whether b, valid UTF-8, holds one of U+0080–U+009F:
// 0xC2 followed by 0x80–0x9F.
func hasEncodedC1(b []byte) bool {
	for {
		j := bytes.IndexByte(b, 0xc2)
		if j < 0 || j+1 >= len(b) {
			return false
		}
		if b[j+1] <= 0x9f {
			return true
		}
		b = b[j+2:]
	}
}
