//! Parsing the metadata a TIFF's first ImageDescription can carry: OME-XML, ImageJ
//! hyperstack descriptions, and tifffile's "shaped" JSON (`{"shape": [...], "axes": "..."}`).
//!
//! Only what the reader needs to lay pages out along axes is extracted; everything here is
//! tolerant (returns `None` on malformed input) because the caller falls back to a plain
//! page stack, as tifffile does.

/// The `Pixels` element of the first OME `Image` (tifffile's first series).
#[derive(Debug, Clone, PartialEq)]
pub struct OmePixels {
    /// e.g. `XYZCT`: X fastest, T slowest.
    pub dimension_order: String,
    pub size_x: usize,
    pub size_y: usize,
    pub size_z: usize,
    pub size_c: usize,
    pub size_t: usize,
    /// PhysicalSizeZ, PhysicalSizeY, PhysicalSizeX.
    pub physical_sizes: [Option<f64>; 3],
    pub channel_names: Vec<String>,
    /// Smallest `IFD` attribute among the `TiffData` elements: the first page of the series.
    pub first_ifd: usize,
}

/// Parses OME-XML; `None` when it is not OME or has no usable `Pixels` element.
pub fn parse_ome(xml: &str) -> Option<OmePixels> {
    if !xml.contains("<OME") && !xml.contains(":OME") {
        return None;
    }
    let mut in_image = false;
    let mut pixels: Option<OmePixels> = None;
    let mut ifds: Vec<usize> = Vec::new();
    for tag in Tags::new(xml) {
        match (tag.name, tag.closing) {
            ("Image", false) => in_image = true,
            ("Image", true) => {
                if pixels.is_some() {
                    break;
                }
                in_image = false;
            }
            ("Pixels", false) if in_image && pixels.is_none() => {
                let num = |k: &str| tag.attr(k).and_then(|v| v.trim().parse::<usize>().ok());
                let float = |k: &str| tag.attr(k).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v > 0.0);
                let order = tag.attr("DimensionOrder").unwrap_or_else(|| "XYZCT".into());
                pixels = Some(OmePixels {
                    dimension_order: order,
                    size_x: num("SizeX")?,
                    size_y: num("SizeY")?,
                    size_z: num("SizeZ").unwrap_or(1).max(1),
                    size_c: num("SizeC").unwrap_or(1).max(1),
                    size_t: num("SizeT").unwrap_or(1).max(1),
                    physical_sizes: [float("PhysicalSizeZ"), float("PhysicalSizeY"), float("PhysicalSizeX")],
                    channel_names: Vec::new(),
                    first_ifd: 0,
                });
                if tag.self_closing {
                    break;
                }
            }
            ("Pixels", true) if pixels.is_some() => break,
            ("Channel", false) => {
                if let Some(p) = pixels.as_mut() {
                    p.channel_names.push(tag.attr("Name").unwrap_or_default());
                }
            }
            ("TiffData", false) if pixels.is_some() => {
                ifds.push(tag.attr("IFD").and_then(|v| v.trim().parse().ok()).unwrap_or(0));
            }
            _ => {}
        }
    }
    let mut p = pixels?;
    p.first_ifd = ifds.into_iter().min().unwrap_or(0);
    let order = p.dimension_order.to_ascii_uppercase();
    let valid = order.len() == 5 && order.starts_with("XY") && ["Z", "C", "T"].iter().all(|d| order.contains(d));
    if !valid {
        return None;
    }
    p.dimension_order = order;
    if p.channel_names.iter().all(|n| n.is_empty()) {
        p.channel_names.clear();
    }
    Some(p)
}

/// An ImageJ description (`ImageJ=1.x\nimages=..\nchannels=..\nslices=..\nframes=..`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageJMeta {
    pub images: usize,
    pub channels: Option<usize>,
    pub slices: Option<usize>,
    pub frames: Option<usize>,
    /// Z step (`spacing=`), in `unit`.
    pub spacing: Option<f64>,
    pub unit: Option<String>,
}

pub fn parse_imagej(desc: &str) -> Option<ImageJMeta> {
    if !desc.starts_with("ImageJ=") {
        return None;
    }
    let mut m = ImageJMeta { images: 1, ..Default::default() };
    for line in desc.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let n = || v.parse::<usize>().ok().filter(|&n| n > 0);
        match k.trim() {
            "images" => m.images = n().unwrap_or(1),
            "channels" => m.channels = n(),
            "slices" => m.slices = n(),
            "frames" => m.frames = n(),
            "spacing" => m.spacing = v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0),
            "unit" => m.unit = Some(v.to_string()),
            _ => {}
        }
    }
    Some(m)
}

/// tifffile's "shaped" description: `{"shape": [..]}` plus optional `"axes"`.
pub fn parse_shaped(desc: &str) -> Option<(Vec<usize>, Option<String>)> {
    let t = desc.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(desc.trim_end_matches('\0')).ok()?;
    let shape: Vec<usize> = v.get("shape")?.as_array()?.iter().map(|x| x.as_u64().map(|n| n as usize)).collect::<Option<_>>()?;
    let axes = v.get("axes").and_then(|a| a.as_str()).map(|s| s.to_ascii_uppercase());
    let n = shape.len();
    Some((shape, axes.filter(|a| a.len() == n)))
}

/// Escapes text for an XML attribute value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let rep = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16).ok().and_then(char::from_u32),
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match rep {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One start or end tag, namespace prefix stripped.
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    attrs: &'a str,
}

impl Tag<'_> {
    fn attr(&self, key: &str) -> Option<String> {
        let mut rest = self.attrs;
        loop {
            rest = rest.trim_start();
            let eq = rest.find('=')?;
            let name = rest[..eq].trim();
            let after = rest[eq + 1..].trim_start();
            let quote = after.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let end = after[1..].find(quote)? + 1;
            let value = &after[1..end];
            let local = name.rsplit(':').next().unwrap_or(name);
            if local == key {
                return Some(xml_unescape(value));
            }
            rest = &after[end + 1..];
        }
    }
}

/// A minimal tag scanner: enough for OME-XML's attributes, skipping comments, PIs, CDATA.
struct Tags<'a> {
    rest: &'a str,
}

impl<'a> Tags<'a> {
    fn new(s: &'a str) -> Self {
        Tags { rest: s }
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;
    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            let start = self.rest.find('<')?;
            let s = &self.rest[start..];
            let mut skipped = false;
            for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")] {
                if s.starts_with(open) {
                    let end = s.find(close).map(|e| e + close.len()).unwrap_or(s.len());
                    self.rest = &s[end..];
                    skipped = true;
                    break;
                }
            }
            if skipped {
                continue;
            }
            // A start/end tag: find its closing '>' outside quotes.
            let bytes = s.as_bytes();
            let mut quote = 0u8;
            let mut end = None;
            for (i, &b) in bytes.iter().enumerate().skip(1) {
                if quote != 0 {
                    if b == quote {
                        quote = 0;
                    }
                } else if b == b'"' || b == b'\'' {
                    quote = b;
                } else if b == b'>' {
                    end = Some(i);
                    break;
                }
            }
            let end = end?;
            let inner = &s[1..end];
            self.rest = &s[end + 1..];
            let closing = inner.starts_with('/');
            let inner = inner.trim_start_matches('/');
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
            let full = &inner[..name_end];
            let name = full.rsplit(':').next().unwrap_or(full);
            return Some(Tag { name, closing, self_closing, attrs: &inner[name_end..] });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ome_pixels() {
        let xml = r#"<?xml version="1.0"?><!-- c --><OME xmlns="x"><Image ID="Image:0"><Pixels DimensionOrder="XYZCT" SizeX="30" SizeY="32" SizeZ="10" SizeC="2" SizeT="1" PhysicalSizeX="0.5" Type="uint16"><Channel ID="c0" Name="a&amp;b"/><Channel ID="c1" Name="dna"/><TiffData IFD="0" PlaneCount="20"/></Pixels></Image></OME>"#;
        let p = parse_ome(xml).unwrap();
        assert_eq!((p.size_x, p.size_y, p.size_z, p.size_c, p.size_t), (30, 32, 10, 2, 1));
        assert_eq!(p.physical_sizes, [None, None, Some(0.5)]);
        assert_eq!(p.channel_names, vec!["a&b".to_string(), "dna".to_string()]);
        assert!(parse_ome("hello").is_none());
        assert!(parse_ome("<OME><Image><Pixels SizeX=\"3\"").is_none());
    }

    #[test]
    fn parses_imagej_and_shaped() {
        let m = parse_imagej("ImageJ=1.11a\nimages=42\nchannels=2\nslices=7\nframes=3\nspacing=0.25\n").unwrap();
        assert_eq!((m.images, m.channels, m.slices, m.frames, m.spacing), (42, Some(2), Some(7), Some(3), Some(0.25)));
        assert_eq!(parse_shaped("{\"shape\": [2, 3]}"), Some((vec![2, 3], None)));
        assert_eq!(parse_shaped("{\"shape\": [2, 3], \"axes\": \"yx\"}"), Some((vec![2, 3], Some("YX".into()))));
        assert_eq!(parse_shaped("{\"shape\": [2, -3]}"), None);
    }
}
