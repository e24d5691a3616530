package nab

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Result is one detector's per-row output for one file, in NAB's results format
// (timestamp,value,anomaly_score[,…,S(t)_<profile>…]).
type Result struct {
	Scores []float64            // anomaly_score per row
	S      map[string][]float64 // S(t)_<profile> per row, when the file has them
}

// ReadResult reads a NAB results file.
func ReadResult(path string) (*Result, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open result: %w", err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot read header of %s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	sc, ok := col["anomaly_score"]
	if !ok {
		return nil, fmt.Errorf("%s has no anomaly_score column", path)
	}
	res := &Result{S: map[string][]float64{}}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		v, err := strconv.ParseFloat(rec[sc], 64)
		if err != nil {
			return nil, fmt.Errorf("cannot parse %s line %d: %w", path, line, err)
		}
		res.Scores = append(res.Scores, v)
		for _, p := range ProfileNames {
			if i, ok := col["S(t)_"+p]; ok {
				v, err := strconv.ParseFloat(rec[i], 64)
				if err != nil {
					return nil, fmt.Errorf("cannot parse %s line %d: %w", path, line, err)
				}
				res.S[p] = append(res.S[p], v)
			}
		}
	}
	return res, nil
}

// ResultPath is where NAB keeps a detector's output for a data file.
func (c *Corpus) ResultPath(detector, file string) string {
	dir, base := filepath.Split(filepath.FromSlash(file))
	return filepath.Join(c.Dir, "results", detector, dir, detector+"_"+base)
}

// Thresholds reads config/thresholds.json: detector → profile → threshold.
func (c *Corpus) Thresholds() (map[string]map[string]float64, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "config", "thresholds.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read thresholds: %w", err)
	}
	var raw map[string]map[string]struct {
		Threshold float64 `json:"threshold"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("cannot parse thresholds: %w", err)
	}
	out := map[string]map[string]float64{}
	for det, ps := range raw {
		out[det] = map[string]float64{}
		for p, v := range ps {
			out[det][p] = v.Threshold
		}
	}
	return out, nil
}
