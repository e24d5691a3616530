package nab

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// corpusDir locates the NAB data set relative to this package.
const corpusDir = "../../../shared/datasets/nab"

// LoadForTest loads the corpus or skips the test when it is absent (fails instead
// when OUTPOST_E2E=1).
func loadForTest(t testing.TB) *Corpus {
	t.Helper()
	if _, err := os.Stat(filepath.Join(corpusDir, "labels")); err != nil {
		if os.Getenv("OUTPOST_E2E") == "1" {
			t.Fatalf("NAB corpus missing at %s: %v", corpusDir, err)
		}
		t.Skipf("NAB corpus missing at %s (set OUTPOST_E2E=1 to fail instead)", corpusDir)
	}
	c, err := Load(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type published struct {
	threshold, score float64
	tp, tn, fp, fn   int
	total            int
}

// readPublished reads results/per_file_scores_visible.csv: detector → profile → file.
func readPublished(t *testing.T, c *Corpus) map[string]map[string]map[string]published {
	fh, err := os.Open(filepath.Join(c.Dir, "results", "per_file_scores_visible.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]published{}
	for _, r := range recs[1:] {
		f := func(i int) float64 {
			v, err := strconv.ParseFloat(r[i], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		d, p := r[0], r[1]
		if out[d] == nil {
			out[d] = map[string]map[string]published{}
		}
		if out[d][p] == nil {
			out[d][p] = map[string]published{}
		}
		out[d][p][r[2]] = published{f(3), f(4), int(f(5)), int(f(6)), int(f(7)), int(f(8)), int(f(9))}
	}
	return out
}

func readScoreboard(t *testing.T, c *Corpus) map[string]map[string]float64 {
	b, err := os.ReadFile(filepath.Join(c.Dir, "results", "derived_scoreboard_full_and_visible.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sb struct {
		Visible struct {
			Files   int
			Windows int
			Scores  map[string]map[string]float64
		}
	}
	if err := json.Unmarshal(b, &sb); err != nil {
		t.Fatal(err)
	}
	if sb.Visible.Files != len(c.Files) || sb.Visible.Windows != c.Windows() {
		t.Fatalf("scoreboard covers %d files / %d windows, corpus has %d / %d",
			sb.Visible.Files, sb.Visible.Windows, len(c.Files), c.Windows())
	}
	return sb.Visible.Scores
}

// TestReproduceNumenta feeds the published per-row output of the numenta detector
// through the scorer at numenta's published thresholds and checks every per-file
// raw score, every confusion count, every per-row S(t) and the normalised scores.
func TestReproduceNumenta(t *testing.T) {
	c := loadForTest(t)
	if len(c.Files) != 35 || c.Windows() != 55 {
		t.Fatalf("corpus has %d files and %d windows, want 35 and 55", len(c.Files), c.Windows())
	}
	pub := readPublished(t, c)["numenta"]
	board := readScoreboard(t, c)["numenta"]
	thr, err := c.Thresholds()
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]*Result{}
	for _, f := range c.Files {
		r, err := ReadResult(c.ResultPath("numenta", f.Name))
		if err != nil {
			t.Fatal(err)
		}
		results[f.Name] = r
	}
	for _, p := range c.Profiles {
		th := thr["numenta"][p.Name]
		raw := 0.0
		for _, f := range c.Files {
			r := results[f.Name]
			got, err := f.Score(r.Scores, th, p)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := pub[p.Name][f.Name]
			if !ok {
				t.Fatalf("no published score for %s %s", p.Name, f.Name)
			}
			if math.Abs(got.Score-want.score) > 1e-9 {
				t.Errorf("%s %s: raw score %.12f, published %.12f", p.Name, f.Name, got.Score, want.score)
			}
			if got.TP != want.tp || got.TN != want.tn || got.FP != want.fp || got.FN != want.fn || got.Total != want.total {
				t.Errorf("%s %s: tp/tn/fp/fn/total %d/%d/%d/%d/%d, published %d/%d/%d/%d/%d", p.Name, f.Name,
					got.TP, got.TN, got.FP, got.FN, got.Total, want.tp, want.tn, want.fp, want.fn, want.total)
			}
			for i, s := range r.S[p.Name] {
				if math.Abs(got.Rows[i]-s) > 1e-9 {
					t.Errorf("%s %s row %d: S(t) %.12f, published %.12f", p.Name, f.Name, i, got.Rows[i], s)
					break
				}
			}
			raw += got.Score
		}
		norm := c.Normalize(raw, p)
		if want := board[p.Name]; math.Abs(norm-want) > 0.005 {
			t.Errorf("%s: normalised %.4f, published %.2f", p.Name, norm, want)
		}
		t.Logf("numenta %-18s raw %8.4f normalised %.2f (published %.2f)", p.Name, raw, norm, board[p.Name])
	}
}

// TestNormalizeScoreboard checks the normalisation against every published
// detector: the sum of its per-file raw scores, normalised, is its visible score.
func TestNormalizeScoreboard(t *testing.T) {
	c := loadForTest(t)
	pub := readPublished(t, c)
	board := readScoreboard(t, c)
	n := 0
	for det, byProfile := range pub {
		for _, p := range c.Profiles {
			files := byProfile[p.Name]
			if len(files) != len(c.Files) {
				t.Fatalf("%s %s: %d published files", det, p.Name, len(files))
			}
			raw := 0.0
			for _, s := range files {
				raw += s.score
			}
			if got, want := c.Normalize(raw, p), board[det][p.Name]; math.Abs(got-want) > 0.005 {
				t.Errorf("%s %s: normalised %.4f, published %.2f", det, p.Name, got, want)
			}
			n++
		}
	}
	if n < 40 {
		t.Fatalf("checked only %d detector profiles", n)
	}
}

// TestOptimizeExact checks the threshold sweep against scoring the corpus at every
// candidate threshold, on the numenta outputs.
func TestOptimizeExact(t *testing.T) {
	c := loadForTest(t)
	scores := map[string][]float64{}
	for _, f := range c.Files {
		r, err := ReadResult(c.ResultPath("numenta", f.Name))
		if err != nil {
			t.Fatal(err)
		}
		scores[f.Name] = r.Scores
	}
	for _, p := range c.Profiles {
		th, raw, err := c.Optimize(scores, p)
		if err != nil {
			t.Fatal(err)
		}
		at, err := c.ScoreCorpus(scores, th, p)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(at-raw) > 1e-9 {
			t.Errorf("%s: sweep says %.9f at %.9f, scoring there gives %.9f", p.Name, raw, th, at)
		}
		// No candidate threshold may do better.
		for _, cand := range []float64{0.3, 0.4, 0.5, 0.5421876907348634, 0.55, 0.5751955032348636, 0.6, 0.7, 0.8, 0.9, 1} {
			s, err := c.ScoreCorpus(scores, cand, p)
			if err != nil {
				t.Fatal(err)
			}
			if s > raw+1e-9 {
				t.Errorf("%s: threshold %v scores %.6f, above the optimum %.6f", p.Name, cand, s, raw)
			}
		}
		t.Logf("numenta %-18s optimum on the 35 files: threshold %.6f raw %.4f normalised %.2f",
			p.Name, th, raw, c.Normalize(raw, p))
	}
}
