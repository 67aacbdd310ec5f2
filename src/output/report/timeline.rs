//! Time series for the report's plots, computed from `samples.csv` rows (pure: rows in,
//! numbers out; no file, no clock). Definitions: `docs/METRICS.md` "Report time series".
//!
//! The rows are streamed once, in arrival order, and every series is bounded whatever the
//! run length: lines are decimated on a grid of [`BUCKETS`] buckets of wall time keeping
//! each bucket's lowest and highest point (spikes and dips survive), and gaps in the data
//! are kept as gaps, never bridged by a line. Beyond [`DETAIL_LIMIT`] dummies, only the
//! few worst dummies keep their own series; the others contribute to a min / median / max
//! band across dummies.

use std::collections::{BTreeMap, BTreeSet};

use crate::output::samples_csv::SampleRow;

/// Buckets of the decimation grid: about one per pixel column of a plot.
pub const BUCKETS: usize = 1000;
/// Buckets of the across-dummies band (coarser: it keeps one mean per dummy and bucket).
pub const BAND_BUCKETS: usize = 250;
/// Up to this many dummies, every dummy is drawn; beyond, a band and the worst few.
pub const DETAIL_LIMIT: usize = 10;
/// The short RTF windows the report offers, s (aligned on the run start).
pub const RTF_WINDOWS_S: [f64; 2] = [0.1, 1.0];
/// A wall gap between consecutive samples longer than this many typical gaps is a gap...
const GAP_TYPICAL_FACTOR: f64 = 4.0;
/// ...if it is also longer than this, s.
pub const GAP_MIN_S: f64 = 0.25;
/// Weight of a new gap in the typical gap (EWMA, as for `worst_1s`).
const TYPICAL_GAP_WEIGHT: f64 = 1.0 / 8.0;
/// Latency histogram for the CDF: log-spaced bins from 1 µs to 10⁸ µs (100 s).
const CDF_BINS_PER_DECADE: f64 = 40.0;
const CDF_DECADES: f64 = 8.0;
/// Gaps kept per series before neighbouring ones are merged (a merged gap is wider, so no
/// line ever crosses missing data; it may only break a little more than needed).
const MAX_GAPS: usize = 4 * BUCKETS;

/// A point on a plot: (wall time since the run start s, value).
pub type Point = (f64, f64);

/// Min/max decimation on a doubling grid, with the gaps of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimator {
    width: f64,
    /// Per bucket, the lowest and the highest point.
    buckets: Vec<Option<(Point, Point)>>,
    gaps: Vec<(f64, f64)>,
}

impl Decimator {
    /// `buckets` buckets of `width` s each, doubled whenever a point lies beyond them.
    pub fn new(width: f64, buckets: usize) -> Self {
        Self {
            width: if width > 0.0 && width.is_finite() {
                width
            } else {
                1.0
            },
            buckets: vec![None; buckets.max(2)],
            gaps: Vec::new(),
        }
    }

    /// Adds a point; non-finite points are ignored, negative times go to the first bucket.
    pub fn push(&mut self, (x, y): Point) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        let k = loop {
            let k = (x.max(0.0) / self.width) as usize;
            if k < self.buckets.len() {
                break k;
            }
            self.coarsen();
        };
        let b = &mut self.buckets[k];
        *b = Some(match *b {
            None => ((x, y), (x, y)),
            Some((lo, hi)) => (
                if y < lo.1 { (x, y) } else { lo },
                if y > hi.1 { (x, y) } else { hi },
            ),
        });
    }

    /// Marks the open interval (`from`, `to`) as missing data: no line may cross it.
    pub fn gap(&mut self, from: f64, to: f64) {
        // Also refuses NaN bounds.
        if from.partial_cmp(&to) != Some(std::cmp::Ordering::Less) {
            return;
        }
        self.gaps.push((from, to));
        if self.gaps.len() > MAX_GAPS {
            self.gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
            self.gaps = self
                .gaps
                .chunks(2)
                .map(|c| (c[0].0, c[c.len() - 1].1.max(c[0].1)))
                .collect();
        }
    }

    fn coarsen(&mut self) {
        self.width *= 2.0;
        let n = self.buckets.len();
        let mut merged = vec![None; n];
        for (i, pair) in self.buckets.chunks(2).enumerate() {
            merged[i] = pair.iter().flatten().copied().reduce(|a, b| {
                (
                    if b.0 .1 < a.0 .1 { b.0 } else { a.0 },
                    if b.1 .1 > a.1 .1 { b.1 } else { a.1 },
                )
            });
        }
        self.buckets = merged;
    }

    /// Bucket width now, s.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// The kept points in x order (each bucket's lowest and highest, once if the same).
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for &(lo, hi) in self.buckets.iter().flatten() {
            let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            out.push(a);
            if b != a {
                out.push(b);
            }
        }
        out
    }

    /// The kept points cut into lines: consecutive points are joined unless a gap lies
    /// between them.
    pub fn segments(&self) -> Vec<Vec<Point>> {
        let mut gaps = self.gaps.clone();
        gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out: Vec<Vec<Point>> = Vec::new();
        let mut current: Vec<Point> = Vec::new();
        let mut g = 0;
        for p in self.points() {
            if let Some(&u) = current.last() {
                // Gaps ending at or before u cannot separate u from anything later.
                while g < gaps.len() && gaps[g].1 <= u.0 {
                    g += 1;
                }
                if gaps[g..]
                    .iter()
                    .take_while(|gap| gap.0 < p.0)
                    .any(|gap| gap.1 > u.0)
                {
                    out.push(std::mem::take(&mut current));
                }
            }
            current.push(p);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// One value of a windowed series: the window's end (s since the run start) and its RTF
/// and sending rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowValue {
    /// Window index k: the window is (k−1)·W .. k·W after the origin.
    pub k: i64,
    pub rtf: f64,
    /// Messages with a wall time inside the window, per second.
    pub rate_hz: f64,
}

/// A sample as the window grid sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mark {
    wall_ns: i64,
    sim_s: f64,
}

/// RTF over aligned windows of W (100 ms, 1 s) from one dummy's (sender wall, simulation
/// time) stamps: `docs/METRICS.md` "Short-window RTF". The rule of `rtf.worst_1s` for any
/// W: window k ends at `b_k = origin + k·W` and scores `RTF(L(b_{k−1}), L(b_k))`; a window
/// with no sample inside, within a gap from `a` to `a⁺`, scores `RTF(a, a⁺)` when the
/// sender's typical gap is under min(W, 0.5 s) ([`empty_window_gap_ns`]), and is left
/// without a value otherwise. Samples older
/// (by wall time) than the previous one are ignored, as by `worst_1s`.
#[derive(Debug, Clone)]
pub struct WindowRtf {
    w_ns: i64,
    origin_ns: i64,
    prev: Option<Mark>,
    typical_gap_ns: Option<f64>,
    /// The highest boundary index whose `L` is known, with that `L`.
    boundary: Option<(i64, Mark)>,
    /// Samples after the boundary (counted for the rate).
    since_boundary: u64,
}

impl WindowRtf {
    pub fn new(w_ns: i64, origin_ns: i64) -> Self {
        Self {
            w_ns: w_ns.max(1),
            origin_ns,
            prev: None,
            typical_gap_ns: None,
            boundary: None,
            since_boundary: 0,
        }
    }

    /// Forgets everything (a new session: windows never mix two simulation runs).
    pub fn reset(&mut self) {
        *self = Self::new(self.w_ns, self.origin_ns);
    }

    /// The sender's typical wall gap between samples so far, ns.
    pub fn typical_gap_ns(&self) -> Option<f64> {
        self.typical_gap_ns
    }

    /// One sample; every window it closes is handed to `out`, in order.
    pub fn push(&mut self, wall_ns: i64, sim_s: f64, out: &mut impl FnMut(WindowValue)) {
        if !sim_s.is_finite() {
            return;
        }
        let mark = Mark { wall_ns, sim_s };
        let Some(prev) = self.prev else {
            self.prev = Some(mark);
            self.since_boundary = 1;
            return;
        };
        if wall_ns < prev.wall_ns {
            return;
        }
        // Boundaries b_k with prev.wall ≤ b_k < wall all have L(b_k) = prev.
        let k_lo = ceil_div(prev.wall_ns - self.origin_ns, self.w_ns);
        let k_hi = ceil_div(wall_ns - self.origin_ns, self.w_ns) - 1;
        if k_lo <= k_hi {
            self.close(k_lo, prev, out);
            if k_hi > k_lo {
                self.empty_windows(k_lo + 1, k_hi, prev, mark, out);
            }
            self.boundary = Some((k_hi, prev));
            self.since_boundary = 0;
        }
        self.since_boundary += 1;
        let gap = (wall_ns - prev.wall_ns) as f64;
        self.typical_gap_ns = Some(
            self.typical_gap_ns
                .map_or(gap, |g| g + (gap - g) * TYPICAL_GAP_WEIGHT),
        );
        self.prev = Some(mark);
    }

    /// Window k = (b_{k−1}, b_k] ends with `b = L(b_k)`; scored if `L(b_{k−1})` is known.
    fn close(&mut self, k: i64, b: Mark, out: &mut impl FnMut(WindowValue)) {
        let Some((pk, a)) = self.boundary else {
            return;
        };
        if pk != k - 1 || b.wall_ns <= a.wall_ns {
            return;
        }
        out(WindowValue {
            k,
            rtf: rtf(a, b),
            rate_hz: self.since_boundary as f64 * 1e9 / self.w_ns as f64,
        });
    }

    /// Windows `k_from..=k_to` lie inside the gap from `a` to `b` (no sample in them).
    fn empty_windows(
        &mut self,
        k_from: i64,
        k_to: i64,
        a: Mark,
        b: Mark,
        out: &mut impl FnMut(WindowValue),
    ) {
        let frequent = self
            .typical_gap_ns
            .is_some_and(|g| g < empty_window_gap_ns(self.w_ns));
        if !frequent || b.wall_ns <= a.wall_ns {
            return;
        }
        let value = rtf(a, b);
        for k in k_from..=k_to {
            out(WindowValue {
                k,
                rtf: value,
                rate_hz: 0.0,
            });
        }
    }
}

/// An empty window is scored when the sender's typical gap is under this: it normally
/// sends at least once per window, and at least twice a second (the `worst_1s` rule, so
/// at W = 1 s both agree).
pub fn empty_window_gap_ns(w_ns: i64) -> f64 {
    w_ns.min(500_000_000) as f64
}

fn rtf(a: Mark, b: Mark) -> f64 {
    (b.sim_s - a.sim_s) * 1e9 / (b.wall_ns - a.wall_ns) as f64
}

/// Integer ceiling division (`b` > 0), correct for negative `a`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// One mean per bucket (for the band across dummies), on a doubling grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Means {
    width: f64,
    sums: Vec<(f32, u32)>,
}

impl Means {
    pub fn new(width: f64, buckets: usize) -> Self {
        Self {
            width,
            sums: vec![(0.0, 0); buckets.max(2)],
        }
    }

    pub fn push(&mut self, (x, y): Point) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        let k = loop {
            let k = (x.max(0.0) / self.width) as usize;
            if k < self.sums.len() {
                break k;
            }
            self.coarsen();
        };
        self.sums[k].0 += y as f32;
        self.sums[k].1 += 1;
    }

    fn coarsen(&mut self) {
        self.width *= 2.0;
        let n = self.sums.len();
        let mut merged = vec![(0.0, 0); n];
        for (i, pair) in self.sums.chunks(2).enumerate() {
            merged[i] = pair
                .iter()
                .fold((0.0, 0), |acc, s| (acc.0 + s.0, acc.1 + s.1));
        }
        self.sums = merged;
    }

    /// Coarsens until the bucket width is at least `width` (widths differ by powers of 2).
    pub fn coarsen_to(&mut self, width: f64) {
        while self.width < width * (1.0 - 1e-9) {
            self.coarsen();
        }
    }

    /// Mean of bucket `k`, if it has values.
    pub fn mean(&self, k: usize) -> Option<f64> {
        let (sum, n) = *self.sums.get(k)?;
        (n > 0).then(|| f64::from(sum) / f64::from(n))
    }
}

/// Lowest, median and highest across dummies, per band bucket; `None` where no dummy has
/// a value. x is the bucket's middle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Band {
    pub width: f64,
    pub rows: Vec<Option<BandRow>>,
}

/// One bucket of a [`Band`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandRow {
    pub x: f64,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// Dummies with a value in the bucket.
    pub dummies: usize,
}

impl Band {
    /// The band of several dummies' means.
    pub fn of(mut means: Vec<Means>) -> Self {
        let Some(width) = means.iter().map(|m| m.width).reduce(f64::max) else {
            return Self::default();
        };
        for m in &mut means {
            m.coarsen_to(width);
        }
        let n = means.iter().map(|m| m.sums.len()).max().unwrap_or(0);
        let rows = (0..n)
            .map(|k| {
                let mut v: Vec<f64> = means.iter().filter_map(|m| m.mean(k)).collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                Some(BandRow {
                    x: (k as f64 + 0.5) * width,
                    min: v[0],
                    median: median_of_sorted(&v),
                    max: v[v.len() - 1],
                    dummies: v.len(),
                })
            })
            .collect();
        Self { width, rows }
    }

    /// The band as drawable segments: (x, min, max) areas and (x, median) lines. Buckets
    /// narrower than the time between messages are often empty; a segment is broken only
    /// where empty buckets span at least [`GAP_MIN_S`] (a stall), so a steady run reads as
    /// a line and a stall still as a gap.
    pub fn segments(&self) -> BandSegments {
        let mut out = BandSegments {
            area: vec![Vec::new()],
            median: vec![Vec::new()],
        };
        let mut empty_s = 0.0;
        for row in &self.rows {
            let Some(r) = row else {
                empty_s += self.width;
                continue;
            };
            let open = out.area.last().is_some_and(|a| !a.is_empty());
            if open && empty_s >= GAP_MIN_S {
                out.area.push(Vec::new());
                out.median.push(Vec::new());
            }
            empty_s = 0.0;
            if let (Some(a), Some(m)) = (out.area.last_mut(), out.median.last_mut()) {
                a.push((r.x, r.min, r.max));
                m.push((r.x, r.median));
            }
        }
        out
    }
}

/// A [`Band`] cut where it has no data for a while.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BandSegments {
    pub area: Vec<Vec<(f64, f64, f64)>>,
    pub median: Vec<Vec<Point>>,
}

/// Median of a sorted, non-empty slice (mean of the two middle values for an even count).
pub fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Log-binned latency counts for a CDF (bounded memory, ~6 % bin width).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl LogHistogram {
    fn bins() -> usize {
        (CDF_BINS_PER_DECADE * CDF_DECADES) as usize + 1
    }

    pub fn push(&mut self, us: f64) {
        if !us.is_finite() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; Self::bins()];
        }
        let bin = (us.max(1.0).log10() * CDF_BINS_PER_DECADE).ceil() as usize;
        let last = self.counts.len() - 1;
        self.counts[bin.min(last)] += 1;
        self.total += 1;
    }

    /// (upper edge of a bin µs, fraction of values ≤ it), for bins in use.
    pub fn cdf(&self) -> Vec<Point> {
        let mut acc = 0;
        let mut out = Vec::new();
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            acc += c;
            let edge = 10f64.powf(i as f64 / CDF_BINS_PER_DECADE);
            out.push((edge, acc as f64 / self.total as f64));
        }
        out
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Everything drawn for one dummy.
#[derive(Debug, Clone, PartialEq)]
pub struct DummySeries {
    /// Per entry of [`RTF_WINDOWS_S`]: RTF at each window's end, decimated, with gaps.
    pub rtf: Vec<Vec<Vec<Point>>>,
    /// Sending rate over the 1 s windows, Hz.
    pub rate_hz: Vec<Vec<Point>>,
    /// Simulation time against wall time, with gaps.
    pub sim_time: Vec<Vec<Point>>,
    /// Latency per message (decimated points), µs.
    pub latency: Vec<Point>,
    pub latency_cdf: Vec<Point>,
    /// Gaps found in this dummy's samples: (from, to) s since the run start.
    pub gaps: Vec<(f64, f64)>,
}

/// The bands across all dummies (when there are more than [`DETAIL_LIMIT`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bands {
    /// Per entry of [`RTF_WINDOWS_S`].
    pub rtf: Vec<Band>,
    pub rate_hz: Band,
    pub sim_time: Band,
    pub latency: Band,
    pub latency_cdf: Vec<Point>,
}

/// The report's time series for a whole run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimelineData {
    /// Dummies drawn one by one: all of them, or the worst few beside the bands.
    pub detailed: BTreeMap<u32, DummySeries>,
    pub bands: Option<Bands>,
    /// Latest x of any point, s: the shared x axis ends there.
    pub x_max: f64,
    /// Rows read.
    pub rows: u64,
}

/// Per-dummy streaming state.
#[derive(Debug, Clone)]
struct DummyState {
    session: Option<u32>,
    windows: Vec<WindowRtf>,
    last_k: Vec<Option<i64>>,
    prev_wall_ns: Option<i64>,
    detail: Option<DetailState>,
    band: Option<BandState>,
}

#[derive(Debug, Clone)]
struct DetailState {
    rtf: Vec<Decimator>,
    rate: Decimator,
    sim_time: Decimator,
    latency: Decimator,
    cdf: LogHistogram,
    gaps: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
struct BandState {
    rtf: Vec<Means>,
    rate: Means,
    sim_time: Means,
    latency: Means,
}

/// Streams samples into the report's series.
#[derive(Debug, Clone)]
pub struct Timeline {
    origin_ns: i64,
    width: f64,
    band_width: f64,
    /// `None`: every dummy is detailed.
    detailed: Option<BTreeSet<u32>>,
    banded: bool,
    dummies: BTreeMap<u32, DummyState>,
    all_cdf: LogHistogram,
    x_max: f64,
    rows: u64,
}

impl Timeline {
    /// `start_unix_s`: the run start (x = 0, window grid origin); `span_s`: the expected
    /// run length (the grids double if the samples go beyond); `detailed`: the dummies to
    /// draw one by one, `None` for all (and then no band).
    pub fn new(start_unix_s: f64, span_s: f64, detailed: Option<BTreeSet<u32>>) -> Self {
        let span = if span_s.is_finite() && span_s > 0.0 {
            span_s
        } else {
            60.0
        };
        Self {
            origin_ns: (start_unix_s * 1e9).round() as i64,
            width: span / BUCKETS as f64,
            band_width: span / BAND_BUCKETS as f64,
            banded: detailed.is_some(),
            detailed,
            dummies: BTreeMap::new(),
            all_cdf: LogHistogram::default(),
            x_max: 0.0,
            rows: 0,
        }
    }

    fn new_dummy(&self, id: u32) -> DummyState {
        let detail = self
            .detailed
            .as_ref()
            .is_none_or(|d| d.contains(&id))
            .then(|| DetailState {
                rtf: RTF_WINDOWS_S
                    .iter()
                    .map(|_| Decimator::new(self.width, BUCKETS))
                    .collect(),
                rate: Decimator::new(self.width, BUCKETS),
                sim_time: Decimator::new(self.width, BUCKETS),
                latency: Decimator::new(self.width, BUCKETS),
                cdf: LogHistogram::default(),
                gaps: Vec::new(),
            });
        let band = self.banded.then(|| {
            let m = || Means::new(self.band_width, BAND_BUCKETS);
            BandState {
                rtf: RTF_WINDOWS_S.iter().map(|_| m()).collect(),
                rate: m(),
                sim_time: m(),
                latency: m(),
            }
        });
        DummyState {
            session: None,
            windows: RTF_WINDOWS_S
                .iter()
                .map(|w| WindowRtf::new((w * 1e9).round() as i64, self.origin_ns))
                .collect(),
            last_k: vec![None; RTF_WINDOWS_S.len()],
            prev_wall_ns: None,
            detail,
            band,
        }
    }

    /// One row of `samples.csv`.
    pub fn push(&mut self, row: &SampleRow) {
        self.rows += 1;
        let origin = self.origin_ns;
        let to_x = |ns: i64| (ns - origin) as f64 / 1e9;
        // The RTF's wall clock: the sender's stamp, or the receive time for legacy senders.
        let wall_ns = (row.sent_unix_s.unwrap_or(row.recv_unix_s) * 1e9).round() as i64;
        let recv_x = row.recv_unix_s - origin as f64 / 1e9;
        if let Some(lat) = row.latency_us {
            self.all_cdf.push(lat);
        }
        self.x_max = self.x_max.max(to_x(wall_ns)).max(recv_x);
        if !self.dummies.contains_key(&row.dummy) {
            let fresh = self.new_dummy(row.dummy);
            self.dummies.insert(row.dummy, fresh);
        }
        let d = self.dummies.get_mut(&row.dummy).expect("inserted above");
        d.push(row, wall_ns, recv_x, to_x);
    }

    /// The series, once every row was pushed.
    pub fn finish(self) -> TimelineData {
        let mut detailed = BTreeMap::new();
        let mut band_states = Vec::new();
        for (id, d) in self.dummies {
            if let Some(s) = d.detail {
                detailed.insert(id, s.series());
            }
            if let Some(b) = d.band {
                band_states.push(b);
            }
        }
        let bands = self.banded.then(|| bands_of(band_states, &self.all_cdf));
        TimelineData {
            detailed,
            bands,
            x_max: self.x_max,
            rows: self.rows,
        }
    }
}

fn bands_of(states: Vec<BandState>, all_cdf: &LogHistogram) -> Bands {
    let mut rtf: Vec<Vec<Means>> = RTF_WINDOWS_S.iter().map(|_| Vec::new()).collect();
    let (mut rate, mut sim, mut lat) = (Vec::new(), Vec::new(), Vec::new());
    for s in states {
        for (i, m) in s.rtf.into_iter().enumerate() {
            rtf[i].push(m);
        }
        rate.push(s.rate);
        sim.push(s.sim_time);
        lat.push(s.latency);
    }
    Bands {
        rtf: rtf.into_iter().map(Band::of).collect(),
        rate_hz: Band::of(rate),
        sim_time: Band::of(sim),
        latency: Band::of(lat),
        latency_cdf: all_cdf.cdf(),
    }
}

impl DummyState {
    fn push(&mut self, row: &SampleRow, wall_ns: i64, recv_x: f64, to_x: impl Fn(i64) -> f64) {
        let x = to_x(wall_ns);
        let new_session = self.session.is_some_and(|s| s != row.session);
        self.session = Some(row.session);
        if new_session {
            for w in &mut self.windows {
                w.reset();
            }
            if let Some(prev) = self.prev_wall_ns {
                self.mark_gap(to_x(prev), x);
            }
            self.prev_wall_ns = None;
        }
        if let Some(prev) = self.prev_wall_ns {
            if wall_ns < prev {
                // Reordered (older than the newest by the sender's clock): the windows
                // ignore it too; only its latency counts.
                self.latency(row, recv_x);
                return;
            }
            let gap_s = (wall_ns - prev) as f64 / 1e9;
            let typical_s = self.windows[0].typical_gap_ns().map(|g| g / 1e9);
            if typical_s.is_some_and(|t| gap_s > (GAP_TYPICAL_FACTOR * t).max(GAP_MIN_S)) {
                self.mark_gap(to_x(prev), x);
            }
        }
        self.prev_wall_ns = Some(wall_ns);
        self.windows_push(wall_ns, row.sim_time_s);
        if let Some(s) = &mut self.detail {
            s.sim_time.push((x, row.sim_time_s));
        }
        if let Some(b) = &mut self.band {
            b.sim_time.push((x, row.sim_time_s));
        }
        self.latency(row, recv_x);
    }

    fn mark_gap(&mut self, from: f64, to: f64) {
        if let Some(s) = &mut self.detail {
            s.sim_time.gap(from, to);
            s.gaps.push((from, to));
        }
    }

    fn latency(&mut self, row: &SampleRow, recv_x: f64) {
        let Some(lat) = row.latency_us else {
            return;
        };
        if let Some(s) = &mut self.detail {
            s.latency.push((recv_x, lat));
            s.cdf.push(lat);
        }
        if let Some(b) = &mut self.band {
            b.latency.push((recv_x, lat));
        }
    }

    fn windows_push(&mut self, wall_ns: i64, sim_s: f64) {
        for (i, w) in self.windows.iter_mut().enumerate() {
            let w_s = RTF_WINDOWS_S[i];
            let last_k = &mut self.last_k[i];
            let detail = &mut self.detail;
            let band = &mut self.band;
            w.push(wall_ns, sim_s, &mut |v: WindowValue| {
                let x = v.k as f64 * w_s;
                if let Some(s) = detail.as_mut() {
                    // A window without a value between two with one: a gap in the line.
                    if let Some(prev) = *last_k {
                        if v.k > prev + 1 {
                            s.rtf[i].gap(prev as f64 * w_s, x);
                            if i == RTF_WINDOWS_S.len() - 1 {
                                s.rate.gap(prev as f64 * w_s, x);
                            }
                        }
                    }
                    s.rtf[i].push((x, v.rtf));
                    if i == RTF_WINDOWS_S.len() - 1 {
                        s.rate.push((x, v.rate_hz));
                    }
                }
                if let Some(b) = band.as_mut() {
                    b.rtf[i].push((x, v.rtf));
                    if i == RTF_WINDOWS_S.len() - 1 {
                        b.rate.push((x, v.rate_hz));
                    }
                }
                *last_k = Some(v.k);
            });
        }
    }
}

impl DetailState {
    fn series(self) -> DummySeries {
        DummySeries {
            rtf: self.rtf.iter().map(Decimator::segments).collect(),
            rate_hz: self.rate.segments(),
            sim_time: self.sim_time.segments(),
            latency: self.latency.points(),
            latency_cdf: self.cdf.cdf(),
            gaps: self.gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_segments_bridge_short_empty_stretches_and_break_at_stalls() {
        let row = |k: usize| {
            Some(BandRow {
                x: k as f64 * 0.01,
                min: 1.0,
                median: 2.0,
                max: 3.0,
                dummies: 2,
            })
        };
        // 10 ms buckets: a value every 5th bucket (50 ms between messages), then 0.3 s empty.
        let mut rows: Vec<Option<BandRow>> = (0..20)
            .map(|k| if k % 5 == 0 { row(k) } else { None })
            .collect();
        rows.extend(std::iter::repeat_n(None, 30));
        rows.extend((50..60).map(row));
        let band = Band { width: 0.01, rows };
        let seg = band.segments();
        assert_eq!(seg.area.len(), 2, "one break, at the stall");
        assert_eq!(seg.median[0].len(), 4);
        assert_eq!(seg.median[1].len(), 10);
        assert_eq!(seg.area[1][0], (0.5, 1.0, 3.0));
        assert_eq!(Band::default().segments().area, vec![Vec::new()]);
    }

    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;

    fn windows(w_ns: i64, samples: &[(i64, f64)]) -> Vec<WindowValue> {
        let mut r = WindowRtf::new(w_ns, 0);
        let mut out = Vec::new();
        for &(t, sim) in samples {
            r.push(t, sim, &mut |v| out.push(v));
        }
        out
    }

    #[test]
    fn steady_20hz_reads_one_in_every_window() {
        let samples: Vec<(i64, f64)> = (0..=40)
            .map(|i| (i * 50 * MS + 1, i as f64 * 0.05))
            .collect();
        for w in [100 * MS, S] {
            let out = windows(w, &samples);
            assert!(!out.is_empty());
            for v in &out {
                assert!((v.rtf - 1.0).abs() < 1e-9, "{v:?}");
                assert!((v.rate_hz - 20.0).abs() < 1e-9, "{v:?}");
            }
        }
    }

    #[test]
    fn a_stall_scores_its_empty_windows_low_and_a_slow_sender_leaves_them_empty() {
        // 20 Hz for 1 s, 2 s of nothing, then 20 Hz again.
        let mut samples: Vec<(i64, f64)> = (0..=20)
            .map(|i| (i * 50 * MS + 1, i as f64 * 0.05))
            .collect();
        samples.extend((0..20).map(|j| (3 * S + j * 50 * MS + 1, 1.05 + j as f64 * 0.05)));
        let out = windows(100 * MS, &samples);
        let stalled: Vec<&WindowValue> = out.iter().filter(|v| (11..=30).contains(&v.k)).collect();
        assert_eq!(
            stalled.len(),
            20,
            "every 100 ms window of the stall has a value"
        );
        assert!(
            (stalled[0].rtf - 1.0).abs() < 1e-6,
            "window 11 holds the last sample"
        );
        let stalled = &stalled[1..];
        assert!(
            stalled.iter().all(|v| v.rtf < 0.03 && v.rate_hz == 0.0),
            "{stalled:?}"
        );
        // One sample per 2 s: the 1 s windows holding a sample are scored, the empty ones
        // between them stay without a value (a broken line, not a stall).
        let slow: Vec<(i64, f64)> = (0..6).map(|i| (i * 2 * S + 1, i as f64 * 2.0)).collect();
        let out = windows(S, &slow);
        let ks: Vec<i64> = out.iter().map(|v| v.k).collect();
        assert_eq!(ks, [3, 5, 7, 9], "{out:?}");
        assert!(out.iter().all(|v| v.rtf == 1.0));
    }

    #[test]
    fn decimation_cuts_lines_at_gaps_only() {
        let mut d = Decimator::new(0.01, 100);
        for i in 0..50 {
            d.push((i as f64 * 0.02, 1.0));
        }
        d.gap(0.98, 2.0);
        for i in 100..150 {
            d.push((i as f64 * 0.02, 2.0));
        }
        let segs = d.segments();
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert!(d.width() > 0.01, "the grid doubled to fit x = 3 s");
        assert!(segs[0].iter().all(|p| p.0 <= 0.98) && segs[1].iter().all(|p| p.0 >= 2.0));
    }

    #[test]
    fn band_takes_min_median_max_across_dummies() {
        let mut means: Vec<Means> = (0..5).map(|_| Means::new(1.0, 4)).collect();
        for (i, m) in means.iter_mut().enumerate() {
            m.push((0.5, i as f64));
            m.push((0.6, i as f64 + 1.0));
        }
        means[4].push((9.0, 7.0)); // doubles dummy 4's grid twice
        let band = Band::of(means);
        assert_eq!(band.width, 4.0);
        let row = band.rows[0].unwrap();
        assert_eq!(
            (row.min, row.median, row.max, row.dummies),
            (0.5, 2.5, 4.5, 5)
        );
        assert_eq!(band.rows[2].unwrap().median, 7.0);
        assert!(band.rows[1].is_none());
    }

    #[test]
    fn log_histogram_cdf_ends_at_one() {
        let mut h = LogHistogram::default();
        for us in [5.0, 10.0, 10.0, 1e4] {
            h.push(us);
        }
        let c = h.cdf();
        assert_eq!(c.len(), 3);
        assert_eq!(c.last().unwrap().1, 1.0);
        assert!((c[0].0 / 5.0 - 1.0).abs() < 0.06, "{c:?}");
    }
}
