package export

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Timer is what a cron spec becomes in a systemd .timer: an OnCalendar=
// expression, or for "@every D" a period (OnActiveSec= and OnUnitActiveSec=).
type Timer struct {
	OnCalendar string        // "" when Every is set
	Every      time.Duration // 0 when OnCalendar is set
}

// cronSupported is the hint of every conversion error.
const cronSupported = "supported: 5 or 6 fields (optional seconds) of *, numbers, lists a,b, ranges a-b, steps */n and a-b/n, " +
	"month and day names; @yearly @annually @monthly @weekly @daily @midnight @hourly @every D; a CRON_TZ= or TZ= prefix"

// ConvertCron converts a schedule= spec (robfig/cron syntax with optional
// seconds and descriptors) into a systemd timer. A spec systemd cannot
// express — such as one restricting both day of month and day of week,
// which cron ORs and OnCalendar ANDs — is an error naming the spec.
func ConvertCron(spec string) (Timer, error) {
	fail := func(why string) (Timer, error) {
		return Timer{}, fmt.Errorf("schedule %q has no OnCalendar equivalent: %s (%s)", spec, why, cronSupported)
	}
	zone, s, err := splitZone(spec)
	if err != nil {
		return fail(err.Error())
	}
	var cal string
	if rest, ok := strings.CutPrefix(s, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d <= 0 {
			return fail("@every wants a positive duration like 5m")
		}
		if d%time.Millisecond != 0 {
			return fail("@every below millisecond precision")
		}
		return Timer{Every: d}, nil
	} else if strings.HasPrefix(s, "@") {
		cal, err = descriptorCalendar(s)
	} else {
		cal, err = fieldsCalendar(s)
	}
	if err != nil {
		return fail(err.Error())
	}
	if zone != "" {
		cal += " " + zone
	}
	return Timer{OnCalendar: cal}, nil
}

// descriptorCalendar is the OnCalendar= of a descriptor such as @daily.
func descriptorCalendar(s string) (string, error) {
	switch s {
	case "@yearly", "@annually":
		return "*-01-01 00:00:00", nil
	case "@monthly":
		return "*-*-01 00:00:00", nil
	case "@weekly": // cron's week starts on Sunday; systemd's "weekly" is Monday
		return "Sun *-*-* 00:00:00", nil
	case "@daily", "@midnight":
		return "*-*-* 00:00:00", nil
	case "@hourly":
		return "*-*-* *:00:00", nil
	}
	return "", errors.New("unknown descriptor " + s)
}

// cronField is one field of a cron spec: its name, range and names.
type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

// cronFields are the six fields of a spec with seconds, in order.
var cronFields = []cronField{{"second", 0, 59, nil}, {"minute", 0, 59, nil}, {"hour", 0, 23, nil},
	{"day of month", 1, 31, nil}, {"month", 1, 12, monthNames}, {"day of week", 0, 7, dayNames}}

// fieldsCalendar is the OnCalendar= of a spec of 5 fields, or 6 with
// seconds.
func fieldsCalendar(s string) (string, error) {
	fields := strings.Fields(s)
	switch len(fields) {
	case 5:
		fields = append([]string{"0"}, fields...)
	case 6:
	default:
		return "", fmt.Errorf("%d fields", len(fields))
	}
	out := make([]string, 6)
	for i, sp := range cronFields[:5] {
		v, err := convertField(fields[i], sp.min, sp.max, sp.names)
		if err != nil {
			return "", fmt.Errorf("%s %w", sp.name, err)
		}
		out[i] = v
	}
	days, err := weekdays(fields[5])
	if err != nil {
		return "", fmt.Errorf("%s %w", cronFields[5].name, err)
	}
	if days != "" && out[3] != "*" {
		return "", errors.New("day of month and day of week both restricted: cron runs on either, OnCalendar only on both")
	}
	cal := fmt.Sprintf("*-%s-%s %s:%s:%s", out[4], out[3], out[2], out[1], out[0])
	if days != "" {
		cal = days + " " + cal
	}
	return cal, nil
}

// weekdays is a day-of-week field as OnCalendar's list of day names, ""
// for every day.
func weekdays(f string) (string, error) {
	sp := cronFields[5]
	days, err := expandField(f, sp.min, sp.max, sp.names)
	if err != nil || days == nil {
		return "", err
	}
	seen := map[int]bool{}
	for _, d := range days {
		seen[d%7] = true // 7 is Sunday too
	}
	return dayList(seen), nil
}

// splitZone splits a CRON_TZ= or TZ= prefix off a cron spec and checks
// that the zone exists; zone is "" when there is none.
func splitZone(spec string) (zone, rest string, err error) {
	s := strings.TrimSpace(spec)
	if !strings.HasPrefix(s, "CRON_TZ=") && !strings.HasPrefix(s, "TZ=") {
		return "", s, nil
	}
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return "", "", fmt.Errorf("a time zone but no schedule")
	}
	_, zone, _ = strings.Cut(s[:i], "=")
	if strings.EqualFold(zone, "Local") {
		// This machine's zone, which the engine's machine need not share.
		return "", "", fmt.Errorf("time zone Local names no zone elsewhere: name it, e.g. CRON_TZ=Europe/Paris")
	}
	if _, err := time.LoadLocation(zone); err != nil || zone == "" {
		return "", "", fmt.Errorf("unknown time zone %q", zone)
	}
	return zone, strings.TrimSpace(s[i:]), nil
}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

var systemdDays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// dayList names the days of set in systemd's order, Monday first.
func dayList(set map[int]bool) string {
	var names []string
	for _, d := range []int{1, 2, 3, 4, 5, 6, 0} {
		if set[d] {
			names = append(names, systemdDays[d])
		}
	}
	return strings.Join(names, ",")
}

// convertField turns one numeric cron field into its OnCalendar component:
// "*" stays, "*/n" becomes "min/n", ranges become "a..b", stepped ranges
// are spelled out.
func convertField(f string, lo, hi int, names map[string]int) (string, error) {
	var parts []string
	for _, item := range strings.Split(f, ",") {
		rng, n, hasStep, err := cutStep(item)
		if err != nil {
			return "", err
		}
		switch {
		case rng == "*" || rng == "?":
			if !hasStep || n == 1 {
				if len(strings.Split(f, ",")) > 1 {
					return "*", nil
				}
				parts = append(parts, "*")
			} else {
				parts = append(parts, fmt.Sprintf("%02d/%d", lo, n))
			}
		default:
			a, b, isRange := strings.Cut(rng, "-")
			x, err := value(a, lo, hi, names)
			if err != nil {
				return "", err
			}
			y := x
			if isRange {
				if y, err = value(b, lo, hi, names); err != nil {
					return "", err
				}
				if y < x {
					return "", fmt.Errorf("range %q runs backwards", rng)
				}
			}
			switch {
			case hasStep && !isRange: // "a/n" in robfig means a through max by n
				parts = append(parts, fmt.Sprintf("%02d/%d", x, n))
			case hasStep && n > 1:
				for v := x; v <= y; v += n {
					parts = append(parts, fmt.Sprintf("%02d", v))
				}
			case isRange && y > x:
				parts = append(parts, fmt.Sprintf("%02d..%02d", x, y))
			default:
				parts = append(parts, fmt.Sprintf("%02d", x))
			}
		}
	}
	return strings.Join(parts, ","), nil
}

// cutStep splits a cron list item "range/step" into the range and the
// step, 1 when there is none.
func cutStep(item string) (rng string, step int, hasStep bool, err error) {
	rng, s, hasStep := strings.Cut(item, "/")
	if !hasStep {
		return rng, 1, false, nil
	}
	if step, err = strconv.Atoi(s); err != nil || step <= 0 {
		return "", 0, false, fmt.Errorf("step %q is not a positive number", s)
	}
	return rng, step, true, nil
}

// expandField returns every value a cron field matches, or nil for "*".
func expandField(f string, lo, hi int, names map[string]int) ([]int, error) {
	if f == "*" || f == "?" {
		return nil, nil
	}
	set := map[int]bool{}
	for _, item := range strings.Split(f, ",") {
		rng, n, hasStep, err := cutStep(item)
		if err != nil {
			return nil, err
		}
		x, y := lo, hi
		if rng != "*" && rng != "?" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if x, err = value(a, lo, hi, names); err != nil {
				return nil, err
			}
			y = x
			if isRange {
				if y, err = value(b, lo, hi, names); err != nil {
					return nil, err
				}
			} else if hasStep {
				y = hi
			}
			if y < x {
				return nil, fmt.Errorf("range %q runs backwards", rng)
			}
		}
		for v := x; v <= y; v += n {
			set[v] = true
		}
	}
	out := make([]int, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Ints(out)
	return out, nil
}

// value parses a number or name within lo..hi.
func value(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number or name", s)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("value %d is outside %d-%d", v, lo, hi)
	}
	return v, nil
}
