//! A montage PNG of what validation saw and predicted — input, target, prediction side by side —
//! so that a user sees how training goes without opening the TIFFs in Fiji.
//!
//! Each panel is one image's first channel at its middle Z slice, contrast-stretched on its own
//! between the 0.5th and 99.5th percentiles (Fiji's "auto" in spirit), scaled up by an integer
//! factor when small so that the montage is at least [`MIN_WIDTH`] pixels wide, and written as
//! 8-bit grayscale with a gap between panels.

use std::io::BufWriter;
use std::path::Path;

use thiserror::Error;

use crate::array::Array;

/// Montages narrower than this are scaled up (nearest neighbour, integer factor).
pub const MIN_WIDTH: usize = 384;
/// Pixels between panels (black).
const GAP: usize = 4;

#[derive(Debug, Error)]
pub enum MontageError {
    #[error("a montage needs at least one image")]
    Empty,
    #[error("an image of shape {0:?} is not [C, Z, Y, X] or [C, Y, X]")]
    Shape(Vec<usize>),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
}

/// A grayscale picture: `height` rows of `width` 8-bit pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// The montage of `images` (each `[C, Z, Y, X]` or `[C, Y, X]`), left to right.
pub fn montage(images: &[&Array]) -> Result<Gray, MontageError> {
    let panels: Vec<Gray> = images.iter().map(|a| panel(a)).collect::<Result<_, _>>()?;
    let height = panels.iter().map(|p| p.height).max().ok_or(MontageError::Empty)?;
    let width = panels.iter().map(|p| p.width).sum::<usize>() + GAP * (panels.len() - 1);
    let scale = MIN_WIDTH.div_ceil(width).max(1);
    let (out_w, out_h) = (width * scale, height * scale);
    let mut pixels = vec![0u8; out_w * out_h];
    let mut left = 0;
    for p in &panels {
        for y in 0..p.height * scale {
            for x in 0..p.width * scale {
                pixels[y * out_w + left + x] = p.pixels[(y / scale) * p.width + x / scale];
            }
        }
        left += (p.width + GAP) * scale;
    }
    Ok(Gray { width: out_w, height: out_h, pixels })
}

/// One image's first channel, middle Z slice, contrast-stretched to 0..=255.
fn panel(a: &Array) -> Result<Gray, MontageError> {
    let shape = a.shape();
    let (z, y, x) = match *shape {
        [_, z, y, x] => (z, y, x),
        [_, y, x] => (1, y, x),
        _ => return Err(MontageError::Shape(shape.to_vec())),
    };
    if y == 0 || x == 0 || z == 0 {
        return Err(MontageError::Shape(shape.to_vec()));
    }
    let start = (z / 2) * y * x;
    let slice = &a.data()[start..start + y * x];
    let (lo, hi) = percentiles(slice);
    let span = hi - lo;
    let pixels = slice.iter().map(|&v| if !v.is_finite() || span <= 0.0 { 0 } else { (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8 }).collect();
    Ok(Gray { width: x, height: y, pixels })
}

/// The 0.5th and 99.5th percentiles of the finite values (0, 0 when there are none).
fn percentiles(values: &[f32]) -> (f32, f32) {
    let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return (0.0, 0.0);
    }
    finite.sort_by(f32::total_cmp);
    let at = |q: f64| finite[((finite.len() - 1) as f64 * q).round() as usize];
    (at(0.005), at(0.995))
}

/// Writes `picture` as an 8-bit grayscale PNG.
pub fn write_png(path: &Path, picture: &Gray) -> Result<(), MontageError> {
    let fail = |message: String| MontageError::Write { path: path.display().to_string(), message };
    let file = std::fs::File::create(path).map_err(|e| fail(e.to_string()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), picture.width as u32, picture.height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| fail(e.to_string()))?;
    writer.write_image_data(&picture.pixels).map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: Vec<usize>, scale: f32) -> Array {
        let n = shape.iter().product();
        Array::new(shape, (0..n).map(|i| i as f32 * scale).collect()).expect("shape")
    }

    #[test]
    fn panels_sit_side_by_side_scaled_to_the_minimum_width() {
        // [C=2, Z=3, Y=8, X=10]: the middle slice of channel 0 is values 80..160.
        let a = ramp(vec![2, 3, 8, 10], 1.0);
        let b = ramp(vec![1, 8, 10], -1.0);
        let m = montage(&[&a, &b]).expect("montage");
        let scale = MIN_WIDTH.div_ceil(10 + GAP + 10);
        assert_eq!((m.width, m.height), ((10 + GAP + 10) * scale, 8 * scale));
        // First panel rises left to right and top to bottom; the second falls; the gap is black.
        assert_eq!(m.pixels[0], 0);
        assert_eq!(m.pixels[(8 * scale - 1) * m.width + 10 * scale - 1], 255);
        assert_eq!(m.pixels[(10 + GAP) * scale], 255);
        assert_eq!(m.pixels[10 * scale + 1], 0);
    }

    #[test]
    fn a_constant_or_empty_image_is_black_and_a_bad_shape_is_an_error() {
        let flat = Array::filled(vec![1, 4, 4], 3.0);
        assert!(montage(&[&flat]).expect("montage").pixels.iter().all(|&p| p == 0));
        assert!(matches!(montage(&[]), Err(MontageError::Empty)));
        assert!(matches!(montage(&[&Array::zeros(vec![4, 4])]), Err(MontageError::Shape(_))));
    }

    #[test]
    fn the_png_decodes_to_the_same_pixels() {
        let m = montage(&[&ramp(vec![1, 2, 5, 6], 0.5)]).expect("montage");
        let dir = std::env::temp_dir().join(format!("cytodl-montage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("m.png");
        write_png(&path, &m).expect("write");
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).expect("open")));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width as usize, info.height as usize), (m.width, m.height));
        assert_eq!(&buf[..info.buffer_size()], &m.pixels[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
