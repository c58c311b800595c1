//! The generated workloads: event shapes, the customers table, and the two
//! jobs as Sluice pipeline parameters.
//!
//! Every shape carries the fields the jobs read (`order_id`, `customer_id`,
//! `price`, `currency`, `ts`) at the top level, around a different bulk, so
//! one job definition runs on all of them and the cost of the bulk shows:
//! - `orders`: the issue's ~147-byte order, nothing else;
//! - `wide`: 50 top-level fields of mixed types;
//! - `nested`: ~2 KB with nested objects and arrays;
//! - `unicode`: long strings in many scripts, emoji and characters JSON escapes.
//!
//! Everything is a function of a seed and the event's number: the same
//! arguments give the same bytes on every machine.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::json::{str_array, Obj};

/// Rows in the customers table (`customer_id` 1..=CUSTOMERS).
pub const CUSTOMERS: u64 = 10_000;
/// Orders draw `customer_id` from 1..=this, so about 2 % find no customer
/// and the inner join drops them.
const CUSTOMER_IDS: u64 = 10_200;
/// The filter: drops about one event in six.
pub const WHERE: &str = "currency != 'aud'";
/// The computed field of the project.
pub const PRICE_CENTS: &str = "round(price * 100)";
const CURRENCIES: [&str; 6] = ["usd", "eur", "gbp", "aud", "jpy", "cad"];
/// 2026-01-01T00:00:00Z in ms.
const BASE_MS: u64 = 1_767_225_600_000;

/// An event shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// ~147-byte orders.
    Orders,
    /// 50 top-level fields.
    Wide,
    /// ~2 KB with nested objects and arrays.
    Nested,
    /// Unicode-heavy strings.
    Unicode,
}

/// A job: what both Sluice and the native reference do to the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// `filter` (currency != 'aud') then `project` (a few fields plus price_cents).
    Transform,
    /// The transform, then an inner `lookup-join` on customer_id (name, age).
    Join,
}

impl Job {
    /// Both jobs.
    pub const ALL: [Job; 2] = [Job::Transform, Job::Join];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Job::Transform => "transform",
            Job::Join => "join",
        }
    }
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [Shape::Orders, Shape::Wide, Shape::Nested, Shape::Unicode];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Orders => "orders",
            Shape::Wide => "wide",
            Shape::Nested => "nested",
            Shape::Unicode => "unicode",
        }
    }

    /// The fields the project keeps (besides the computed `price_cents`).
    pub fn select(self) -> &'static [&'static str] {
        match self {
            Shape::Orders => &["order_id", "customer_id", "currency"],
            Shape::Wide => &[
                "order_id",
                "customer_id",
                "currency",
                "f12",
                "f13",
                "f14",
                "f15",
            ],
            Shape::Nested => &[
                "order_id",
                "customer_id",
                "currency",
                "shipping.city",
                "shipping.country",
            ],
            Shape::Unicode => &["order_id", "customer_id", "currency", "name", "city"],
        }
    }

    /// The event fields a join passes on: the projected top-level fields.
    pub fn join_fields(self) -> String {
        let mut top: Vec<&str> = Vec::new();
        for path in self.select() {
            let head = path.split('.').next().unwrap_or(path);
            if !top.contains(&head) {
                top.push(head);
            }
        }
        format!(
            "{}, price_cents, table.name as customer_name, table.age as customer_age",
            top.join(", ")
        )
    }

    fn seed(self) -> u64 {
        match self {
            Shape::Orders => 0x6f72_6465_7273,
            Shape::Wide => 0x7769_6465,
            Shape::Nested => 0x6e65_7374_6564,
            Shape::Unicode => 0x0075_6e69_636f_6465,
        }
    }

    /// Event number `seq` of this shape, as one line of JSON (no newline).
    pub fn event(self, seq: u64) -> String {
        let mut rng = Rng::new(self.seed() ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut s = String::with_capacity(256);
        let mut o = Obj::open(&mut s);
        o.str("order_id", &rng.uuid())
            .int("customer_id", rng.range(1, CUSTOMER_IDS) as i64)
            .cents("price", rng.range(100, 99_999))
            .str("currency", rng.pick(&CURRENCIES))
            .str(
                "ts",
                &iso8601(BASE_MS * 1000 + seq * 37_000 + rng.below(1_000_000)),
            );
        match self {
            Shape::Orders => {}
            Shape::Wide => wide(&mut o, &mut rng),
            Shape::Nested => nested(&mut o, &mut rng),
            Shape::Unicode => unicode(&mut o, &mut rng),
        }
        o.close();
        s
    }
}

/// Writes events 0..n of `shape` to `path`, one a line; returns the bytes written.
pub fn generate(shape: Shape, n: u64, path: &Path) -> Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut bytes = 0;
    for seq in 0..n {
        let line = shape.event(seq);
        bytes += line.len() as u64 + 1;
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(bytes)
}

/// Writes the customers table: `{"customer_id", "name", "age"}` per line.
pub fn write_customers(path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for id in 1..=CUSTOMERS {
        let mut rng = Rng::new(0x6375_7374 ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let name = format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST));
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.int("customer_id", id as i64)
            .str("name", &name)
            .int("age", rng.range(18, 90) as i64);
        o.close();
        writeln!(w, "{s}")?;
    }
    w.flush()?;
    Ok(())
}

fn wide(o: &mut Obj<'_>, rng: &mut Rng) {
    for i in 5..50 {
        let k = format!("f{i:02}");
        match i % 4 {
            0 => o.int(&k, rng.below(1_000_000) as i64),
            1 => o.cents(&k, rng.below(1_000_000)),
            2 => o.str(&k, &rng.word(6, 12)),
            _ => o.raw(&k, if rng.below(2) == 0 { "false" } else { "true" }),
        };
    }
}

fn nested(o: &mut Obj<'_>, rng: &mut Rng) {
    o.obj("shipping", |s| {
        s.str("name", &format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST)))
            .str(
                "street",
                &format!("{} {} Street", rng.range(1, 9999), rng.word(5, 10)),
            )
            .str("city", rng.pick(&CITIES))
            .str("zip", &format!("{:05}", rng.below(100_000)))
            .str("country", rng.pick(&COUNTRIES))
            .obj("geo", |g| {
                g.raw(
                    "lat",
                    &format!("{:.6}", rng.below(180_000_000) as f64 / 1e6 - 90.0),
                )
                .raw(
                    "lon",
                    &format!("{:.6}", rng.below(360_000_000) as f64 / 1e6 - 180.0),
                );
            });
    });
    let items = rng.range(6, 9);
    let mut arr = String::from("[");
    for i in 0..items {
        if i > 0 {
            arr.push(',');
        }
        let mut it = Obj::open(&mut arr);
        it.str("sku", &format!("SKU-{:08}", rng.below(100_000_000)))
            .str("title", &format!("{} {}", rng.word(4, 9), rng.word(4, 9)))
            .int("qty", rng.range(1, 12) as i64)
            .cents("unit_price", rng.range(50, 50_000))
            .raw(
                "tags",
                &str_array([rng.word(3, 7).as_str(), rng.word(3, 7).as_str(), "sale"]),
            )
            .obj("attrs", |a| {
                a.str(
                    "color",
                    rng.pick(&["red", "green", "blue", "black", "white"]),
                )
                .str("size", rng.pick(&["XS", "S", "M", "L", "XL"]))
                .int("weight_g", rng.range(10, 20_000) as i64)
                .raw("fragile", if rng.below(5) == 0 { "true" } else { "false" });
            });
        it.close();
    }
    arr.push(']');
    o.raw("items", &arr);
    o.obj("payment", |p| {
        p.str(
            "method",
            rng.pick(&["card", "paypal", "invoice", "voucher"]),
        )
        .str("last4", &format!("{:04}", rng.below(10_000)))
        .obj("billing", |b| {
            b.str("city", rng.pick(&CITIES))
                .str("zip", &format!("{:05}", rng.below(100_000)));
        });
    });
    let mut history = String::from("[");
    for (i, status) in ["created", "paid", "packed"].iter().enumerate() {
        if i > 0 {
            history.push(',');
        }
        let mut h = Obj::open(&mut history);
        h.str("status", status)
            .str("at", &iso8601(BASE_MS * 1000 + rng.below(86_400_000_000)));
        h.close();
    }
    history.push(']');
    o.raw("history", &history);
}

fn unicode(o: &mut Obj<'_>, rng: &mut Rng) {
    let words = |rng: &mut Rng, n: u64| -> String {
        (0..n)
            .map(|_| rng.pick(&WORLD))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let name = format!("{} {}", rng.pick(&WORLD), rng.pick(&WORLD));
    let n = rng.range(20, 40);
    let note = words(rng, n);
    let tags: Vec<&str> = (0..3).map(|_| rng.pick(&WORLD)).collect();
    o.str("name", &name)
        .str("city", rng.pick(&WORLD_CITIES))
        .str("note", &note)
        .raw("tags", &str_array(tags));
}

/// `us` microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
fn iso8601(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        us % 1_000_000
    )
}

/// splitmix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }

    /// A lowercase ASCII word of min..=max letters.
    fn word(&mut self, min: u64, max: u64) -> String {
        (0..self.range(min, max))
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }

    /// A version-4 UUID in its 36-character text form.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let a = (a & !0xF000) | 0x4000; // version 4
        let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

const FIRST: [&str; 16] = [
    "Ana", "Bruno", "Carla", "Diego", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Luis", "Maya", "Nils", "Olga", "Priya",
];
const LAST: [&str; 16] = [
    "Silva", "Okafor", "Tanaka", "Novak", "Garcia", "Muller", "Kowalski", "Haddad", "Larsen",
    "Rossi", "Chen", "Dubois", "Ivanova", "Mensah", "Kaur", "Smith",
];
const CITIES: [&str; 10] = [
    "Lisbon", "Austin", "Osaka", "Lagos", "Berlin", "Lima", "Perth", "Oslo", "Pune", "Quebec",
];
const COUNTRIES: [&str; 8] = ["PT", "US", "JP", "NG", "DE", "PE", "AU", "CA"];
/// Words in many scripts, emoji, and text JSON must escape (quotes,
/// backslashes, a tab, a newline).
const WORLD: [&str; 32] = [
    "Zürich",
    "São",
    "Kraków",
    "façade",
    "naïve",
    "smørrebrød",
    "東京",
    "北京市",
    "日本語の文章",
    "Москва",
    "привет",
    "Αθήνα",
    "καλημέρα",
    "القاهرة",
    "مرحبا",
    "मुंबई",
    "नमस्ते",
    "서울",
    "안녕하세요",
    "ไทย",
    "Ελλάδα",
    "🚚",
    "📦✅",
    "👩‍💻",
    "🇵🇹",
    "ﬁancé",
    "Ωmega",
    "\"quoted\"",
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "€100",
];
const WORLD_CITIES: [&str; 10] = [
    "Zürich",
    "São Paulo",
    "Kraków",
    "東京",
    "Москва",
    "Αθήνα",
    "القاهرة",
    "मुंबई",
    "서울",
    "Reykjavík",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_json_with_the_fields_the_jobs_read() {
        for shape in Shape::ALL {
            assert_eq!(shape.event(41), shape.event(41), "{shape:?}");
            assert_ne!(shape.event(41), shape.event(42), "{shape:?}");
            let v: serde_json::Value = serde_json::from_str(&shape.event(7)).expect("json");
            assert!(v["order_id"].as_str().is_some_and(|s| s.len() == 36));
            assert!(v["customer_id"]
                .as_i64()
                .is_some_and(|c| (1..=10_200).contains(&c)));
            assert!(v["price"].is_f64());
            assert!(CURRENCIES.contains(&v["currency"].as_str().unwrap_or("")));
            assert!(v["ts"].as_str().is_some_and(|t| t.starts_with("2026-01-0")));
        }
    }

    #[test]
    fn shapes_have_the_sizes_they_claim() {
        let avg = |shape: Shape| (0..500).map(|i| shape.event(i).len() + 1).sum::<usize>() / 500;
        let orders = avg(Shape::Orders);
        assert!((135..=155).contains(&orders), "orders: {orders} bytes");
        let nested = avg(Shape::Nested);
        assert!((1700..=2400).contains(&nested), "nested: {nested} bytes");
        let v: serde_json::Value = serde_json::from_str(&Shape::Wide.event(3)).expect("json");
        assert_eq!(v.as_object().map(|m| m.len()), Some(50));
        let u = Shape::Unicode.event(3);
        assert!(u.chars().filter(|c| !c.is_ascii()).count() > 50, "{u}");
    }

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(BASE_MS * 1000), "2026-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso8601(951_782_400_000_000 + 3_723_000_004),
            "2000-02-29T01:02:03.000004+00:00"
        );
    }

    #[test]
    fn join_fields_name_each_projected_top_level_field_once() {
        assert_eq!(
            Shape::Nested.join_fields(),
            "order_id, customer_id, currency, shipping, price_cents, table.name as customer_name, table.age as customer_age"
        );
    }
}
