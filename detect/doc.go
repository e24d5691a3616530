// Package detect owns Outpost's detectors. Today that is the streaming anomaly
// detector for metric series and its back-test; log, trace and incident detectors,
// alert rules and notifications will live here too. It owns no storage formats.
//
// # Basics
//
// A Detector learns one series from its samples — level, trend, a daily profile,
// a weekly profile and the noise around them; for a counter (Options.Counter)
// its rate — and gives each sample a Result: a score in [0, 1], the expected value
// and band for that time of day and week, when the anomalous stretch began, and
// Result.Explain's sentence for people. It does constant work per sample, keeps
// under 1 KiB of state, and its only clock is the samples' timestamps. A Set keeps
// one Detector per series id, bounded by a cap and idle eviction.
//
// Live is the detector at work in the server: it observes every float sample the
// TSDB commits (tsdb.DB.SetObserver) through a bounded queue that drops rather
// than slow ingest, scores it in one goroutine through a Set at a fixed
// resolution (LiveOptions.Resolution, one minute by default: the mean of a
// gauge's samples, the latest value of a counter's, per minute; series sampled
// every minute or less often are scored on every sample) — counters, by type
// or by a _total, _count, _sum or _bucket name, through their rate — writes the
// score and the expected band back as the series outpost_anomaly_score,
// outpost_expected_lower and outpost_expected_upper (the watched series' labels,
// its name in anomaly_metric), and keeps the list of series anomalous now and in
// the last day for the API and the UI.
//
// Backtest runs the detector over a CSV series and writes NAB's result format;
// BacktestMain is the "outpost detect backtest" command. The detector's one
// configuration is measured on the Numenta Anomaly Benchmark by the scorer in
// detect/nab (see README.md for the current scores).
//
// # Caveats
//
// The score reports novelty: it peaks when a series starts to behave in a way it
// has not lately (the anomaly likelihood of the detector's raw surprises) or
// leaves the whole range seen so far, an alert right after an alert is demoted,
// and it fades as the detector adapts to a lasting change (Result.Since stays set
// while the samples remain outside the band). A deviation no larger than plain
// noise ever reaches (about 5.5 noise widths) never alerts, except a value beyond
// the whole range of a long history (1,000 samples) by 15% of that range, which
// needs only 3.5 widths. A single spike inside
// the range seen so far does not alert by itself (in a quiet series its
// likelihood reaches about 0.45); a spike beyond that range does. The gate is
// measured in the model's noise widths, which include its fitting error: on a
// strong daily cycle the widths can be several times the true noise. During the first days a series may alert on
// its own daily pattern; day-of-week patterns take weeks to learn, and one much
// larger than the noise can still alert at its edges (e.g. Monday 00:00) in the
// first month.
//
// Live's clock is the newest sample time it has seen: one sample stamped far in
// the future makes every other series look idle and evicts it. Writing the score
// and band of a sample costs about as much as ingesting it three times, hence
// LiveOptions.WriteInterval (README.md has the measured overhead).
package detect
