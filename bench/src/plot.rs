//! A line plot written as a PNG with no plotting dependency: categories along x (packet sizes),
//! one coloured line per series, a y axis from zero with labelled ticks, and a legend. Text uses
//! a built-in 3×5 pixel font, so the file is readable on its own. The PNG is uncompressed
//! (stored deflate blocks), which keeps the encoder a few lines and the file a few MB at most.

use std::path::Path;

const WIDTH: usize = 960;
const HEIGHT: usize = 560;
const LEFT: usize = 80;
const RIGHT: usize = 250;
const TOP: usize = 40;
const BOTTOM: usize = 60;
const SCALE: usize = 2;
const PALETTE: [[u8; 3]; 8] = [
    [214, 39, 40],
    [31, 119, 180],
    [44, 160, 44],
    [148, 103, 189],
    [255, 127, 14],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// One value per x category; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Debug)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

struct Canvas {
    pixels: Vec<[u8; 3]>,
}

impl Canvas {
    fn new() -> Self {
        Canvas {
            pixels: vec![[255, 255, 255]; WIDTH * HEIGHT],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < WIDTH && (y as usize) < HEIGHT {
            self.pixels[y as usize * WIDTH + x as usize] = colour;
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: [u8; 3]) {
        for dy in 0..h {
            for dx in 0..w {
                self.set(x + dx, y + dy, colour);
            }
        }
    }

    /// Bresenham with a square pen, so lines stay visible when the PNG is scaled down.
    fn line(&mut self, from: (i64, i64), to: (i64, i64), pen: i64, colour: [u8; 3]) {
        let (mut x, mut y) = from;
        let dx = (to.0 - x).abs();
        let dy = -(to.1 - y).abs();
        let sx = if x < to.0 { 1 } else { -1 };
        let sy = if y < to.1 { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.rect(x - pen / 2, y - pen / 2, pen, pen, colour);
            if (x, y) == to {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, text: &str, colour: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        let px = x + (i * 4 * SCALE + col * SCALE) as i64;
                        let py = y + (row * SCALE) as i64;
                        self.rect(px, py, SCALE as i64, SCALE as i64, colour);
                    }
                }
            }
        }
    }
}

fn text_width(text: &str) -> i64 {
    (text.chars().count() * 4 * SCALE) as i64
}

/// Rows of a 3×5 glyph, top first, most significant bit leftmost; unknown characters are blank.
fn glyph(ch: char) -> [u8; 5] {
    match ch.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '/' => [1, 1, 2, 4, 4],
        '(' => [2, 4, 4, 4, 2],
        ')' => [2, 1, 1, 1, 2],
        '=' => [0, 7, 0, 7, 0],
        _ => [0; 5],
    }
}

/// A round step giving about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn tick_label(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl LinePlot {
    /// Colour of the n-th series as `#rrggbb`, for text that describes the plot.
    pub fn colour_name(index: usize) -> String {
        let [r, g, b] = PALETTE[index % PALETTE.len()];
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    fn draw(&self) -> Canvas {
        let mut c = Canvas::new();
        let black = [0, 0, 0];
        let grey = [220, 220, 220];
        let plot_w = (WIDTH - LEFT - RIGHT) as i64;
        let plot_h = (HEIGHT - TOP - BOTTOM) as i64;
        let (x0, y0) = (LEFT as i64, (HEIGHT - BOTTOM) as i64);
        let max = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let step = tick_step(if max > 0.0 { max } else { 1.0 });
        let top = (max / step).ceil().max(1.0) * step;
        let y_of = |v: f64| y0 - ((v / top) * plot_h as f64).round() as i64;
        let n = self.categories.len().max(1);
        let x_of = |i: usize| x0 + ((i as f64 + 0.5) * plot_w as f64 / n as f64).round() as i64;

        c.text(x0 + 120, 6, &self.title, black);
        let mut tick = 0.0;
        while tick <= top + step / 2.0 {
            let y = y_of(tick);
            c.line((x0, y), (x0 + plot_w, y), 1, grey);
            let label = tick_label(tick);
            c.text(x0 - 8 - text_width(&label), y - 5, &label, black);
            tick += step;
        }
        c.line((x0, y0), (x0 + plot_w, y0), 2, black);
        c.line((x0, y0), (x0, y0 - plot_h), 2, black);
        for (i, label) in self.categories.iter().enumerate() {
            let x = x_of(i);
            c.line((x, y0), (x, y0 + 6), 2, black);
            c.text(x - text_width(label) / 2, y0 + 12, label, black);
        }
        c.text(
            x0 + plot_w / 2 - text_width(&self.x_label) / 2,
            y0 + 36,
            &self.x_label,
            black,
        );
        c.text(8, TOP as i64 - 22, &self.y_label, black);

        for (s, series) in self.series.iter().enumerate() {
            let colour = PALETTE[s % PALETTE.len()];
            let points: Vec<Option<(i64, i64)>> = series
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (x_of(i), y_of(v))))
                .collect();
            for pair in points.windows(2) {
                if let [Some(a), Some(b)] = pair {
                    c.line(*a, *b, 3, colour);
                }
            }
            for (x, y) in points.iter().flatten() {
                c.rect(x - 4, y - 4, 9, 9, colour);
            }
            let ly = TOP as i64 + 10 + s as i64 * 22;
            let lx = (WIDTH - RIGHT) as i64 + 20;
            c.rect(lx, ly, 14, 10, colour);
            c.text(lx + 22, ly, &series.name, black);
        }
        c
    }

    pub fn png_bytes(&self) -> Vec<u8> {
        let canvas = self.draw();
        let mut raw = Vec::with_capacity(HEIGHT * (1 + WIDTH * 3));
        for row in canvas.pixels.chunks(WIDTH) {
            raw.push(0); // filter type None
            for px in row {
                raw.extend_from_slice(px);
            }
        }
        encode_png(WIDTH as u32, HEIGHT as u32, &raw)
    }

    pub fn write_png(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.png_bytes())
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn encode_png(width: u32, height: u32, filtered_rows: &[u8]) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no interlace
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib_stored(filtered_rows));
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_their_published_check_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_png_has_a_valid_structure_and_the_lines_are_drawn() {
        let plot = LinePlot {
            title: "t".into(),
            x_label: "bytes".into(),
            y_label: "Gbps".into(),
            categories: vec!["64".into(), "1420".into()],
            series: vec![Series {
                name: "AES-128-GCM".into(),
                values: vec![Some(1.0), Some(3.0)],
            }],
        };
        let png = plot.png_bytes();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        // IHDR's CRC covers its type and data.
        assert_eq!(
            u32::from_be_bytes(png[29..33].try_into().unwrap()),
            crc32(&png[12..29])
        );
        let canvas = plot.draw();
        let red = PALETTE[0];
        assert!(
            canvas.pixels.iter().filter(|p| **p == red).count() > 100,
            "the series line is drawn in its colour"
        );
    }
}
