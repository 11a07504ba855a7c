//! OME-TIFF writing: one uncompressed little-endian page per (T, C, Z) plane in `XYZCT` order,
//! the OME-XML on the first page with one `TiffData` per plane, so tifffile, bioio and Fiji
//! agree on the axes. BigTIFF when the file would pass 4 GB. Written to a temp file in the same
//! folder and renamed into place, so readers never see half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ome::xml_escape;
use super::{DType, WriteError};
use crate::array::Array;

/// Writes `data` (whose axes are named by `axes`, a subset of `TCZYX` holding Y and X, in any
/// order) as an OME-TIFF of `dtype` (uint8 and uint16 round half to even and clamp, NaN -> 0;
/// float32 as is). `pixel_sizes` are (Z, Y, X) in microns.
pub fn write_ome_tiff(path: &Path, data: &Array, axes: &str, dtype: DType, pixel_sizes: [Option<f64>; 3]) -> Result<(), WriteError> {
    let unsupported = |what: String| WriteError::Unsupported { what };
    let axes: Vec<char> = axes.to_ascii_uppercase().chars().collect();
    if axes.len() != data.ndim() {
        return Err(unsupported(format!("{}-d data with axes `{}`", data.ndim(), axes.iter().collect::<String>())));
    }
    for (i, a) in axes.iter().enumerate() {
        if !"TCZYX".contains(*a) || axes[..i].contains(a) {
            return Err(unsupported(format!("axes `{}` (need distinct letters from TCZYX)", axes.iter().collect::<String>())));
        }
    }
    if !axes.contains(&'Y') || !axes.contains(&'X') {
        return Err(unsupported(format!("axes `{}` without Y and X", axes.iter().collect::<String>())));
    }
    let (type_name, bps, format) = match dtype {
        DType::U8 => ("uint8", 1usize, 1u16),
        DType::U16 => ("uint16", 2, 1),
        DType::F32 => ("float", 4, 3),
        other => return Err(unsupported(format!("OME-TIFF of {}", other.name()))),
    };

    // Strides of the input for T, C, Z, Y, X (0 for axes it lacks, which have length 1).
    let strides = data.strides();
    let mut size = [1usize; 5];
    let mut stride = [0usize; 5];
    for (k, a) in "TCZYX".chars().enumerate() {
        if let Some(i) = axes.iter().position(|&c| c == a) {
            size[k] = data.shape()[i];
            stride[k] = strides[i];
        }
    }
    let [nt, nc, nz, ny, nx] = size;
    if ny == 0 || nx == 0 || nt * nc * nz == 0 {
        return Err(unsupported("an empty image".into()));
    }
    let planes = nt * nc * nz;
    let plane_bytes = (ny * nx * bps) as u64;

    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let xml = ome_xml(&name, type_name, size, pixel_sizes);
    let big = plane_bytes * planes as u64 + xml.len() as u64 + 1024 * planes as u64 > u32::MAX as u64 - (1 << 20);

    let tmp = temp_path(path);
    let io = |e: std::io::Error| WriteError::Io { path: path.to_path_buf(), source: e };
    let result = (|| -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let header_len: u64 = if big { 16 } else { 8 };
        if big {
            w.write_all(b"II\x2b\x00\x08\x00\x00\x00")?;
            w.write_all(&header_len.to_le_bytes())?;
        } else {
            w.write_all(b"II\x2a\x00")?;
            w.write_all(&(header_len as u32).to_le_bytes())?;
        }
        let mut pos = header_len;
        let mut row = Vec::with_capacity(nx * bps);
        let mut page = 0usize;
        for t in 0..nt {
            for c in 0..nc {
                for z in 0..nz {
                    let desc = if page == 0 { Some(xml.as_str()) } else { None };
                    let last = page + 1 == planes;
                    let block = ifd_block(big, nx, ny, bps, format, desc, pos, plane_bytes, last);
                    w.write_all(&block)?;
                    pos += block.len() as u64;
                    let base = t * stride[0] + c * stride[1] + z * stride[2];
                    for y in 0..ny {
                        row.clear();
                        let start = base + y * stride[3];
                        for x in 0..nx {
                            let v = data.data()[start + x * stride[4]];
                            match dtype {
                                DType::U8 => row.push(to_int(v, 255.0) as u8),
                                DType::U16 => row.extend_from_slice(&(to_int(v, 65535.0) as u16).to_le_bytes()),
                                _ => row.extend_from_slice(&v.to_le_bytes()),
                            }
                        }
                        w.write_all(&row)?;
                    }
                    pos += plane_bytes;
                    // Keep the next IFD word-aligned.
                    if pos % 2 == 1 && !last {
                        w.write_all(&[0])?;
                        pos += 1;
                    }
                    page += 1;
                }
            }
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Round half to even (numpy's `rint`), clamp to the type's range, NaN to 0.
fn to_int(v: f32, max: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.round_ties_even().clamp(0.0, max)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn ome_xml(name: &str, type_name: &str, size: [usize; 5], pixel_sizes: [Option<f64>; 3]) -> String {
    let [nt, nc, nz, ny, nx] = size;
    let mut phys = String::new();
    for (axis, v) in ["Z", "Y", "X"].iter().zip(pixel_sizes) {
        if let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) {
            phys.push_str(&format!(" PhysicalSize{axis}=\"{v}\""));
        }
    }
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    s.push_str("<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" Creator=\"cytodl-runtime\">");
    s.push_str(&format!("<Image ID=\"Image:0\" Name=\"{}\">", xml_escape(name)));
    s.push_str(&format!(
        "<Pixels ID=\"Pixels:0\" DimensionOrder=\"XYZCT\" Type=\"{type_name}\" SizeX=\"{nx}\" SizeY=\"{ny}\" SizeZ=\"{nz}\" SizeC=\"{nc}\" SizeT=\"{nt}\"{phys} BigEndian=\"false\" Interleaved=\"false\">"
    ));
    for c in 0..nc {
        s.push_str(&format!("<Channel ID=\"Channel:0:{c}\" SamplesPerPixel=\"1\"/>"));
    }
    let mut ifd = 0;
    for t in 0..nt {
        for c in 0..nc {
            for z in 0..nz {
                s.push_str(&format!("<TiffData IFD=\"{ifd}\" FirstZ=\"{z}\" FirstC=\"{c}\" FirstT=\"{t}\" PlaneCount=\"1\"/>"));
                ifd += 1;
            }
        }
    }
    s.push_str("</Pixels></Image></OME>");
    s
}

/// One page's IFD followed by its out-of-line values; its single strip follows right after.
#[allow(clippy::too_many_arguments)]
fn ifd_block(big: bool, nx: usize, ny: usize, bps: usize, format: u16, desc: Option<&str>, at: u64, plane_bytes: u64, last: bool) -> Vec<u8> {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    const LONG8: u16 = 16;
    let short = |v: u16| v.to_le_bytes().to_vec();
    let long = |v: u32| v.to_le_bytes().to_vec();
    let offset_type = if big { LONG8 } else { LONG };
    let off_bytes = |v: u64| {
        if big {
            v.to_le_bytes().to_vec()
        } else {
            (v as u32).to_le_bytes().to_vec()
        }
    };

    let mut entries: Vec<(u16, u16, u64, Vec<u8>)> = vec![
        (256, LONG, 1, long(nx as u32)),
        (257, LONG, 1, long(ny as u32)),
        (258, SHORT, 1, short(bps as u16 * 8)),
        (259, SHORT, 1, short(1)),
        (262, SHORT, 1, short(1)),
    ];
    if let Some(d) = desc {
        let mut b = d.as_bytes().to_vec();
        b.push(0);
        entries.push((270, ASCII, b.len() as u64, b));
    }
    entries.push((273, offset_type, 1, off_bytes(0)));
    entries.push((277, SHORT, 1, short(1)));
    entries.push((278, LONG, 1, long(ny as u32)));
    entries.push((279, offset_type, 1, off_bytes(plane_bytes)));
    entries.push((284, SHORT, 1, short(1)));
    entries.push((339, SHORT, 1, short(format)));

    let (count_w, entry_w, next_w, inline) = if big { (8u64, 20u64, 8u64, 8usize) } else { (2, 12, 4, 4) };
    let head = count_w + entry_w * entries.len() as u64 + next_w;
    let extra: u64 = entries.iter().filter(|e| e.3.len() > inline).map(|e| (e.3.len() as u64).next_multiple_of(2)).sum();
    let block_len = head + extra;
    let data_at = at + block_len;
    for e in entries.iter_mut() {
        if e.0 == 273 {
            e.3 = off_bytes(data_at);
        }
    }
    let next = if last { 0 } else { (data_at + plane_bytes).next_multiple_of(2) };

    let mut out = Vec::with_capacity(block_len as usize);
    let mut tail = Vec::new();
    if big {
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    } else {
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    }
    for (tag, typ, count, value) in &entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        if big {
            out.extend_from_slice(&count.to_le_bytes());
        } else {
            out.extend_from_slice(&(*count as u32).to_le_bytes());
        }
        let mut field = vec![0u8; inline];
        if value.len() <= inline {
            field[..value.len()].copy_from_slice(value);
        } else {
            let off = at + head + tail.len() as u64;
            field.copy_from_slice(&off_bytes(off));
            tail.extend_from_slice(value);
            if tail.len() % 2 == 1 {
                tail.push(0);
            }
        }
        out.extend_from_slice(&field);
    }
    if big {
        out.extend_from_slice(&next.to_le_bytes());
    } else {
        out.extend_from_slice(&(next as u32).to_le_bytes());
    }
    out.extend_from_slice(&tail);
    debug_assert_eq!(out.len() as u64, block_len);
    out
}
