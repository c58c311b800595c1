//! Deterministic fake records for the `datagen` source.
//!
//! Everything here is pure: a record depends only on the [`Rng`] state and the
//! sequence number it is given, never on the wall clock or the environment, so
//! the same seed always yields the same stream (tests and demos are
//! reproducible). Word lists are embedded.
//!
//! Record kinds ([`Kind`]):
//!
//! - `people`: `{"id", "name", "email", "phone", "birth_date", "job", "sex",
//!   "updated_at"}`, key = id. Names are American or Brazilian (phone style and
//!   e-mail domain follow); birth dates give ages 10 to 80 on 2026-01-01;
//!   `updated_at` increases with the sequence number (one second per record
//!   from 2025-01-01T00:00:00), as a timestamp-mode poll expects.
//! - `customers`: `{"id", "name", "age"}` like the seed `customers` table, key = id.
//! - `orders`: `{"customer_id", "order_id", "price", "currency", "ts"}`, key =
//!   order_id, like the seed `orders.jsonl`.
//! - `shipments`: `{"order_id", "shipment_id", "origin", "ts"}`, key =
//!   shipment_id, like the seed `shipments.jsonl`.
//!
//! Ids are derived from the sequence number so streams generated side by side
//! join up: customer `id`, order `order_id` and shipment `order_id` are all
//! `seq`; an order's `customer_id` is drawn from `0..=seq` (so when customers
//! and orders are generated with the same count, every order has a customer);
//! a shipment's `ts` is 1 to 72 hours after the `ts` of the order with the same
//! `order_id`, inside the reference pipeline's 7-day join window.
//!
//! E-mail domains are reserved example domains (RFC 2606) and US phone numbers
//! use the fictional 555-01XX range, so generated contact data never reaches a
//! real person.

use crate::format::time::civil_from_days;

use serde_json::{Map, Value};

/// A small, fast, seedable pseudo-random generator (SplitMix64).
///
/// Not cryptographic; statistically good enough for fake data, and the same
/// seed always produces the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// A uniform number in `0..n` (unbiased); `0` when `n` is `0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-and-reject: unbiased with one multiplication in
        // the common case.
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        let mut low = product as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }

    /// A uniform number in the half-open range `lo..hi`; `lo` when the range is empty.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// A uniformly chosen element of `items`.
    ///
    /// # Panics
    ///
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// SplitMix64's finalizer: a bijective scrambling of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which kind of record to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// People with contact details and birth dates (PII, for masking demos).
    People,
    /// Customers as in the seed `customers` table: id, name, age.
    Customers,
    /// Orders as in the seed `orders.jsonl`.
    Orders,
    /// Shipments as in the seed `shipments.jsonl`, joining the orders.
    Shipments,
}

impl Kind {
    /// The names [`Kind::parse`] accepts, in declaration order.
    pub const NAMES: &'static [&'static str] = &["people", "customers", "orders", "shipments"];

    /// The kind named `name` (one of [`Kind::NAMES`], ASCII case-insensitive).
    pub fn parse(name: &str) -> Option<Kind> {
        let name = name.trim();
        [Kind::People, Kind::Customers, Kind::Orders, Kind::Shipments]
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
    }

    /// The kind's name, as listed in [`Kind::NAMES`].
    pub fn name(self) -> &'static str {
        match self {
            Kind::People => "people",
            Kind::Customers => "customers",
            Kind::Orders => "orders",
            Kind::Shipments => "shipments",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Generates record number `seq` of `kind`: its key and its JSON value.
///
/// Deterministic: the same `rng` state and `seq` give the same record. Call it
/// with `seq` = 0, 1, 2, ... on one `Rng` per stream.
pub fn record(kind: Kind, rng: &mut Rng, seq: u64) -> (Option<String>, Value) {
    match kind {
        Kind::People => person(rng, seq),
        Kind::Customers => customer(rng, seq),
        Kind::Orders => order(rng, seq),
        Kind::Shipments => shipment(rng, seq),
    }
}

// ---------------------------------------------------------------------------
// Word lists

#[rustfmt::skip]
const US_MALE: &[&str] = &[
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Steven", "Andrew", "Kevin", "Brian",
    "Fred", "Bill",
];
#[rustfmt::skip]
const US_FEMALE: &[&str] = &[
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Emily", "Ashley", "Michelle", "Amanda", "Sue",
    "Chloe", "Zoë",
];
#[rustfmt::skip]
const US_LAST: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "O'Brien", "Nguyen",
];
#[rustfmt::skip]
const BR_MALE: &[&str] = &[
    "João", "José", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz",
    "Marcos", "Gabriel", "Rafael", "Felipe", "Gustavo", "Thiago", "Matheus", "Bruno", "Leandro",
    "Rodrigo", "Otávio",
];
#[rustfmt::skip]
const BR_FEMALE: &[&str] = &[
    "Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda",
    "Patrícia", "Aline", "Camila", "Letícia", "Beatriz", "Larissa", "Conceição", "Luíza",
    "Gabriela", "Vitória", "Júlia", "Bárbara",
];
#[rustfmt::skip]
const BR_LAST: &[&str] = &[
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Ribeiro", "Carvalho", "Araújo", "Almeida", "Gonçalves", "Barbosa", "Rocha",
    "Magalhães", "Simões", "Conceição", "Melo", "Cardoso", "Teixeira", "Nascimento",
];
#[rustfmt::skip]
const JOBS: &[&str] = &[
    "Accountant", "Architect", "Baker", "Barista", "Civil Engineer", "Data Analyst", "Dentist",
    "Electrician", "Farmer", "Firefighter", "Graphic Designer", "Journalist", "Lawyer",
    "Librarian", "Mechanic", "Nurse", "Pharmacist", "Physiotherapist", "Pilot", "Plumber",
    "Police Officer", "Professor", "Software Developer", "Student", "Teacher", "Truck Driver",
    "Veterinarian", "Waiter", "Web Designer", "Retired",
];
#[rustfmt::skip]
const US_EMAIL_DOMAINS: &[&str] = &[
    "example.com", "example.org", "example.net", "mail.example", "inbox.example",
];
#[rustfmt::skip]
const BR_EMAIL_DOMAINS: &[&str] = &[
    "example.com", "correio.example", "exemplo.example", "provedor.example",
];
#[rustfmt::skip]
const US_AREA_CODES: &[&str] = &[
    "212", "213", "305", "312", "415", "512", "617", "702", "713", "808", "907", "206",
];
#[rustfmt::skip]
const BR_AREA_CODES: &[&str] = &[
    "11", "21", "31", "41", "51", "61", "71", "81", "85", "19", "27", "48",
];
const CURRENCIES: &[&str] = &["usd", "eur", "aud", "gbp"];
#[rustfmt::skip]
const US_STATES: &[&str] = &[
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa",
    "kansas", "kentucky", "louisiana", "maine", "maryland", "massachusetts", "michigan",
    "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada", "new hampshire",
    "new jersey", "new mexico", "new york", "north carolina", "north dakota", "ohio",
    "oklahoma", "oregon", "pennsylvania", "rhode island", "south carolina", "south dakota",
    "tennessee", "texas", "utah", "vermont", "virginia", "washington", "west virginia",
    "wisconsin", "wyoming",
];

// ---------------------------------------------------------------------------
// Dates (proleptic Gregorian, days since 1970-01-01, no time zones)

/// 2026-01-01, the reference date ages are computed against.
const REFERENCE_DAY: i64 = 20_454;
/// 2025-01-01T00:00:00, the `updated_at` of person 0.
const UPDATED_AT_EPOCH_SECS: i64 = 20_089 * 86_400;
/// 2020-04-01T00:00:00, the start of the order timestamps (as in the seeds).
const ORDERS_EPOCH_SECS: i64 = 18_353 * 86_400;
/// Orders fall in the first 6 days of April 2020, shipments up to 3 days later.
const ORDERS_SPAN_SECS: u64 = 6 * 86_400;

/// Appends `n` as at least `width` zero-padded decimal digits.
fn push_num(out: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    for &b in &buf[start..] {
        out.push(char::from(b));
    }
}

/// Appends `YYYY-MM-DD`.
fn push_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    push_num(out, year.max(0) as u64, 4);
    out.push('-');
    push_num(out, u64::from(month), 2);
    out.push('-');
    push_num(out, u64::from(day), 2);
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since 1970-01-01T00:00:00.
fn datetime(secs: i64) -> String {
    let mut out = String::with_capacity(19);
    push_date(&mut out, secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400) as u64;
    out.push('T');
    push_num(&mut out, tod / 3600, 2);
    out.push(':');
    push_num(&mut out, tod / 60 % 60, 2);
    out.push(':');
    push_num(&mut out, tod % 60, 2);
    out
}

/// The `ts` of order `seq`, as seconds since the epoch. A function of `seq`
/// alone, so shipments can be placed after the order they ship.
fn order_secs(seq: u64) -> i64 {
    // Whole minutes, like the seeds.
    let minutes = mix64(seq ^ 0x5eed_0f0d_e25e_ed00) % (ORDERS_SPAN_SECS / 60);
    ORDERS_EPOCH_SECS + (minutes * 60) as i64
}

// ---------------------------------------------------------------------------
// Records

/// Lowercase ASCII letters of `name`, accents folded (`Conceição` → `conceicao`).
fn push_ascii_lower(out: &mut String, name: &str) {
    for c in name.chars() {
        let folded = match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
            'ç' | 'Ç' => 'c',
            'ñ' | 'Ñ' => 'n',
            // Apostrophes, spaces and anything else do not belong in an address.
            _ => continue,
        };
        out.push(folded);
    }
}

fn email(rng: &mut Rng, first: &str, last: &str, domains: &[&str]) -> String {
    let mut out = String::with_capacity(40);
    match rng.below(6) {
        0 => {
            push_ascii_lower(&mut out, first);
            out.push('.');
            push_ascii_lower(&mut out, last);
        }
        1 => {
            push_ascii_lower(&mut out, first);
            push_ascii_lower(&mut out, last);
        }
        2 => {
            let initial = first.chars().next().map(String::from).unwrap_or_default();
            push_ascii_lower(&mut out, &initial);
            out.push('.');
            push_ascii_lower(&mut out, last);
        }
        3 => {
            push_ascii_lower(&mut out, first);
            out.push('_');
            push_ascii_lower(&mut out, last);
        }
        4 => {
            push_ascii_lower(&mut out, last);
            out.push('.');
            push_ascii_lower(&mut out, first);
        }
        _ => {
            push_ascii_lower(&mut out, first);
            out.push('.');
            push_ascii_lower(&mut out, last);
            push_num(&mut out, rng.range(1, 100), 1);
        }
    }
    out.push('@');
    let domain = *rng.pick(domains);
    out.push_str(domain);
    out
}

fn phone(rng: &mut Rng, brazil: bool) -> String {
    let mut out = String::with_capacity(20);
    if brazil {
        // Brazilian mobile: +55 AA 9XXXX-XXXX.
        out.push_str("+55 ");
        let area = *rng.pick(BR_AREA_CODES);
        out.push_str(area);
        out.push_str(" 9");
        push_num(&mut out, rng.below(10_000), 4);
        out.push('-');
        push_num(&mut out, rng.below(10_000), 4);
    } else {
        // North American fictional range: +1 AAA-555-01XX.
        out.push_str("+1 ");
        let area = *rng.pick(US_AREA_CODES);
        out.push_str(area);
        out.push_str("-555-01");
        push_num(&mut out, rng.below(100), 2);
    }
    out
}

fn person(rng: &mut Rng, seq: u64) -> (Option<String>, Value) {
    let brazil = rng.chance(50);
    let female = rng.chance(50);
    let (firsts, lasts, domains) = match (brazil, female) {
        (true, true) => (BR_FEMALE, BR_LAST, BR_EMAIL_DOMAINS),
        (true, false) => (BR_MALE, BR_LAST, BR_EMAIL_DOMAINS),
        (false, true) => (US_FEMALE, US_LAST, US_EMAIL_DOMAINS),
        (false, false) => (US_MALE, US_LAST, US_EMAIL_DOMAINS),
    };
    let first = *rng.pick(firsts);
    let last = *rng.pick(lasts);
    let mut name = String::with_capacity(first.len() + last.len() + 1);
    name.push_str(first);
    name.push(' ');
    name.push_str(last);
    let email = email(rng, first, last, domains);
    let phone = phone(rng, brazil);
    // Ages 10 to 80 on the reference date: born 10*365.25 to 80*365.25 days before it.
    let age_days = rng.range(3_653, 29_220) as i64;
    let mut birth_date = String::with_capacity(10);
    push_date(&mut birth_date, REFERENCE_DAY - age_days);
    let job = *rng.pick(JOBS);
    // Monotonic in seq (one second apart), capped to stay within four-digit years.
    let updated = UPDATED_AT_EPOCH_SECS + (seq % 3_000_000_000) as i64;

    let mut map = Map::new();
    map.insert("id".into(), Value::from(seq));
    map.insert("name".into(), Value::String(name));
    map.insert("email".into(), Value::String(email));
    map.insert("phone".into(), Value::String(phone));
    map.insert("birth_date".into(), Value::String(birth_date));
    map.insert("job".into(), Value::from(job));
    map.insert("sex".into(), Value::from(if female { "F" } else { "M" }));
    map.insert("updated_at".into(), Value::String(datetime(updated)));
    (Some(seq.to_string()), Value::Object(map))
}

fn customer(rng: &mut Rng, seq: u64) -> (Option<String>, Value) {
    let firsts = match rng.below(4) {
        0 => US_MALE,
        1 => US_FEMALE,
        2 => BR_MALE,
        _ => BR_FEMALE,
    };
    // Lowercase first names, like the seed rows ('fred', 'sue', 'bill').
    let mut name = String::with_capacity(12);
    let first = *rng.pick(firsts);
    push_ascii_lower(&mut name, first);
    let id = seq.to_string();
    let mut map = Map::new();
    map.insert("id".into(), Value::String(id.clone()));
    map.insert("name".into(), Value::String(name));
    map.insert("age".into(), Value::from(rng.range(18, 91)));
    (Some(id), Value::Object(map))
}

fn order(rng: &mut Rng, seq: u64) -> (Option<String>, Value) {
    let customer_id = rng.below(seq.saturating_add(1)).to_string();
    let order_id = seq.to_string();
    // Whole cents from 1.00 to 500.00: the f64 prints with at most two decimals.
    let cents = rng.range(100, 50_001);
    let price = cents as f64 / 100.0;
    let mut map = Map::new();
    map.insert("customer_id".into(), Value::String(customer_id));
    map.insert("order_id".into(), Value::String(order_id.clone()));
    map.insert("price".into(), Value::from(price));
    map.insert("currency".into(), Value::from(*rng.pick(CURRENCIES)));
    map.insert("ts".into(), Value::String(datetime(order_secs(seq))));
    (Some(order_id), Value::Object(map))
}

/// Offset between a shipment's id and its order's id, so the two read differently.
const SHIPMENT_ID_OFFSET: u64 = 1_000_000;

fn shipment(rng: &mut Rng, seq: u64) -> (Option<String>, Value) {
    let shipment_id = seq.saturating_add(SHIPMENT_ID_OFFSET).to_string();
    // 1 to 72 hours after the order, in whole minutes.
    let delay = rng.range(60, 72 * 60 + 1) as i64 * 60;
    let mut map = Map::new();
    map.insert("order_id".into(), Value::String(seq.to_string()));
    map.insert("shipment_id".into(), Value::String(shipment_id.clone()));
    map.insert("origin".into(), Value::from(*rng.pick(US_STATES)));
    map.insert(
        "ts".into(),
        Value::String(datetime(order_secs(seq) + delay)),
    );
    (Some(shipment_id), Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(kind: Kind, seed: u64, count: u64) -> Vec<(Option<String>, Value)> {
        let mut rng = Rng::new(seed);
        (0..count).map(|seq| record(kind, &mut rng, seq)).collect()
    }

    fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
    }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` text, if it is a real calendar date.
    fn parse_date(text: &str) -> Option<i64> {
        let mut parts = text.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        // Find the day by round trip through `civil_from_days` (search a window).
        let guess = (y - 1970) * 365 + (y - 1969) / 4 + i64::from(m - 1) * 28;
        (guess - 10..guess + 60).find(|&days| civil_from_days(days) == (y, m, d))
    }

    /// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SS` text.
    fn parse_datetime(text: &str) -> Option<i64> {
        let (date, time) = text.split_once('T')?;
        let days = parse_date(date)?;
        let parts: Vec<i64> = time
            .split(':')
            .map(|p| if p.len() == 2 { p.parse().ok() } else { None })
            .collect::<Option<_>>()?;
        let [h, m, s] = parts[..] else { return None };
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        Some(days * 86_400 + h * 3600 + m * 60 + s)
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn below_and_range_stay_in_bounds_and_cover_them() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let n = rng.below(10);
            seen[n as usize] = true;
            let r = rng.range(5, 8);
            assert!((5..8).contains(&r));
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.range(9, 9), 9);
        assert_eq!(rng.range(9, 3), 9);
        let items = ["a", "b", "c"];
        let mut picked = std::collections::HashSet::new();
        for _ in 0..100 {
            picked.insert(*rng.pick(&items));
        }
        assert_eq!(picked.len(), 3);
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for name in Kind::NAMES {
            let kind = Kind::parse(name).expect("a listed name parses");
            assert_eq!(kind.name(), *name);
            assert_eq!(kind.to_string(), *name);
        }
        assert_eq!(Kind::parse("People"), Some(Kind::People));
        assert_eq!(Kind::parse("person"), None);
        assert_eq!(Kind::parse(""), None);
    }

    #[test]
    fn same_seed_gives_same_records_for_every_kind() {
        for name in Kind::NAMES {
            let kind = Kind::parse(name).expect("kind");
            assert_eq!(generate(kind, 42, 200), generate(kind, 42, 200), "{name}");
        }
    }

    #[test]
    fn different_seeds_give_different_records() {
        for name in Kind::NAMES {
            let kind = Kind::parse(name).expect("kind");
            assert_ne!(generate(kind, 1, 50), generate(kind, 2, 50), "{name}");
        }
    }

    #[test]
    fn civil_dates_convert_correctly() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(REFERENCE_DAY), (2026, 1, 1));
        assert_eq!(civil_from_days(18_353), (2020, 4, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            datetime(UPDATED_AT_EPOCH_SECS + 3_723),
            "2025-01-01T01:02:03"
        );
        assert_eq!(parse_date("2000-02-29"), Some(11_016));
        assert_eq!(parse_date("2001-02-29"), None);
    }

    #[test]
    fn people_have_the_documented_shape() {
        let people = generate(Kind::People, 3, 2_000);
        let mut brazilian = 0;
        let mut previous_update = i64::MIN;
        for (seq, (key, person)) in people.iter().enumerate() {
            let object = person.as_object().expect("object");
            let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
            fields.sort_unstable();
            assert_eq!(
                fields,
                [
                    "birth_date",
                    "email",
                    "id",
                    "job",
                    "name",
                    "phone",
                    "sex",
                    "updated_at"
                ]
            );
            assert_eq!(person["id"], Value::from(seq as u64));
            assert_eq!(key.as_deref(), Some(seq.to_string().as_str()));
            assert!(matches!(str_field(person, "sex"), "M" | "F"));
            assert!(JOBS.contains(&str_field(person, "job")));
            let name = str_field(person, "name");
            assert_eq!(name.split(' ').count(), 2, "{name}");

            let phone = str_field(person, "phone");
            if phone.starts_with("+55 ") {
                brazilian += 1;
                let b = phone.as_bytes();
                assert_eq!(b.len(), "+55 11 91234-5678".len(), "{phone}");
                assert_eq!(&b[6..8], b" 9", "{phone}");
                assert_eq!(b[12], b'-', "{phone}");
            } else {
                assert!(phone.starts_with("+1 "), "{phone}");
                assert_eq!(phone.len(), "+1 212-555-0147".len(), "{phone}");
                assert_eq!(&phone[6..13], "-555-01", "{phone}");
            }

            let birth = parse_date(str_field(person, "birth_date")).expect("birth date parses");
            let age_days = REFERENCE_DAY - birth;
            assert!((3_653..29_220).contains(&age_days), "{person}");

            let updated = parse_datetime(str_field(person, "updated_at")).expect("parses");
            assert!(updated > previous_update, "updated_at increases with seq");
            previous_update = updated;
        }
        assert!((800..1_200).contains(&brazilian), "{brazilian} of 2000");
    }

    #[test]
    fn emails_look_valid_and_follow_the_name() {
        for (_, person) in generate(Kind::People, 11, 2_000) {
            let email = str_field(&person, "email");
            let (local, domain) = email.split_once('@').expect("an @");
            assert!(!domain.contains('@'), "{email}");
            assert!(!local.is_empty(), "{email}");
            assert!(
                local.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'_'),
                "{email}"
            );
            assert!(!local.starts_with('.') && !local.ends_with('.'), "{email}");
            assert!(!local.contains(".."), "{email}");
            assert!(
                US_EMAIL_DOMAINS.contains(&domain) || BR_EMAIL_DOMAINS.contains(&domain),
                "{email}"
            );
            // The folded last name appears in the address.
            let name = str_field(&person, "name");
            let last = name.split(' ').nth(1).expect("last name");
            let mut folded = String::new();
            push_ascii_lower(&mut folded, last);
            assert!(local.contains(&folded), "{email} for {name}");
        }
    }

    #[test]
    fn accents_are_folded_for_addresses() {
        let mut out = String::new();
        push_ascii_lower(&mut out, "João");
        out.push('.');
        push_ascii_lower(&mut out, "Conceição");
        push_ascii_lower(&mut out, "O'Brien");
        assert_eq!(out, "joao.conceicaoobrien");
    }

    #[test]
    fn customers_look_like_the_seed_rows() {
        for (seq, (key, customer)) in generate(Kind::Customers, 5, 500).iter().enumerate() {
            let id = seq.to_string();
            assert_eq!(key.as_deref(), Some(id.as_str()));
            assert_eq!(str_field(customer, "id"), id);
            let name = str_field(customer, "name");
            assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()));
            let age = customer["age"].as_u64().expect("age");
            assert!((18..=90).contains(&age));
            assert_eq!(customer.as_object().map(Map::len), Some(3));
        }
    }

    #[test]
    fn orders_look_like_the_seed_orders() {
        for (seq, (key, order)) in generate(Kind::Orders, 9, 1_000).iter().enumerate() {
            assert_eq!(key.as_deref(), Some(seq.to_string().as_str()));
            assert_eq!(str_field(order, "order_id"), seq.to_string());
            let customer: u64 = str_field(order, "customer_id").parse().expect("numeric");
            assert!(customer <= seq as u64);
            assert!(CURRENCIES.contains(&str_field(order, "currency")));
            let price = order["price"].as_f64().expect("price");
            assert!((1.0..=500.0).contains(&price));
            let text = order["price"].to_string();
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 2, "{text}");
            let ts = str_field(order, "ts");
            assert!(ts.starts_with("2020-04-0"), "{ts}");
            assert!(parse_datetime(ts).is_some(), "{ts}");
        }
    }

    #[test]
    fn shipments_join_orders_within_the_window() {
        let orders = generate(Kind::Orders, 1, 1_000);
        // A different seed: the join must not depend on sharing one.
        let shipments = generate(Kind::Shipments, 2, 1_000);
        for ((_, order), (key, shipment)) in orders.iter().zip(&shipments) {
            assert_eq!(
                str_field(order, "order_id"),
                str_field(shipment, "order_id")
            );
            assert_eq!(key.as_deref(), Some(str_field(shipment, "shipment_id")));
            assert_ne!(
                str_field(shipment, "shipment_id"),
                str_field(shipment, "order_id")
            );
            assert!(US_STATES.contains(&str_field(shipment, "origin")));
            let ordered = parse_datetime(str_field(order, "ts")).expect("order ts");
            let ts = str_field(shipment, "ts");
            assert!(ts.starts_with("2020-04-0"), "{ts}");
            let shipped = parse_datetime(ts).expect("shipment ts");
            assert!((3_600..=72 * 3_600).contains(&(shipped - ordered)));
        }
    }
}
