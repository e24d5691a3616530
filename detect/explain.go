package detect

import (
	"fmt"
	"math"
	"strconv"
)

// Explain says in words what the detector saw, e.g. "value 2.4, expected 0.3–0.6
// for Tuesday 14:00, anomalous since 14:02". unit, if not empty, follows each number.
func (r Result) Explain(unit string) string {
	num := func(v float64) string {
		s := strconv.FormatFloat(v, 'g', 3, 64)
		if unit != "" {
			s += " " + unit
		}
		return s
	}
	what := "value"
	switch {
	case r.Skipped && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)):
		return fmt.Sprintf("value %v ignored", r.Value)
	case r.Skipped:
		return "sample ignored (out of order, first of a counter, or a counter reset)"
	}
	if math.IsNaN(r.Expected) {
		return fmt.Sprintf("%s %s, still learning this series", what, num(r.Value))
	}
	when := r.Time.Format("Monday 15:04")
	if r.Since.IsZero() {
		return fmt.Sprintf("%s %s, expected %s–%s for %s", what, num(r.Value), num(r.Lower), num(r.Upper), when)
	}
	since := r.Since.Format("15:04")
	if r.Time.Sub(r.Since) >= 24*60*60*1e9 || r.Since.YearDay() != r.Time.YearDay() {
		since = r.Since.Format("Jan 2 15:04")
	}
	return fmt.Sprintf("%s %s, expected %s–%s for %s, anomalous since %s (score %.2f)",
		what, num(r.Value), num(r.Lower), num(r.Upper), when, since, r.Score)
}
