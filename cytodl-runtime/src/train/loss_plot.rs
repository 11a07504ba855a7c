//! `plots/loss.png`: the run's loss curves, redrawn at each epoch's end, so that a user sees
//! whether training converges without loading `metrics.csv` into a notebook.
//!
//! One panel for the total loss (`train/loss`, `val/loss`) and, when the model has several heads,
//! one panel per head (`train/loss/<head>`, `val/loss/<head>`); epochs along x; a logarithmic y
//! axis when every value is positive (losses fall by decades), linear otherwise. Drawn with
//! plotters into memory and written as an RGB PNG (the `png` crate). The font is DejaVu Sans,
//! compiled in, so the plot looks the same on every machine whatever fonts it has.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use thiserror::Error;

use super::csv_logger::MetricsRow;
use super::logger::MetricLogger;

/// The picture's size in pixels: a panel is `WIDTH` x `PANEL_HEIGHT`.
pub const WIDTH: u32 = 800;
pub const PANEL_HEIGHT: u32 = 360;

/// Where the plot goes in the run folder.
pub const RELATIVE_PATH: &str = "plots/loss.png";

/// The family name plotters knows the compiled-in font by.
const FONT: &str = "sans-serif";

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("drawing the loss plot: {0}")]
    Draw(String),
}

/// The loss history of a run and where its plot goes.
#[derive(Debug, Clone)]
pub struct LossPlot {
    path: PathBuf,
    rows: Vec<MetricsRow>,
}

/// One curve: a metric's value per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl LossPlot {
    /// The plot of a run in `run_dir`, continuing `history` (a resumed run's earlier rows).
    pub fn new(run_dir: &Path, history: Vec<MetricsRow>) -> Self {
        LossPlot { path: run_dir.join(RELATIVE_PATH), rows: history }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The panels: a title and its curves, the total first, then one per head when there are
    /// several. Test rows (`test/...`) are single points after training and are left out.
    pub fn panels(&self) -> Vec<(String, Vec<Series>)> {
        let mut curves: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
        for row in &self.rows {
            for (name, value) in &row.values {
                let is_loss = (name.starts_with("train/loss") || name.starts_with("val/loss")) && value.is_finite();
                if is_loss {
                    curves.entry(name.clone()).or_default().insert(row.epoch, *value);
                }
            }
        }
        let heads: Vec<String> =
            curves.keys().filter_map(|k| k.split_once("/loss/").map(|(_, h)| h.to_string())).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let series = |suffix: &str| -> Vec<Series> {
            ["train", "val"]
                .iter()
                .filter_map(|stage| {
                    let name = format!("{stage}/loss{suffix}");
                    let points = curves.get(&name)?.iter().map(|(e, v)| (*e as f64, *v)).collect();
                    Some(Series { name, points })
                })
                .collect()
        };
        let mut panels = vec![("loss".to_string(), series(""))];
        if heads.len() > 1 {
            panels.extend(heads.iter().map(|h| (format!("loss of head {h}"), series(&format!("/{h}")))));
        }
        panels.retain(|(_, s)| !s.is_empty());
        panels
    }

    /// Redraws the plot; `None` while there is nothing to draw yet.
    pub fn render(&self) -> Result<Option<&Path>, PlotError> {
        let panels = self.panels();
        if panels.is_empty() {
            return Ok(None);
        }
        register_font();
        let height = PANEL_HEIGHT * panels.len() as u32;
        let mut rgb = vec![255u8; (WIDTH * height * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, height)).into_drawing_area();
            let areas = root.split_evenly((panels.len(), 1));
            for (area, (title, series)) in areas.iter().zip(&panels) {
                draw_panel(area, title, series)?;
            }
            root.present().map_err(draw_error)?;
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PlotError::Write { path: dir.to_path_buf(), message: e.to_string() })?;
        }
        write_rgb_png(&self.path, WIDTH, height, &rgb)?;
        Ok(Some(&self.path))
    }
}

fn draw_error(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The x range of `series` (at least one epoch wide) and the y range, padded.
fn ranges(series: &[Series]) -> (std::ops::Range<f64>, f64, f64) {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let x_max = points().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let lo = points().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    (0.0..x_max, lo, hi)
}

fn draw_panel(area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>, title: &str, series: &[Series]) -> Result<(), PlotError> {
    let (x, lo, hi) = ranges(series);
    if lo > 0.0 {
        // Half a decade of room either side when the values are (nearly) constant.
        let (lo, hi) = if hi / lo < 1.5 { (lo / 1.5, hi * 1.5) } else { (lo / 1.1, hi * 1.1) };
        draw_chart(area, title, series, x, (lo..hi).log_scale())
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-6);
        draw_chart(area, title, series, x, (lo - pad)..(hi + pad))
    }
}

fn draw_chart<Y>(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
    x: std::ops::Range<f64>,
    y: Y,
) -> Result<(), PlotError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(draw_error)?;
    let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];
    for (s, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(draw_error)?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(draw_error)?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_error)?;
    Ok(())
}

/// A y tick as a person writes it: `0.25`, `1.5`, `1200`; `3.0e-5` outside 0.001..10000.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e4).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Registers DejaVu Sans with plotters once per process.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and valid; a failure here would only lose the labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Writes `rgb` (`width` x `height` RGB pixels) as a PNG, through a temporary file and a rename
/// so that a viewer never reads half a picture.
fn write_rgb_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<(), PlotError> {
    let fail = |message: String| PlotError::Write { path: path.to_path_buf(), message };
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(BufWriter::new(&mut bytes), width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| fail(e.to_string()))?;
        writer.write_image_data(rgb).map_err(|e| fail(e.to_string()))?;
        writer.finish().map_err(|e| fail(e.to_string()))?;
    }
    super::csv_logger::atomic_write(path, &bytes).map_err(|e| fail(e.to_string()))
}

/// The plot follows the run's metrics like any logger, and redraws at each flush.
impl MetricLogger for LossPlot {
    fn log(&mut self, epoch: u64, step: u64, values: BTreeMap<String, f64>) {
        if !values.is_empty() {
            self.rows.push(MetricsRow { epoch, step, values });
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.render().map(|_| ()).map_err(std::io::Error::other)
    }

    fn resume_at(&mut self, epoch: u64) {
        self.rows.retain(|r| r.epoch < epoch);
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: u64, values: &[(&str, f64)]) -> MetricsRow {
        MetricsRow { epoch, step: epoch * 10, values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect() }
    }

    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("open")));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn one_panel_per_head_when_there_are_several_and_test_rows_left_out() {
        let rows = vec![
            row(0, &[("train/loss", 2.0), ("train/loss/seg", 1.5), ("train/loss/dist", 0.5), ("val/loss", 1.8)]),
            row(1, &[("train/loss", 1.0), ("train/loss/seg", 0.7), ("train/loss/dist", 0.3)]),
            row(2, &[("test/loss", 0.9)]),
        ];
        let plot = LossPlot::new(Path::new("/run"), rows);
        let panels = plot.panels();
        let titles: Vec<&str> = panels.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(titles, ["loss", "loss of head dist", "loss of head seg"]);
        assert_eq!(panels[0].1.len(), 2, "train and val");
        assert_eq!(panels[0].1[0].points, vec![(0.0, 2.0), (1.0, 1.0)]);
        assert_eq!(panels[0].1[1].points, vec![(0.0, 1.8)]);
        assert_eq!(plot.path(), Path::new("/run/plots/loss.png"));
    }

    #[test]
    fn the_png_decodes_at_its_size_and_changes_with_the_loss() {
        let dir = cytodl_testkit::Scratch::new("loss-plot");
        let mut plot = LossPlot::new(&dir, Vec::new());
        assert!(plot.render().expect("nothing to draw").is_none(), "no file before the first loss");
        assert!(!dir.join(RELATIVE_PATH).exists());
        for (epoch, loss) in [(0, 1.0), (1, 0.5), (2, 0.25)] {
            plot.log(epoch, epoch, [("train/loss".to_string(), loss), ("val/loss".to_string(), loss * 1.2)].into_iter().collect());
        }
        plot.flush().expect("render");
        let (w, h, first) = decode(&dir.join(RELATIVE_PATH));
        assert_eq!((w, h), (WIDTH, PANEL_HEIGHT));
        // Curves in both colours, and dark text (labels) somewhere.
        let has = |px: &[u8], c: [u8; 3]| px.chunks(3).any(|p| p == c);
        assert!(has(&first, [31, 119, 180]) && has(&first, [255, 127, 14]), "train and val curves drawn");
        assert!(first.chunks(3).filter(|p| p.iter().all(|&v| v < 80)).count() > 500, "axes and labels drawn");

        // A different loss history draws a different picture; resuming at epoch 2 drops that epoch.
        plot.resume_at(2);
        plot.log(2, 2, [("train/loss".to_string(), 0.9)].into_iter().collect());
        plot.flush().expect("render");
        let (_, _, second) = decode(&dir.join(RELATIVE_PATH));
        assert_ne!(first, second);
        assert!(plot.rows.iter().filter(|r| r.epoch == 2).count() == 1);
    }

    #[test]
    fn tick_labels_read_like_numbers() {
        let labels: Vec<String> = [0.0, 0.25, 1.5, 2.0, 1234.6, 0.00123, 3e-5, -0.5].iter().map(|v| tick_label(*v)).collect();
        assert_eq!(labels, ["0", "0.25", "1.5", "2", "1235", "0.00123", "3.0e-5", "-0.5"]);
    }

    #[test]
    fn negative_losses_get_a_linear_axis_and_still_draw() {
        let dir = cytodl_testkit::Scratch::new("loss-plot-linear");
        let rows = (0..4).map(|e| row(e, &[("train/loss", -0.5 * e as f64)])).collect();
        let plot = LossPlot::new(&dir, rows);
        let path = plot.render().expect("render").expect("drawn").to_path_buf();
        let (w, h, _) = decode(&path);
        assert_eq!((w, h), (WIDTH, PANEL_HEIGHT));
    }
}
