package detect

import (
	"testing"
	"time"
)

func TestParseBacktestTime(t *testing.T) {
	now := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"1.5d", now.Add(-36 * time.Hour), true},
		{"36h", now.Add(-36 * time.Hour), true},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"1772323200", time.Unix(1772323200, 0).UTC(), true},
		{"-7d", time.Time{}, false},
		{"soon", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := parseTime(tc.in, now)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
