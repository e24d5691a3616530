// Package nab owns Outpost's implementation of the Numenta Anomaly Benchmark (NAB)
// scoring rules, used as a test tool to measure detectors on the public NAB corpus.
//
// The rules, as NAB v1 applies them and as the published per-file results pin down:
//
//   - Each labelled anomaly has a window of rows [start, end] (labels/combined_windows.json).
//   - The first rows of every file are probationary and never scored: their number is
//     min(floor(0.15·n), 0.15·5000), i.e. 15% of the file capped at 750 rows.
//   - A row is a detection when its anomaly score is ≥ the threshold.
//   - A window earns only its earliest detection: tpWeight · σ(p) / σ(−1) where
//     p = −(end − i + 1)/width ∈ [−1, 0) is the detection's position in the window and
//     σ(x) = 2/(1+e^{5x}) − 1 is the scaled sigmoid. A window without a detection costs
//     −fnWeight.
//   - A detection outside every window costs fpWeight·σ(|endPrev − i|/(widthPrev − 1))
//     when a window precedes it (the penalty grows from 0 to −fpWeight with the
//     distance past the window's end), and −fpWeight when none does.
//   - A file's raw score is the sum of these; a detector's corpus score is the sum over
//     files, at one threshold per profile chosen to maximise that sum.
//   - Normalised score = 100·(raw − null)/(perfect − null), where the null detector
//     detects nothing (raw = −fnWeight·windows) and the perfect one detects each
//     window at its first row (raw = tpWeight·windows).
package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// TimeLayout is the layout of timestamps in the NAB data files.
const TimeLayout = "2006-01-02 15:04:05"

// Profile is one NAB application profile: the weights of its cost matrix.
type Profile struct {
	Name string
	TP   float64 // weight of a detected window (1 in every NAB profile)
	FP   float64 // weight of a false positive
	FN   float64 // weight of a missed window
	TN   float64 // unused by the score, kept as published
}

// ProfileNames lists NAB's three profiles in the order of its scoreboard.
var ProfileNames = []string{"standard", "reward_low_FP_rate", "reward_low_FN_rate"}

// File is one data file of the corpus with its labels.
type File struct {
	Name       string      // category/file.csv, as in the labels
	Timestamps []time.Time // one per row
	Raw        []string    // the timestamps as written in the file
	Values     []float64   // one per row
	Windows    [][2]int    // row indices [start, end], inclusive, in time order
}

// Probation returns the number of leading rows that NAB never scores.
func (f *File) Probation() int { return ProbationaryLength(len(f.Timestamps)) }

// ProbationaryLength is min(floor(0.15·n), 750), NAB's probationary period.
func ProbationaryLength(n int) int {
	p := int(math.Floor(0.15 * float64(n)))
	if p > 750 {
		p = 750
	}
	return p
}

// ScaledSigmoid is NAB's reward curve 2/(1+e^{5x}) − 1, clipped to −1 beyond x > 3.
func ScaledSigmoid(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// Corpus is the NAB data set: its files, the profiles and the published thresholds.
type Corpus struct {
	Dir      string
	Files    []*File // sorted by name
	Profiles []Profile
}

// Windows returns the number of labelled windows in the corpus.
func (c *Corpus) Windows() int {
	n := 0
	for _, f := range c.Files {
		n += len(f.Windows)
	}
	return n
}

// Load reads the NAB corpus rooted at dir (holding data/, labels/ and config/).
func Load(dir string) (*Corpus, error) {
	c := &Corpus{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read windows: %w", err)
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(b, &windows); err != nil {
		return nil, fmt.Errorf("cannot parse windows: %w", err)
	}
	names := make([]string, 0, len(windows))
	for name := range windows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := readDataFile(filepath.Join(dir, "data", filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		f.Name = name
		for _, w := range windows[name] {
			var idx [2]int
			for k := 0; k < 2; k++ {
				t, err := parseTime(w[k])
				if err != nil {
					return nil, fmt.Errorf("cannot parse window of %s: %w", name, err)
				}
				i := sort.Search(len(f.Timestamps), func(i int) bool { return !f.Timestamps[i].Before(t) })
				if i == len(f.Timestamps) || !f.Timestamps[i].Equal(t) {
					return nil, fmt.Errorf("window edge %s of %s is not a row", w[k], name)
				}
				idx[k] = i
			}
			f.Windows = append(f.Windows, idx)
		}
		c.Files = append(c.Files, f)
	}
	if c.Profiles, err = readProfiles(filepath.Join(dir, "config", "profiles.json")); err != nil {
		return nil, err
	}
	return c, nil
}

func parseTime(s string) (time.Time, error) {
	if len(s) > len(TimeLayout) && s[len(TimeLayout)] == '.' {
		return time.Parse(TimeLayout+".999999", s)
	}
	return time.Parse(TimeLayout, s)
}

func readDataFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open data file: %w", err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.ReuseRecord = true
	f := &File{}
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		if line == 1 || len(rec) < 2 {
			continue
		}
		t, err := parseTime(rec[0])
		if err != nil {
			return nil, fmt.Errorf("cannot parse %s line %d: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("cannot parse %s line %d: %w", path, line, err)
		}
		f.Timestamps = append(f.Timestamps, t)
		f.Raw = append(f.Raw, rec[0])
		f.Values = append(f.Values, v)
	}
	return f, nil
}

func readProfiles(path string) ([]Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read profiles: %w", err)
	}
	var raw map[string]struct {
		CostMatrix struct {
			TP float64 `json:"tpWeight"`
			FN float64 `json:"fnWeight"`
			FP float64 `json:"fpWeight"`
			TN float64 `json:"tnWeight"`
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("cannot parse profiles: %w", err)
	}
	var ps []Profile
	for _, name := range ProfileNames {
		m, ok := raw[name]
		if !ok {
			return nil, fmt.Errorf("profile %q missing from %s", name, path)
		}
		cm := m.CostMatrix
		ps = append(ps, Profile{Name: name, TP: cm.TP, FP: cm.FP, FN: cm.FN, TN: cm.TN})
	}
	return ps, nil
}

// Profile returns the named profile.
func (c *Corpus) Profile(name string) (Profile, error) {
	for _, p := range c.Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("no profile %q", name)
}

// FileScore is the score of one file at one threshold, as NAB's per-file results.
type FileScore struct {
	Score          float64
	TP, TN, FP, FN int // rows after the probationary period
	Total          int // all rows
	// Rows holds NAB's per-row S(t): a window's reward (or −fnWeight) at the
	// window's first row and each false positive's cost at its row.
	Rows []float64
}

// rowWeight returns, for row i, the reward the row would earn if it were the
// window's first detection (inWindow true) or the cost it carries as a false
// positive. prev is the index of the window last ended before i (−1 if none).
func (f *File) rowWeight(i int, p Profile) (w float64, win int) {
	maxTP := ScaledSigmoid(-1)
	prev := -1
	for k, wd := range f.Windows {
		if i >= wd[0] && i <= wd[1] {
			width := float64(wd[1] - wd[0] + 1)
			pos := -float64(wd[1]-i+1) / width
			return ScaledSigmoid(pos) * p.TP / maxTP, k
		}
		if wd[1] < i {
			prev = k
		}
	}
	if prev < 0 {
		return -p.FP, -1
	}
	wd := f.Windows[prev]
	pos := math.Abs(float64(wd[1]-i)) / float64(wd[1]-wd[0])
	return ScaledSigmoid(pos) * p.FP, -1
}

// Score scores one file's anomaly scores (one per row) at threshold under profile p.
func (f *File) Score(scores []float64, threshold float64, p Profile) (FileScore, error) {
	n := len(f.Timestamps)
	if len(scores) != n {
		return FileScore{}, fmt.Errorf("cannot score %s: %d scores for %d rows", f.Name, len(scores), n)
	}
	fs := FileScore{Total: n, Rows: make([]float64, n)}
	prob := f.Probation()
	detected := make([]bool, len(f.Windows))
	for _, wd := range f.Windows {
		fs.Rows[wd[0]] = -p.FN
	}
	for i := prob; i < n; i++ {
		hit := scores[i] >= threshold
		w, win := f.rowWeight(i, p)
		switch {
		case win >= 0 && hit:
			fs.TP++
			if !detected[win] {
				detected[win] = true
				fs.Rows[f.Windows[win][0]] = w
			}
		case win >= 0:
			fs.FN++
		case hit:
			fs.FP++
			fs.Rows[i] = w
		default:
			fs.TN++
		}
	}
	for _, wd := range f.Windows {
		fs.Score += fs.Rows[wd[0]]
	}
	for i := prob; i < n; i++ {
		if !f.inWindow(i) {
			fs.Score += fs.Rows[i]
		}
	}
	return fs, nil
}

func (f *File) inWindow(i int) bool {
	for _, wd := range f.Windows {
		if i >= wd[0] && i <= wd[1] {
			return true
		}
	}
	return false
}

// NullScore is the raw corpus score of the detector that never fires.
func (c *Corpus) NullScore(p Profile) float64 { return -p.FN * float64(c.Windows()) }

// PerfectScore is the raw corpus score of a detector that fires at every window's
// first row and nowhere else.
func (c *Corpus) PerfectScore(p Profile) float64 { return p.TP * float64(c.Windows()) }

// Normalize maps a raw corpus score to NAB's scale: 0 for the null detector, 100
// for the perfect one.
func (c *Corpus) Normalize(raw float64, p Profile) float64 {
	null, perfect := c.NullScore(p), c.PerfectScore(p)
	return 100 * (raw - null) / (perfect - null)
}

// ErrNoScores reports an empty input to Optimize.
var ErrNoScores = errors.New("no anomaly scores")

// Optimize finds the threshold that maximises the corpus raw score under p, given
// every file's anomaly scores (keyed by File.Name, one per row). It is exact: it
// sweeps every distinct score, as NAB's sweeper does, in O(rows·log rows).
func (c *Corpus) Optimize(scores map[string][]float64, p Profile) (threshold, raw float64, err error) {
	type point struct {
		score  float64
		weight float64
		window int // global window index, −1 for a false positive
	}
	var pts []point
	nwin := 0
	for _, f := range c.Files {
		s, ok := scores[f.Name]
		if !ok {
			return 0, 0, fmt.Errorf("cannot optimise: no scores for %s", f.Name)
		}
		if len(s) != len(f.Timestamps) {
			return 0, 0, fmt.Errorf("cannot optimise: %d scores for %d rows of %s", len(s), len(f.Timestamps), f.Name)
		}
		for i := f.Probation(); i < len(s); i++ {
			w, win := f.rowWeight(i, p)
			if win >= 0 {
				win += nwin
			}
			pts = append(pts, point{s[i], w, win})
		}
		nwin += len(f.Windows)
	}
	if len(pts) == 0 {
		return 0, 0, ErrNoScores
	}
	sort.Slice(pts, func(a, b int) bool { return pts[a].score > pts[b].score })
	best := make([]float64, nwin)
	for k := range best {
		best[k] = -p.FN
	}
	cur := -p.FN * float64(nwin)
	threshold, raw = math.Inf(1), cur
	for i := 0; i < len(pts); {
		j := i
		for ; j < len(pts) && pts[j].score == pts[i].score; j++ {
			pt := pts[j]
			if pt.window < 0 {
				cur += pt.weight
			} else if pt.weight > best[pt.window] {
				cur += pt.weight - best[pt.window]
				best[pt.window] = pt.weight
			}
		}
		if cur > raw {
			threshold, raw = pts[i].score, cur
		}
		i = j
	}
	return threshold, raw, nil
}

// ScoreCorpus returns the raw corpus score at threshold under p.
func (c *Corpus) ScoreCorpus(scores map[string][]float64, threshold float64, p Profile) (float64, error) {
	total := 0.0
	for _, f := range c.Files {
		fs, err := f.Score(scores[f.Name], threshold, p)
		if err != nil {
			return 0, err
		}
		total += fs.Score
	}
	return total, nil
}
