//! TIFF / BigTIFF / OME-TIFF / ImageJ reading.
//!
//! A small dedicated decoder (IFD walk + per-chunk decompression with weezl, miniz_oxide and
//! ruzstd) rather than the `tiff` crate: we need every plane of PlanarConfiguration=2 pages,
//! lazy per-page decoding (only the pages a selection touches), and errors that name the file.
//!
//! Axes follow what tifffile reports for the first series, with tifffile's "unknown" axes
//! (`Q`, `I`) renamed the way bioio-tifffile does (`_merge_dim_guesses`: a plain 12-page stack
//! is `ZYX`). Selection follows bioio_base `transforms.reshape_data` (see [`read`]).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::ome;
use super::{DType, ImageInfo, Index, ReadError, Selection};
use crate::array::Array;

/// Reads what a file holds without decoding pixels.
pub fn read_info(path: &Path) -> Result<ImageInfo, ReadError> {
    let mut src = Src::open(path)?;
    let series = Series::build(&mut src)?;
    Ok(series.info())
}

/// Reads a selection as `f32` (float64 files are converted), decoding only the pages it needs.
///
/// Semantics are bioio's `BioImage.get_image_dask_data(dimension_order_out, C=, Z=, T=)`, i.e.
/// bioio_base `transforms.compute_dim_specs` / `finalize_dims` applied to the standard dims
/// (the file's axes, plus T, C, Z, Y, X of length 1 where the file lacks them):
/// - an axis in the output order: an int keeps it with length 1, a list keeps those entries,
///   nothing keeps it whole;
/// - an axis not in the output order: an int selects that index (the axis is dropped), no
///   selection silently takes index 0 (bioio does not complain about size > 1), a list is
///   an error (`ConflictingArgumentsError` in bioio: "the specified dimension must be provided
///   in return_dims");
/// - output axes the file lacks are added with length 1; indices past the end are errors.
///
/// `dimension_order_out = None` (our extension, bioio would return everything as TCZYX) means
/// the file's axes minus the int-selected ones, in file order; list-selected axes the file lacks
/// are inserted at their place in `TCZYXS`.
pub fn read(path: &Path, sel: &Selection) -> Result<(Array, ImageInfo), ReadError> {
    let mut src = Src::open(path)?;
    let series = Series::build(&mut src)?;
    let info = series.info();
    let array = series.read(&mut src, sel, &info)?;
    Ok((array, info))
}

// ---------------------------------------------------------------------------------------------
// Byte source

struct Src {
    path: PathBuf,
    file: File,
    len: u64,
    le: bool,
    big: bool,
    first_ifd: u64,
}

impl Src {
    fn open(path: &Path) -> Result<Src, ReadError> {
        let io = |e| ReadError::Io { path: path.to_path_buf(), source: e };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 16];
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        let not = |reason: &str| ReadError::NotTiff { path: path.to_path_buf(), reason: reason.into() };
        if n < 8 {
            return Err(not("shorter than a TIFF header"));
        }
        let le = match &head[..2] {
            b"II" => true,
            b"MM" => false,
            _ => return Err(not("no II/MM byte-order mark")),
        };
        let u16_at = |i: usize| {
            if le {
                u16::from_le_bytes([head[i], head[i + 1]])
            } else {
                u16::from_be_bytes([head[i], head[i + 1]])
            }
        };
        let (big, first_ifd) = match u16_at(2) {
            42 => {
                let b = [head[4], head[5], head[6], head[7]];
                (false, if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as u64)
            }
            43 => {
                if n < 16 || u16_at(4) != 8 {
                    return Err(not("bad BigTIFF header"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                (true, if le { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
            }
            _ => return Err(not("bad magic number")),
        };
        Ok(Src { path: path.to_path_buf(), file, len, le, big, first_ifd })
    }

    fn corrupt(&self, reason: impl Into<String>) -> ReadError {
        ReadError::Corrupt { path: self.path.clone(), reason: reason.into() }
    }

    fn unsupported(&self, feature: impl Into<String>) -> ReadError {
        ReadError::Unsupported { path: self.path.clone(), feature: feature.into() }
    }

    fn read_at(&mut self, off: u64, n: u64) -> Result<Vec<u8>, ReadError> {
        if off.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(self.corrupt(format!("{n} bytes at offset {off} lie past the end of the file ({} bytes)", self.len)));
        }
        let mut buf = vec![0u8; n as usize];
        let path = self.path.clone();
        let io = |e| ReadError::Io { path: path.clone(), source: e };
        self.file.seek(SeekFrom::Start(off)).map_err(io)?;
        self.file.read_exact(&mut buf).map_err(io)?;
        Ok(buf)
    }

    fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(&self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }

    /// Offsets of every IFD in the main chain (reads only entry counts and next pointers).
    fn ifd_offsets(&mut self) -> Result<Vec<u64>, ReadError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut off = self.first_ifd;
        while off != 0 {
            if !seen.insert(off) {
                return Err(self.corrupt(format!("IFD chain loops back to offset {off}")));
            }
            if out.len() >= (1 << 24) {
                return Err(self.corrupt("more than 16M IFDs"));
            }
            let (cw, ew, nw) = if self.big { (8, 20, 8) } else { (2, 12, 4) };
            let cb = self.read_at(off, cw)?;
            let count = if self.big { self.u64(&cb) } else { self.u16(&cb) as u64 };
            let next_at = count.checked_mul(ew).and_then(|x| x.checked_add(off + cw)).ok_or_else(|| self.corrupt("IFD entry count overflows"))?;
            let nb = self.read_at(next_at, nw)?;
            out.push(off);
            off = if self.big { self.u64(&nb) } else { self.u32(&nb) as u64 };
        }
        if out.is_empty() {
            return Err(self.corrupt("no image file directory"));
        }
        Ok(out)
    }

    /// Parses one IFD into the tags the reader uses.
    fn page(&mut self, off: u64) -> Result<Page, ReadError> {
        let (cw, ew) = if self.big { (8u64, 20u64) } else { (2, 12) };
        let cb = self.read_at(off, cw)?;
        let count = if self.big { self.u64(&cb) } else { self.u16(&cb) as u64 };
        if count > 100_000 {
            return Err(self.corrupt(format!("IFD at {off} claims {count} entries")));
        }
        let raw = self.read_at(off + cw, count * ew)?;
        let mut p = Page::default();
        for e in raw.chunks_exact(ew as usize) {
            let tag = self.u16(&e[0..2]);
            let typ = self.u16(&e[2..4]);
            let (n, field) = if self.big { (self.u64(&e[4..12]), &e[12..20]) } else { (self.u32(&e[4..8]) as u64, &e[8..12]) };
            let wanted = matches!(tag, 254 | 256 | 257 | 258 | 259 | 262 | 270 | 273 | 277 | 278 | 279 | 282 | 283 | 284 | 317 | 322 | 323 | 324 | 325 | 339);
            if !wanted {
                continue;
            }
            let size = match typ {
                1 | 2 | 6 | 7 => 1u64,
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 | 16 | 17 | 18 => 8,
                _ => continue,
            };
            let total = n.checked_mul(size).filter(|&t| t <= self.len).ok_or_else(|| self.corrupt(format!("tag {tag} claims {n} values")))?;
            let inline = if self.big { 8 } else { 4 };
            let bytes = if total <= inline {
                field[..total as usize].to_vec()
            } else {
                let at = if self.big { self.u64(field) } else { self.u32(field) as u64 };
                self.read_at(at, total)?
            };
            if tag == 270 {
                if p.description.is_none() {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    p.description = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
                }
                continue;
            }
            let vals: Vec<f64> = bytes
                .chunks_exact(size as usize)
                .map(|c| match typ {
                    1 | 2 | 7 => c[0] as f64,
                    6 => c[0] as i8 as f64,
                    3 => self.u16(c) as f64,
                    8 => self.u16(c) as i16 as f64,
                    4 | 13 => self.u32(c) as f64,
                    9 => self.u32(c) as i32 as f64,
                    11 => f32::from_bits(self.u32(c)) as f64,
                    5 => {
                        let d = self.u32(&c[4..]);
                        if d == 0 {
                            f64::NAN
                        } else {
                            self.u32(c) as f64 / d as f64
                        }
                    }
                    10 => {
                        let d = self.u32(&c[4..]) as i32;
                        if d == 0 {
                            f64::NAN
                        } else {
                            self.u32(c) as i32 as f64 / d as f64
                        }
                    }
                    12 => f64::from_bits(self.u64(c)),
                    17 => self.u64(c) as i64 as f64,
                    _ => self.u64(c) as f64,
                })
                .collect();
            // Offsets and counts must stay exact beyond 2^53: re-read them as integers.
            let ints = || -> Vec<u64> {
                bytes
                    .chunks_exact(size as usize)
                    .map(|c| match size {
                        1 => c[0] as u64,
                        2 => self.u16(c) as u64,
                        4 => self.u32(c) as u64,
                        _ => self.u64(c),
                    })
                    .collect()
            };
            let first = vals.first().copied().unwrap_or(0.0);
            let as_usize = |v: f64| {
                if v.is_finite() && v >= 0.0 {
                    v as usize
                } else {
                    0
                }
            };
            match tag {
                254 => p.subfile_type = as_usize(first) as u32,
                256 => p.width = as_usize(first),
                257 => p.height = as_usize(first),
                258 => p.bits = vals.iter().map(|&v| as_usize(v)).collect(),
                259 => p.compression = as_usize(first) as u16,
                262 => {}
                273 | 324 => p.offsets = ints(),
                277 => p.spp = as_usize(first),
                278 => p.rows_per_strip = Some(as_usize(first)),
                279 | 325 => p.counts = ints(),
                282 => p.x_res = Some(first).filter(|v| v.is_finite() && *v > 0.0),
                283 => p.y_res = Some(first).filter(|v| v.is_finite() && *v > 0.0),
                284 => p.planar = as_usize(first) as u16,
                317 => p.predictor = as_usize(first) as u16,
                322 => p.tile_w = Some(as_usize(first)),
                323 => p.tile_h = Some(as_usize(first)),
                339 => p.formats = vals.iter().map(|&v| as_usize(v) as u16).collect(),
                _ => {}
            }
        }
        p.validate(self)?;
        Ok(p)
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Pages

#[derive(Debug, Clone)]
struct Page {
    subfile_type: u32,
    width: usize,
    height: usize,
    bits: Vec<usize>,
    formats: Vec<u16>,
    compression: u16,
    spp: usize,
    rows_per_strip: Option<usize>,
    planar: u16,
    predictor: u16,
    tile_w: Option<usize>,
    tile_h: Option<usize>,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    description: Option<String>,
    x_res: Option<f64>,
    y_res: Option<f64>,
    dtype: DType,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            subfile_type: 0,
            width: 0,
            height: 0,
            bits: vec![1],
            formats: vec![1],
            compression: 1,
            spp: 1,
            rows_per_strip: None,
            planar: 1,
            predictor: 1,
            tile_w: None,
            tile_h: None,
            offsets: Vec::new(),
            counts: Vec::new(),
            description: None,
            x_res: None,
            y_res: None,
            dtype: DType::U8,
        }
    }
}

impl Page {
    fn validate(&mut self, src: &Src) -> Result<(), ReadError> {
        if self.width == 0 || self.height == 0 {
            return Err(src.corrupt("page has no ImageWidth/ImageLength"));
        }
        if self.spp == 0 {
            return Err(src.corrupt("SamplesPerPixel is 0"));
        }
        let bits = self.bits[0];
        if self.bits.iter().any(|&b| b != bits) {
            return Err(src.unsupported(format!("mixed BitsPerSample {:?}", self.bits)));
        }
        let fmt = self.formats.first().copied().unwrap_or(1);
        self.dtype = match (bits, fmt) {
            (8, 1) | (8, 4) => DType::U8,
            (16, 1) | (16, 4) => DType::U16,
            (32, 1) | (32, 4) => DType::U32,
            (8, 2) => DType::I8,
            (16, 2) => DType::I16,
            (32, 2) => DType::I32,
            (32, 3) => DType::F32,
            (64, 3) => DType::F64,
            _ => return Err(src.unsupported(format!("{bits}-bit samples of SampleFormat {fmt}"))),
        };
        if !matches!(self.planar, 1 | 2) {
            return Err(src.corrupt(format!("PlanarConfiguration {}", self.planar)));
        }
        if self.spp == 1 {
            self.planar = 1;
        }
        if self.offsets.is_empty() {
            return Err(src.corrupt("page has no strip or tile offsets"));
        }
        if self.width.checked_mul(self.height).and_then(|n| n.checked_mul(self.spp)).is_none_or(|n| n > (1 << 40)) {
            return Err(src.corrupt("page dimensions overflow"));
        }
        Ok(())
    }

    fn elems(&self) -> usize {
        self.width * self.height * self.spp
    }

    fn same_kind(&self, o: &Page) -> bool {
        self.width == o.width && self.height == o.height && self.spp == o.spp && self.dtype == o.dtype && self.planar == o.planar
    }

    /// The page's own axes/shape: `YX`, `YXS` (contiguous samples) or `SYX` (separate planes).
    fn in_page(&self) -> (Vec<char>, Vec<usize>) {
        match (self.spp, self.planar) {
            (1, _) => (vec!['Y', 'X'], vec![self.height, self.width]),
            (s, 2) => (vec!['S', 'Y', 'X'], vec![s, self.height, self.width]),
            (s, _) => (vec!['Y', 'X', 'S'], vec![self.height, self.width, s]),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Series: how pages map onto axes

/// Where page `k` of the series lives.
enum Pages {
    /// The IFD offsets of the series, in order.
    Ifds(Vec<u64>),
    /// ImageJ files over 4 GB store one IFD; later pages follow the first page's data contiguously.
    Contiguous { first: Box<Page>, stride: u64, count: usize },
}

struct Series {
    /// Full (unsqueezed) axes as tifffile names them before squeezing; the leading
    /// `n_page_axes` index pages (row-major), the rest are the page's own axes.
    axes: Vec<char>,
    shape: Vec<usize>,
    n_page_axes: usize,
    /// OME / ImageJ / generic series drop length-1 axes other than Y and X (shaped ones keep them).
    squeeze: bool,
    pages: Pages,
    first: Page,
    pixel_sizes: [Option<f64>; 3],
    channel_names: Vec<String>,
}

impl Series {
    fn build(src: &mut Src) -> Result<Series, ReadError> {
        let offsets = src.ifd_offsets()?;
        let first = src.page(offsets[0])?;
        let desc = first.description.clone().unwrap_or_default();
        let (in_axes, in_shape) = first.in_page();
        let base = |axes: Vec<char>, shape: Vec<usize>, npa: usize, pages: Pages, first: &Page| Series {
            axes,
            shape,
            n_page_axes: npa,
            squeeze: true,
            pages,
            first: first.clone(),
            pixel_sizes: [None; 3],
            channel_names: Vec::new(),
        };

        // OME-XML: DimensionOrder XY?? -> page axes are the last three letters, slowest first.
        if let Some(px) = ome::parse_ome(&desc) {
            if px.size_x == first.width && px.size_y == first.height && px.first_ifd < offsets.len() {
                let spp = first.spp;
                let mut page_axes = Vec::new();
                let mut page_shape = Vec::new();
                for d in px.dimension_order[2..].chars().rev() {
                    let n = match d {
                        'Z' => px.size_z,
                        'C' if spp > 1 => (px.size_c / spp).max(1),
                        'C' => px.size_c,
                        _ => px.size_t,
                    };
                    page_axes.push(d);
                    page_shape.push(n);
                }
                let available = offsets.len() - px.first_ifd;
                let npages = page_shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)).filter(|&n| n <= available);
                let Some(npages) = npages else {
                    return Err(src.corrupt(format!("OME-XML describes {page_shape:?} planes, the file has {available} pages")));
                };
                let mut axes = page_axes.clone();
                axes.extend(&in_axes);
                let mut shape = page_shape.clone();
                shape.extend(&in_shape);
                let mut s = base(axes, shape, page_axes.len(), Pages::Ifds(offsets[px.first_ifd..].iter().copied().take(npages).collect()), &first);
                s.pixel_sizes = px.physical_sizes;
                s.channel_names = px.channel_names;
                return Ok(s);
            }
        }

        // ImageJ hyperstack: pages interleaved as T, Z, C (C fastest).
        if let Some(ij) = ome::parse_imagej(&desc) {
            let (c, z, t) = (ij.channels.unwrap_or(1), ij.slices.unwrap_or(1), ij.frames.unwrap_or(1));
            let czt = c.checked_mul(z).and_then(|n| n.checked_mul(t)).unwrap_or(0);
            let (page_axes, page_shape) = if czt == ij.images {
                (vec!['T', 'Z', 'C'], vec![t, z, c])
            } else if czt == 1 {
                (vec!['I'], vec![ij.images])
            } else {
                (vec![], vec![])
            };
            if !page_axes.is_empty() {
                let npages = ij.images;
                let pages = if offsets.len() < npages {
                    // tifffile's ImageJ >4GB rule: uncompressed data stored contiguously.
                    let contiguous = first.compression == 1 && first.offsets.len() == 1 && first.tile_w.is_none();
                    if !contiguous {
                        return Err(src.corrupt(format!("ImageJ description says {npages} images, the file has {} pages", offsets.len())));
                    }
                    let stride = (first.elems() * dtype_size(first.dtype)) as u64;
                    let end = stride.checked_mul(npages as u64).and_then(|n| n.checked_add(first.offsets[0]));
                    if end.is_none_or(|e| e > src.len) {
                        return Err(src.corrupt(format!("ImageJ description says {npages} images, the file is too short for them")));
                    }
                    Pages::Contiguous { first: Box::new(first.clone()), stride, count: npages }
                } else {
                    Pages::Ifds(offsets[..npages].to_vec())
                };
                let mut axes = page_axes.clone();
                axes.extend(&in_axes);
                let mut shape = page_shape;
                shape.extend(&in_shape);
                let mut s = base(axes, shape, page_axes.len(), pages, &first);
                s.pixel_sizes = [ij.spacing, first.y_res.map(|r| 1.0 / r), first.x_res.map(|r| 1.0 / r)];
                return Ok(s);
            }
        }

        // tifffile's shaped description.
        if let Some((shape, axes)) = ome::parse_shaped(&desc) {
            let k = in_shape.len();
            if shape.len() >= k && shape[shape.len() - k..] == in_shape[..] {
                let npa = shape.len() - k;
                let npages = shape[..npa].iter().try_fold(1usize, |a, &n| a.checked_mul(n)).unwrap_or(usize::MAX);
                if npages >= 1 && npages <= offsets.len() {
                    let axes: Vec<char> = match axes {
                        Some(a) => a.chars().collect(),
                        None => std::iter::repeat_n('Q', npa).chain(in_axes.iter().copied()).collect(),
                    };
                    let mut s = base(axes, shape, npa, Pages::Ifds(offsets[..npages].to_vec()), &first);
                    s.squeeze = false;
                    return Ok(s);
                }
            }
        }

        // Generic: the run of pages shaped like the first one (tifffile's `I` axis).
        let mut ifds = vec![offsets[0]];
        for &off in &offsets[1..] {
            let p = src.page(off)?;
            if !p.same_kind(&first) || p.subfile_type & 1 != 0 {
                break;
            }
            ifds.push(off);
        }
        let (axes, shape, npa) = if ifds.len() == 1 {
            (in_axes, in_shape, 0)
        } else {
            let mut a = vec!['I'];
            a.extend(&in_axes);
            let mut s = vec![ifds.len()];
            s.extend(&in_shape);
            (a, s, 1)
        };
        Ok(base(axes, shape, npa, Pages::Ifds(ifds), &first))
    }

    /// Axes visible to users: squeezed like tifffile, then `Q`/`I` renamed like bioio-tifffile.
    /// Returns, per visible axis, its letter and index into the full axes.
    fn visible(&self) -> Vec<(char, usize)> {
        let kept: Vec<usize> = (0..self.axes.len()).filter(|&i| !self.squeeze || self.shape[i] != 1 || matches!(self.axes[i], 'Y' | 'X')).collect();
        let meta: Vec<char> = kept.iter().map(|&i| self.axes[i]).collect();
        // bioio `Reader._guess_dim_order(shape)`: the last ndim letters of TCZYX.
        let default = "TCZYX";
        let guessed: Vec<char> = default[default.len().saturating_sub(meta.len())..].chars().collect();
        let mut best: Vec<char> = Vec::new();
        for &m in &meta {
            if m != 'Q' && m != 'I' {
                best.push(m);
                continue;
            }
            match guessed.iter().find(|g| !best.contains(g) && !meta.contains(g)) {
                Some(&g) => best.push(g),
                None => best.push(m),
            }
        }
        best.into_iter().zip(kept).collect()
    }

    fn info(&self) -> ImageInfo {
        let vis = self.visible();
        ImageInfo {
            axes: vis.iter().map(|v| v.0).collect(),
            shape: vis.iter().map(|v| self.shape[v.1]).collect(),
            dtype: self.first.dtype,
            pixel_sizes: self.pixel_sizes,
            channel_names: self.channel_names.clone(),
        }
    }

    fn page_at(&self, src: &mut Src, k: usize) -> Result<Page, ReadError> {
        match &self.pages {
            Pages::Ifds(v) => {
                let off = *v.get(k).ok_or_else(|| src.corrupt(format!("page {k} of the series is missing (the file has {} pages for it)", v.len())))?;
                if k == 0 {
                    return Ok(self.first.clone());
                }
                let p = src.page(off)?;
                if !p.same_kind(&self.first) {
                    return Err(src.corrupt(format!("page {k} differs in shape or type from the first page")));
                }
                Ok(p)
            }
            Pages::Contiguous { first, stride, count } => {
                if k >= *count {
                    return Err(src.corrupt(format!("page {k} of the series is missing")));
                }
                let mut p = (**first).clone();
                let shift = stride.checked_mul(k as u64).ok_or_else(|| src.corrupt("page offset overflows"))?;
                for o in &mut p.offsets {
                    *o = o.checked_add(shift).ok_or_else(|| src.corrupt("page offset overflows"))?;
                }
                Ok(p)
            }
        }
    }

    fn read(&self, src: &mut Src, sel: &Selection, info: &ImageInfo) -> Result<Array, ReadError> {
        let vis = self.visible();
        let path = src.path.clone();
        let requested: Vec<(char, &Index)> =
            [('C', &sel.c), ('Z', &sel.z), ('T', &sel.t)].into_iter().filter_map(|(a, i)| i.as_ref().map(|i| (a, i))).collect();
        let req = |a: char| requested.iter().find(|r| r.0 == a).map(|r| r.1);
        let size_of = |a: char| vis.iter().find(|v| v.0 == a).map(|v| self.shape[v.1]).unwrap_or(1);

        // The output order.
        let out_axes: Vec<char> = match &sel.dimension_order_out {
            Some(o) => {
                let o: Vec<char> = o.to_ascii_uppercase().chars().collect();
                let mut seen = HashSet::new();
                if let Some(d) = o.iter().find(|c| !seen.insert(**c)) {
                    return Err(ReadError::BadSelection {
                        path,
                        requested: o.iter().collect(),
                        available: info.axes.clone(),
                        reason: format!("axis {d} appears twice"),
                    });
                }
                o
            }
            None => {
                let mut o: Vec<char> = vis.iter().map(|v| v.0).filter(|&a| !matches!(req(a), Some(Index::One(_)))).collect();
                let order = "TCZYXS";
                for (a, i) in &requested {
                    if matches!(i, Index::Many(_)) && !o.contains(a) {
                        let rank = order.find(*a).unwrap_or(0);
                        let at = o.iter().position(|c| order.find(*c).is_some_and(|r| r > rank)).unwrap_or(o.len());
                        o.insert(at, *a);
                    }
                }
                o
            }
        };

        // Per-axis index lists (bioio compute_dim_specs), for visible axes and absent C/Z/T.
        let mut picks: Vec<(char, Pick)> = Vec::new();
        let mut all_axes: Vec<char> = vis.iter().map(|v| v.0).collect();
        for a in ['T', 'C', 'Z'] {
            if !all_axes.contains(&a) {
                all_axes.push(a);
            }
        }
        for &a in &all_axes {
            let size = size_of(a);
            let list = match (out_axes.contains(&a), req(a)) {
                (_, Some(Index::One(i))) => Pick::List(vec![*i]),
                (true, Some(Index::Many(v))) => Pick::List(v.clone()),
                (false, Some(Index::Many(v))) => {
                    return Err(ReadError::BadSelection {
                        path,
                        requested: out_axes.iter().collect(),
                        available: info.axes.clone(),
                        reason: format!("{a}={v:?} selects several indices, so {a} must be among the output axes"),
                    });
                }
                (true, None) => Pick::All(size),
                (false, None) => Pick::List(vec![0]),
            };
            if let Some(bad) = list.out_of(size) {
                return Err(ReadError::OutOfRange { path, axis: a, index: bad, size });
            }
            picks.push((a, list));
        }
        let pick_of = |a: char| picks.iter().find(|p| p.0 == a).map(|p| p.1.clone());

        // Index lists along the full axes: visible axes take their picks, squeezed ones index 0.
        let mut full: Vec<Pick> = vec![Pick::List(vec![0]); self.axes.len()];
        for &(letter, fi) in &vis {
            full[fi] = pick_of(letter).unwrap_or_else(|| Pick::List(vec![0]));
        }

        let mid = self.gather(src, &full)?;
        let mid_shape: Vec<usize> = full.iter().map(|l| l.len()).collect();

        // Output axes -> full-axis index (None: padded length-1 axis).
        let mut src_axis: Vec<Option<usize>> = Vec::new();
        let mut out_shape = Vec::new();
        for &a in &out_axes {
            match vis.iter().find(|v| v.0 == a) {
                Some(&(_, fi)) => {
                    src_axis.push(Some(fi));
                    out_shape.push(mid_shape[fi]);
                }
                None => {
                    src_axis.push(None);
                    out_shape.push(pick_of(a).map(|l| l.len()).unwrap_or(1));
                }
            }
        }
        // Visible axes left out of the output must have been reduced to one index.
        for (&(a, fi), _) in vis.iter().zip(0..) {
            if !out_axes.contains(&a) && mid_shape[fi] != 1 {
                return Err(ReadError::BadSelection {
                    path,
                    requested: out_axes.iter().collect(),
                    available: info.axes.clone(),
                    reason: format!("axis {a} is neither selected nor in the output"),
                });
            }
        }
        let data = permute(mid, &mid_shape, &src_axis, &out_shape);
        Array::new(out_shape, data).map_err(|e| src.corrupt(e.to_string()))
    }

    /// Decodes the selected pages into an array over the full axes (shape = lengths of `full`).
    fn gather(&self, src: &mut Src, full: &[Pick]) -> Result<Vec<f32>, ReadError> {
        let npa = self.n_page_axes;
        let page_strides = crate::array::strides_of(&self.shape[..npa]);
        let in_sel = &full[npa..];
        let block: usize = in_sel.iter().map(|l| l.len()).product();
        let nblocks: usize = full[..npa].iter().map(|l| l.len()).product();
        block.checked_mul(nblocks).ok_or_else(|| src.corrupt("selection too large"))?;
        // Grown page by page: metadata claiming absurd sizes fails on missing pages, not in malloc.
        let mut out: Vec<f32> = Vec::new();
        let in_shape = &self.shape[npa..];
        let whole_page = in_sel.iter().zip(in_shape).all(|(l, &n)| match l {
            Pick::All(m) => *m == n,
            Pick::List(v) => v.len() == n && v.iter().enumerate().all(|(i, &j)| i == j),
        });
        let mut counter = vec![0usize; npa];
        for _ in 0..nblocks {
            let k: usize = (0..npa).map(|i| full[i].at(counter[i]) * page_strides[i]).sum();
            let page = self.page_at(src, k)?;
            let values = decode_page(src, &page)?;
            if whole_page {
                out.extend_from_slice(&values);
            } else {
                let st = crate::array::strides_of(in_shape);
                let mut idx = vec![0usize; in_sel.len()];
                for _ in 0..block {
                    let off: usize = (0..idx.len()).map(|i| in_sel[i].at(idx[i]) * st[i]).sum();
                    out.push(values[off]);
                    for i in (0..idx.len()).rev() {
                        idx[i] += 1;
                        if idx[i] < in_sel[i].len() {
                            break;
                        }
                        idx[i] = 0;
                    }
                }
            }
            for i in (0..npa).rev() {
                counter[i] += 1;
                if counter[i] < full[i].len() {
                    break;
                }
                counter[i] = 0;
            }
        }
        Ok(out)
    }
}

/// The indices taken along one axis; `All` stays unmaterialized so a corrupt size costs nothing.
#[derive(Debug, Clone)]
enum Pick {
    All(usize),
    List(Vec<usize>),
}

impl Pick {
    fn len(&self) -> usize {
        match self {
            Pick::All(n) => *n,
            Pick::List(v) => v.len(),
        }
    }
    fn at(&self, i: usize) -> usize {
        match self {
            Pick::All(_) => i,
            Pick::List(v) => v[i],
        }
    }
    /// The first index not below `size`.
    fn out_of(&self, size: usize) -> Option<usize> {
        match self {
            Pick::All(n) => (*n > size).then_some(size),
            Pick::List(v) => v.iter().copied().find(|&i| i >= size),
        }
    }
}

/// Reorders `data` (row-major over `shape`) into the output axes; `src_axis[j]` names the input
/// axis of output axis `j` (None: a length-1 padding axis). Input axes not named have length 1.
fn permute(data: Vec<f32>, shape: &[usize], src_axis: &[Option<usize>], out_shape: &[usize]) -> Vec<f32> {
    let order: Vec<usize> = src_axis.iter().flatten().copied().filter(|&a| shape[a] > 1).collect();
    if order.windows(2).all(|w| w[0] < w[1]) {
        return data;
    }
    let st = crate::array::strides_of(shape);
    let ost: Vec<usize> = src_axis.iter().map(|a| a.map(|a| st[a]).unwrap_or(0)).collect();
    let n = data.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..n {
        let off: usize = idx.iter().zip(&ost).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for i in (0..idx.len()).rev() {
            idx[i] += 1;
            if idx[i] < out_shape[i] {
                break;
            }
            idx[i] = 0;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Chunk decoding

fn dtype_size(d: DType) -> usize {
    match d {
        DType::U8 | DType::I8 => 1,
        DType::U16 | DType::I16 => 2,
        DType::U32 | DType::I32 | DType::F32 => 4,
        DType::F64 => 8,
    }
}

/// Decodes a whole page into its own layout (`YX`, `YXS` or `SYX`), as f32.
///
/// All chunks are decompressed (each must yield its full size) before the page buffer is
/// allocated, so a corrupt width or height fails on missing data instead of a huge allocation.
fn decode_page(src: &mut Src, p: &Page) -> Result<Vec<f32>, ReadError> {
    let (w, h, spp) = (p.width, p.height, p.spp);
    let bps = dtype_size(p.dtype);
    let separate = p.planar == 2;
    let planes = if separate { spp } else { 1 };
    let cs = if separate { 1 } else { spp }; // samples per pixel inside a chunk

    if let (Some(tw), Some(th)) = (p.tile_w, p.tile_h) {
        if tw == 0 || th == 0 {
            return Err(src.corrupt("tile size 0"));
        }
        let (across, down) = (w.div_ceil(tw), h.div_ceil(th));
        let per_plane = across * down;
        check_chunks(src, p, per_plane * planes)?;
        let tile_bytes = tw.checked_mul(th).and_then(|n| n.checked_mul(cs * bps)).ok_or_else(|| src.corrupt("tile size overflows"))?;
        let raws = (0..per_plane * planes).map(|i| chunk(src, p, i, tile_bytes)).collect::<Result<Vec<_>, _>>()?;
        let mut out = vec![0f32; p.elems()];
        let mut vals = vec![0f32; tw * th * cs];
        for (i, raw) in raws.iter().enumerate() {
            let (plane, t) = (i / per_plane, i % per_plane);
            let (ty, tx) = (t / across, t % across);
            convert(src, p, &raw[..tile_bytes], tw * cs, cs, &mut vals)?;
            let rows = th.min(h - ty * th);
            let cols = tw.min(w - tx * tw);
            for r in 0..rows {
                let y = ty * th + r;
                let from = &vals[r * tw * cs..r * tw * cs + cols * cs];
                let at = if separate { plane * w * h + y * w + tx * tw } else { (y * w + tx * tw) * spp };
                out[at..at + cols * cs].copy_from_slice(from);
            }
        }
        Ok(out)
    } else {
        let rps = p.rows_per_strip.filter(|&r| r > 0).unwrap_or(h).min(h);
        let per_plane = h.div_ceil(rps);
        check_chunks(src, p, per_plane * planes)?;
        let mut raws = Vec::with_capacity(per_plane * planes);
        for plane in 0..planes {
            for s in 0..per_plane {
                let n = rps.min(h - s * rps) * w * cs;
                raws.push((n, chunk(src, p, plane * per_plane + s, n * bps)?));
            }
        }
        // Strips cover whole rows, and planes follow each other: they fill the page in order.
        let mut out = vec![0f32; p.elems()];
        let mut at = 0;
        for (n, raw) in raws {
            convert(src, p, &raw[..n * bps], w * cs, cs, &mut out[at..at + n])?;
            at += n;
        }
        Ok(out)
    }
}

fn check_chunks(src: &Src, p: &Page, n: usize) -> Result<(), ReadError> {
    if p.offsets.len() < n || p.counts.len() < n {
        return Err(src.corrupt(format!("page needs {n} strips/tiles, has {} offsets and {} byte counts", p.offsets.len(), p.counts.len())));
    }
    Ok(())
}

/// Reads and decompresses chunk `i`; the result holds at least `expected` bytes.
fn chunk(src: &mut Src, p: &Page, i: usize, expected: usize) -> Result<Vec<u8>, ReadError> {
    let (off, count) = (p.offsets[i], p.counts[i]);
    let raw = if p.compression == 1 {
        // Uncompressed: some writers leave StripByteCounts short or zero; trust the geometry.
        src.read_at(off, expected as u64)?
    } else {
        src.read_at(off, count)?
    };
    let data = match p.compression {
        1 => raw,
        5 => {
            let mut out = Vec::new();
            let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let res = dec.into_vec(&mut out).decode(&raw);
            if let Err(e) = res.status {
                if out.len() < expected {
                    return Err(src.corrupt(format!("LZW chunk {i}: {e}")));
                }
            }
            out
        }
        // libdeflate decodes a whole chunk of known size about twice as fast as miniz_oxide;
        // miniz_oxide stays as the fallback for chunks whose size the header misstates.
        8 | 32946 if expected > 0 => match inflate_exact(&raw, expected) {
            Some(out) => out,
            None => miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&raw, expected * 2 + 1024)
                .or_else(|e| if e.output.len() >= expected { Ok(e.output) } else { Err(e) })
                .map_err(|e| src.corrupt(format!("Deflate chunk {i}: {e:?}")))?,
        },
        8 | 32946 => miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&raw, expected.max(1) * 2 + 1024)
            .or_else(|e| if e.output.len() >= expected { Ok(e.output) } else { Err(e) })
            .map_err(|e| src.corrupt(format!("Deflate chunk {i}: {e:?}")))?,
        32773 => packbits(&raw, expected),
        50000 => {
            let mut out = Vec::new();
            let dec = ruzstd::decoding::StreamingDecoder::new(&raw[..]).map_err(|e| src.corrupt(format!("Zstd chunk {i}: {e}")))?;
            dec.take(expected as u64).read_to_end(&mut out).map_err(|e| src.corrupt(format!("Zstd chunk {i}: {e}")))?;
            out
        }
        c => return Err(src.unsupported(format!("compression {c}"))),
    };
    if data.len() < expected {
        return Err(src.corrupt(format!("chunk {i} decodes to {} bytes, expected {expected}", data.len())));
    }
    Ok(data)
}

fn packbits(src: &[u8], expected: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < src.len() && out.len() < expected {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let k = (n as usize + 1).min(src.len() - i);
            out.extend_from_slice(&src[i..i + k]);
            i += k;
        } else if n != -128 {
            if let Some(&b) = src.get(i) {
                out.extend(std::iter::repeat_n(b, (1 - n as isize) as usize));
            }
            i += 1;
        }
    }
    out
}

/// Turns decompressed bytes into f32 values, undoing the predictor row by row.
/// `row` = samples per chunk row, `stride` = samples per pixel inside the chunk.
/// Inflates a zlib stream whose decoded size is known; `None` if it does not decode to exactly that.
fn inflate_exact(raw: &[u8], expected: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; expected];
    let mut d = libdeflater::Decompressor::new();
    match d.zlib_decompress(raw, &mut out) {
        Ok(n) if n == expected => Some(out),
        _ => None,
    }
}

fn convert(src: &Src, p: &Page, bytes: &[u8], row: usize, stride: usize, out: &mut [f32]) -> Result<(), ReadError> {
    let le = src.le;
    let bps = dtype_size(p.dtype);
    match p.predictor {
        1 => {}
        2 if !matches!(p.dtype, DType::F32 | DType::F64) => {}
        3 if matches!(p.dtype, DType::F32 | DType::F64) => {
            // Floating-point predictor: bytes are byte-differenced, then shuffled MSB plane first.
            let mut buf = bytes.to_vec();
            for r in buf.chunks_mut(row * bps) {
                for i in stride..r.len() {
                    r[i] = r[i].wrapping_add(r[i - stride]);
                }
                let n = r.len() / bps;
                let shuffled = r.to_vec();
                for j in 0..n {
                    for k in 0..bps {
                        r[j * bps + k] = shuffled[k * n + j];
                    }
                }
            }
            for (o, c) in out.iter_mut().zip(buf.chunks_exact(bps)) {
                *o = if bps == 4 {
                    f32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                };
            }
            return Ok(());
        }
        other => return Err(src.unsupported(format!("predictor {other} for {}", p.dtype.name()))),
    }
    let pred = p.predictor == 2;
    macro_rules! ints {
        ($raw:ty, $val:ty) => {{
            let n = std::mem::size_of::<$raw>();
            // The common case (no predictor) as branch-free loops the compiler vectorises.
            if !pred {
                let chunks = out.iter_mut().zip(bytes.chunks_exact(n));
                if le {
                    for (o, c) in chunks {
                        *o = <$raw>::from_le_bytes(c.try_into().unwrap_or_default()) as $val as f32;
                    }
                } else {
                    for (o, c) in chunks {
                        *o = <$raw>::from_be_bytes(c.try_into().unwrap_or_default()) as $val as f32;
                    }
                }
                return Ok(());
            }
            let mut prev: Vec<$raw> = vec![0; stride];
            for (j, (o, c)) in out.iter_mut().zip(bytes.chunks_exact(n)).enumerate() {
                let mut a = [0u8; std::mem::size_of::<$raw>()];
                a.copy_from_slice(c);
                let mut v = if le { <$raw>::from_le_bytes(a) } else { <$raw>::from_be_bytes(a) };
                if pred {
                    let col = j % row;
                    if col >= stride {
                        v = v.wrapping_add(prev[col % stride]);
                    }
                    prev[col % stride] = v;
                }
                *o = v as $val as f32;
            }
        }};
    }
    match p.dtype {
        DType::U8 => ints!(u8, u8),
        DType::I8 => ints!(u8, i8),
        DType::U16 => ints!(u16, u16),
        DType::I16 => ints!(u16, i16),
        DType::U32 => ints!(u32, u32),
        DType::I32 => ints!(u32, i32),
        DType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                let a = [c[0], c[1], c[2], c[3]];
                *o = if le { f32::from_le_bytes(a) } else { f32::from_be_bytes(a) };
            }
        }
        DType::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                *o = (if le { f64::from_le_bytes(a) } else { f64::from_be_bytes(a) }) as f32;
            }
        }
    }
    Ok(())
}
