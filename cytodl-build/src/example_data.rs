//! `cytodl-build example-data DIR`: a small synthetic dataset in cyto_dl's layout, for the quick
//! start and the tests. `DIR/segmentation/` and `DIR/labelfree/` each hold OME-TIFF fields of
//! view (`img_NNN.ome.tif`, CZYX uint16) and `train.csv`, `valid.csv`, `test.csv` whose columns
//! name the same file: channel 0 is the input, channel 1 the target (a binary mask or a
//! signal), and in `segmentation/` channel 2 the instance labels (one per blob).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The shape of each field of view.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub z: usize,
    pub y: usize,
    pub x: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { z: 32, y: 64, x: 64 }
    }
}

/// A tiny deterministic generator (xorshift64*), so the data is the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Blobs: a binary mask, a smooth "fluorescence" signal, and instance labels (each blob its own
/// label, later blobs over earlier ones).
fn blobs(rng: &mut Rng, s: Shape) -> (Vec<f64>, Vec<f64>, Vec<u16>) {
    let n = s.z * s.y * s.x;
    let (mut mask, mut signal, mut labels) = (vec![0.0; n], vec![0.0; n], vec![0u16; n]);
    for blob in 0..8u16 {
        let (cz, cy, cx) = (rng.next() * s.z as f64, rng.next() * s.y as f64, rng.next() * s.x as f64);
        let r = 4.0 + rng.next() * 6.0;
        for k in 0..s.z {
            for j in 0..s.y {
                for i in 0..s.x {
                    let d2 = ((k as f64 - cz) / 0.6).powi(2) + (j as f64 - cy).powi(2) + (i as f64 - cx).powi(2);
                    let idx = (k * s.y + j) * s.x + i;
                    if d2 <= r * r {
                        mask[idx] = 1.0;
                        labels[idx] = blob + 1;
                    }
                    signal[idx] += (-d2 / (2.0 * r * r)).exp();
                }
            }
        }
    }
    (mask, signal, labels)
}

/// Writes a little-endian, uncompressed, multi-page OME-TIFF of `channels` (each Z*Y*X).
pub fn write_ome_tiff(path: &Path, channels: &[Vec<u16>], s: Shape) -> std::io::Result<()> {
    let c = channels.len();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\"><Image ID=\"Image:0\" Name=\"{name}\"><Pixels ID=\"Pixels:0\" DimensionOrder=\"XYZCT\" Type=\"uint16\" SizeX=\"{x}\" SizeY=\"{y}\" SizeZ=\"{z}\" SizeC=\"{c}\" SizeT=\"1\" PhysicalSizeX=\"0.108\" PhysicalSizeY=\"0.108\" PhysicalSizeZ=\"0.29\">{chans}<TiffData IFD=\"0\" PlaneCount=\"{planes}\"/></Pixels></Image></OME>\0",
        name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        x = s.x,
        y = s.y,
        z = s.z,
        chans = (0..c).map(|i| format!("<Channel ID=\"Channel:0:{i}\" SamplesPerPixel=\"1\"/>")).collect::<String>(),
        planes = c * s.z,
    );
    let plane_bytes = s.y * s.x * 2;
    let pages = c * s.z;
    let mut out: Vec<u8> = Vec::with_capacity(8 + xml.len() + pages * (plane_bytes + 200));
    out.extend_from_slice(b"II*\0");
    out.extend_from_slice(&0u32.to_le_bytes()); // first IFD offset, patched below
    let xml_offset = out.len() as u32;
    out.extend_from_slice(xml.as_bytes());
    let mut data_offsets = Vec::with_capacity(pages);
    for ch in channels {
        for z in 0..s.z {
            data_offsets.push(out.len() as u32);
            for v in &ch[z * s.y * s.x..(z + 1) * s.y * s.x] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    let mut prev_next: usize = 4;
    for (p, offset) in data_offsets.iter().enumerate() {
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let ifd = out.len() as u32;
        out[prev_next..prev_next + 4].copy_from_slice(&ifd.to_le_bytes());
        let mut tags: Vec<(u16, u16, u32, u32)> = vec![
            (256, 4, 1, s.x as u32),
            (257, 4, 1, s.y as u32),
            (258, 3, 1, 16),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, 1, *offset),
            (277, 3, 1, 1),
            (278, 4, 1, s.y as u32),
            (279, 4, 1, plane_bytes as u32),
            (339, 3, 1, 1),
        ];
        if p == 0 {
            tags.push((270, 2, xml.len() as u32, xml_offset));
            tags.sort_by_key(|t| t.0);
        }
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        for (tag, ty, count, value) in tags {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            if ty == 3 && count == 1 {
                out.extend_from_slice(&(value as u16).to_le_bytes());
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        prev_next = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)?.write_all(&out)?;
    std::fs::rename(tmp, path)
}

fn to_u16(v: impl Iterator<Item = f64>) -> Vec<u16> {
    v.map(|x| x.round().clamp(0.0, 65535.0) as u16).collect()
}

/// Writes both datasets under `dir`; returns the CSV folders.
pub fn write(dir: &Path, files: usize, shape: Shape) -> std::io::Result<Vec<PathBuf>> {
    let files = files.max(3);
    let mut folders = Vec::new();
    for (task, cols) in [("segmentation", ["raw", "seg"]), ("labelfree", ["brightfield", "signal"])] {
        let folder = dir.join(task);
        std::fs::create_dir_all(&folder)?;
        let mut rng = Rng(if task == "segmentation" { 0x5eed_1234 } else { 0x1abe_1f4e });
        let mut rows = Vec::new();
        for i in 0..files {
            let (mask, signal, labels) = blobs(&mut rng, shape);
            let channels = if task == "segmentation" {
                let raw = to_u16(mask.iter().map(|m| 400.0 + 900.0 * m + 60.0 * rng.normal()));
                vec![raw, to_u16(mask.iter().map(|m| m * 255.0)), labels]
            } else {
                let bf = to_u16(signal.iter().map(|s| 400.0 + 500.0 * s.min(1.5) + 40.0 * rng.normal()));
                vec![bf, to_u16(signal.iter().map(|s| 1000.0 * s.min(1.5)))]
            };
            let name = format!("img_{i:03}.ome.tif");
            write_ome_tiff(&folder.join(&name), &channels, shape)?;
            rows.push(name);
        }
        let n = rows.len();
        let splits = [("train", &rows[..n - 2]), ("valid", &rows[n - 2..n - 1]), ("test", &rows[n - 1..])];
        for (split, part) in splits {
            let mut csv = format!("{},{}\n", cols[0], cols[1]);
            for r in part {
                csv.push_str(&format!("{r},{r}\n"));
            }
            std::fs::write(folder.join(format!("{split}.csv")), csv)?;
        }
        folders.push(folder);
    }
    Ok(folders)
}
