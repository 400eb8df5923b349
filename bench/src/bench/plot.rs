//! `--plot FILE.svg`: throughput against message size, and latency percentiles against
//! message size, one colour per mode (plotters' SVG backend; text is left to the viewer's
//! fonts, so no font files are needed here).

use std::path::Path;

use plotters::prelude::*;

use super::error::BenchError;
use super::report::CellResult;
use super::spec::{size_label, Mode};

fn colour(m: Mode) -> RGBColor {
    match m {
        Mode::Tcp => RGBColor(160, 160, 160),
        Mode::Raw => RGBColor(90, 90, 90),
        Mode::Crc => RGBColor(31, 119, 180),
        Mode::Secure => RGBColor(214, 39, 40),
        Mode::CrcCompress(m) => match m {
            msgr2_codec::compress::Method::Snappy => RGBColor(44, 160, 44),
            msgr2_codec::compress::Method::Zlib => RGBColor(148, 103, 189),
            msgr2_codec::compress::Method::Zstd => RGBColor(255, 127, 14),
            msgr2_codec::compress::Method::Lz4 => RGBColor(23, 190, 207),
        },
    }
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Plot(e.to_string())
}

/// The x coordinate of a size: its base-2 logarithm, so that binary sizes fall on integer
/// ticks labelled `4KiB`, `8KiB`, ….
fn x_of(size: u64) -> f64 {
    (size.max(1) as f64).log2()
}

/// The x range of sizes, widened so that a single size still makes a range.
fn size_range(cells: &[CellResult]) -> (f64, f64) {
    let lo = cells.iter().map(|c| c.size).min().unwrap_or(1);
    let hi = cells.iter().map(|c| c.size).max().unwrap_or(1);
    (x_of(lo) - 0.5, x_of(hi) + 0.5)
}

/// Tick label of an x coordinate: the size at integer positions, nothing between.
fn x_label(v: &f64) -> String {
    let r = v.round();
    if (v - r).abs() > 0.01 || !(0.0..=62.0).contains(&r) {
        return String::new();
    }
    size_label(1u64 << (r as u32))
}

/// Draws the two panels into `path`; `title` goes on top.
pub fn draw(path: &Path, title: &str, cells: &[CellResult]) -> Result<(), BenchError> {
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| cells.iter().any(|c| c.mode == *m))
        .collect();
    let root = SVGBackend::new(path, (1280, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (left, right) = root.split_horizontally(640);
    let (x0, x1) = size_range(cells);
    let x_ticks = ((x1 - x0).ceil() as usize + 1).min(24);

    // Throughput.
    let gmax = cells
        .iter()
        .map(|c| c.gbps)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("throughput", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0f64..gmax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("message size (log scale)")
        .y_desc("GB/s (1e9 B/s)")
        .x_labels(x_ticks)
        .x_label_formatter(&x_label)
        .draw()
        .map_err(err)?;
    for &m in &modes {
        let c = colour(m);
        let pts: Vec<(f64, f64)> = cells
            .iter()
            .filter(|x| x.mode == m)
            .map(|x| (x_of(x.size), x.gbps))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(m.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    // Latency percentiles (log scale).
    let lats = cells
        .iter()
        .flat_map(|c| [c.p50_us, c.p99_us, c.p999_us])
        .filter(|v| *v > 0.0);
    let lmin = lats.clone().fold(f64::INFINITY, f64::min);
    let lmax = lats.fold(0.0f64, f64::max);
    let (lmin, lmax) = if lmin.is_finite() && lmax > 0.0 {
        (lmin / 1.5, lmax * 1.5)
    } else {
        (1.0, 10.0)
    };
    let mut chart = ChartBuilder::on(&right)
        .caption(
            "latency, send → reply (p50 ●  p99 ▲  p99.9 ✕)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (lmin..lmax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("message size (log scale)")
        .y_desc("µs")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_labels(x_ticks)
        .x_label_formatter(&x_label)
        .draw()
        .map_err(err)?;
    for &m in &modes {
        let c = colour(m);
        let mine: Vec<&CellResult> = cells
            .iter()
            .filter(|x| x.mode == m && x.latency_measured)
            .collect();
        if mine.is_empty() {
            continue; // tcp: a stream, no round trips
        }
        type Pick = fn(&CellResult) -> f64;
        let series: [(&str, Pick, u32); 3] = [
            ("p50", |x| x.p50_us, 2),
            ("p99", |x| x.p99_us, 1),
            ("p99.9", |x| x.p999_us, 1),
        ];
        for (i, (name, pick, width)) in series.into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = mine
                .iter()
                .map(|x| (x_of(x.size), pick(x)))
                .filter(|p| p.1 > 0.0)
                .collect();
            let line = LineSeries::new(
                pts.clone(),
                c.mix(1.0 - 0.25 * i as f64).stroke_width(width),
            );
            let drawn = chart.draw_series(line).map_err(err)?;
            if i == 0 {
                drawn
                    .label(format!("{} {name}…p99.9", m.name()))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
            }
            match i {
                0 => chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                    .map(|_| ()),
                1 => chart
                    .draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 5, c.filled())))
                    .map(|_| ()),
                _ => chart
                    .draw_series(pts.iter().map(|&p| Cross::new(p, 4, c.stroke_width(2))))
                    .map(|_| ()),
            }
            .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
