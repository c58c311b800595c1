//! The hand-written native reference: each job as a competent engineer
//! would write it in plain Rust for one known input shape — serde derive
//! structs that borrow from the line where they can, a buffered reader and
//! writer, and a `HashMap` for the customers. No plugin crates, no Sluice.
//!
//! It is the yardstick for "near-native", so it must stay honest: don't
//! slow it down, and don't special-case the generated data beyond knowing
//! its field names and types, as any hand-written job would.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::shapes::{Job, Shape};

type Out = BufWriter<File>;

/// A customer, as the join looks it up.
struct Customer {
    name: String,
    age: i64,
}

#[derive(Deserialize)]
struct CustomerRow {
    customer_id: i64,
    name: String,
    age: i64,
}

/// Runs `job` on `shape` events from `input` into `output`; returns the lines written.
pub fn run(
    shape: Shape,
    job: Job,
    input: &Path,
    table: Option<&Path>,
    output: &Path,
) -> Result<u64> {
    let customers = match job {
        Job::Transform => HashMap::new(),
        Job::Join => load_customers(table.context("the join needs --table")?)?,
    };
    let c = &customers;
    match (shape, job) {
        (Shape::Orders, Job::Transform) => each_line(input, output, orders::transform),
        (Shape::Orders, Job::Join) => each_line(input, output, |l, w| orders::join(l, c, w)),
        (Shape::Wide, Job::Transform) => each_line(input, output, wide::transform),
        (Shape::Wide, Job::Join) => each_line(input, output, |l, w| wide::join(l, c, w)),
        (Shape::Nested, Job::Transform) => each_line(input, output, nested::transform),
        (Shape::Nested, Job::Join) => each_line(input, output, |l, w| nested::join(l, c, w)),
        (Shape::Unicode, Job::Transform) => each_line(input, output, unicode::transform),
        (Shape::Unicode, Job::Join) => each_line(input, output, |l, w| unicode::join(l, c, w)),
    }
}

fn load_customers(path: &Path) -> Result<HashMap<i64, Customer>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut map = HashMap::new();
    for line in BufReader::new(file).lines() {
        let row: CustomerRow = serde_json::from_str(&line?)?;
        map.insert(
            row.customer_id,
            Customer {
                name: row.name,
                age: row.age,
            },
        );
    }
    Ok(map)
}

/// Reads `input` line by line into one reused buffer, and lets `f` write
/// the line's output (if any) to `output`.
fn each_line(
    input: &Path,
    output: &Path,
    mut f: impl FnMut(&str, &mut Out) -> Result<bool>,
) -> Result<u64> {
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let out = File::create(output).with_context(|| format!("creating {}", output.display()))?;
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut line = String::new();
    let (mut n, mut written) = (0u64, 0u64);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        n += 1;
        let text = line.trim_end();
        if text.is_empty() {
            continue;
        }
        if f(text, &mut w).with_context(|| format!("{} line {n}", input.display()))? {
            written += 1;
        }
    }
    w.flush()?;
    Ok(written)
}

fn emit(w: &mut Out, v: &impl Serialize) -> Result<bool> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")?;
    Ok(true)
}

fn cents(price: f64) -> i64 {
    (price * 100.0).round() as i64
}

mod orders {
    use super::*;

    #[derive(Deserialize)]
    struct Order<'a> {
        #[serde(borrow)]
        order_id: Cow<'a, str>,
        customer_id: i64,
        price: f64,
        #[serde(borrow)]
        currency: Cow<'a, str>,
    }

    #[derive(Serialize)]
    struct Shaped<'a> {
        order_id: &'a str,
        customer_id: i64,
        currency: &'a str,
        price_cents: i64,
    }

    #[derive(Serialize)]
    struct Joined<'a> {
        order_id: &'a str,
        customer_id: i64,
        currency: &'a str,
        price_cents: i64,
        customer_name: &'a str,
        customer_age: i64,
    }

    pub fn transform(line: &str, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        emit(
            w,
            &Shaped {
                order_id: &o.order_id,
                customer_id: o.customer_id,
                currency: &o.currency,
                price_cents: cents(o.price),
            },
        )
    }

    pub fn join(line: &str, customers: &HashMap<i64, Customer>, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        let Some(c) = customers.get(&o.customer_id) else {
            return Ok(false);
        };
        emit(
            w,
            &Joined {
                order_id: &o.order_id,
                customer_id: o.customer_id,
                currency: &o.currency,
                price_cents: cents(o.price),
                customer_name: &c.name,
                customer_age: c.age,
            },
        )
    }
}

mod wide {
    use super::*;

    #[derive(Deserialize)]
    struct Row<'a> {
        #[serde(borrow)]
        order_id: Cow<'a, str>,
        customer_id: i64,
        price: f64,
        #[serde(borrow)]
        currency: Cow<'a, str>,
        f12: i64,
        f13: f64,
        #[serde(borrow)]
        f14: Cow<'a, str>,
        f15: bool,
    }

    #[derive(Serialize)]
    struct Shaped<'a> {
        order_id: &'a str,
        customer_id: i64,
        currency: &'a str,
        f12: i64,
        f13: f64,
        f14: &'a str,
        f15: bool,
        price_cents: i64,
    }

    #[derive(Serialize)]
    struct Joined<'a> {
        #[serde(flatten)]
        shaped: Shaped<'a>,
        customer_name: &'a str,
        customer_age: i64,
    }

    fn shaped<'a>(r: &'a Row<'_>) -> Shaped<'a> {
        Shaped {
            order_id: &r.order_id,
            customer_id: r.customer_id,
            currency: &r.currency,
            f12: r.f12,
            f13: r.f13,
            f14: &r.f14,
            f15: r.f15,
            price_cents: cents(r.price),
        }
    }

    pub fn transform(line: &str, w: &mut Out) -> Result<bool> {
        let r: Row = serde_json::from_str(line)?;
        if r.currency == "aud" {
            return Ok(false);
        }
        emit(w, &shaped(&r))
    }

    pub fn join(line: &str, customers: &HashMap<i64, Customer>, w: &mut Out) -> Result<bool> {
        let r: Row = serde_json::from_str(line)?;
        if r.currency == "aud" {
            return Ok(false);
        }
        let Some(c) = customers.get(&r.customer_id) else {
            return Ok(false);
        };
        emit(
            w,
            &Joined {
                shaped: shaped(&r),
                customer_name: &c.name,
                customer_age: c.age,
            },
        )
    }
}

mod nested {
    use super::*;

    #[derive(Deserialize)]
    struct Order<'a> {
        #[serde(borrow)]
        order_id: Cow<'a, str>,
        customer_id: i64,
        price: f64,
        #[serde(borrow)]
        currency: Cow<'a, str>,
        #[serde(borrow)]
        shipping: Shipping<'a>,
    }

    #[derive(Deserialize, Serialize)]
    struct Shipping<'a> {
        #[serde(borrow)]
        city: Cow<'a, str>,
        #[serde(borrow)]
        country: Cow<'a, str>,
    }

    #[derive(Serialize)]
    struct Shaped<'a> {
        order_id: &'a str,
        customer_id: i64,
        currency: &'a str,
        shipping: &'a Shipping<'a>,
        price_cents: i64,
    }

    #[derive(Serialize)]
    struct Joined<'a> {
        #[serde(flatten)]
        shaped: Shaped<'a>,
        customer_name: &'a str,
        customer_age: i64,
    }

    fn shaped<'a>(o: &'a Order<'a>) -> Shaped<'a> {
        Shaped {
            order_id: &o.order_id,
            customer_id: o.customer_id,
            currency: &o.currency,
            shipping: &o.shipping,
            price_cents: cents(o.price),
        }
    }

    pub fn transform(line: &str, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        emit(w, &shaped(&o))
    }

    pub fn join(line: &str, customers: &HashMap<i64, Customer>, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        let Some(c) = customers.get(&o.customer_id) else {
            return Ok(false);
        };
        emit(
            w,
            &Joined {
                shaped: shaped(&o),
                customer_name: &c.name,
                customer_age: c.age,
            },
        )
    }
}

mod unicode {
    use super::*;

    #[derive(Deserialize)]
    struct Order<'a> {
        #[serde(borrow)]
        order_id: Cow<'a, str>,
        customer_id: i64,
        price: f64,
        #[serde(borrow)]
        currency: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(borrow)]
        city: Cow<'a, str>,
    }

    #[derive(Serialize)]
    struct Shaped<'a> {
        order_id: &'a str,
        customer_id: i64,
        currency: &'a str,
        name: &'a str,
        city: &'a str,
        price_cents: i64,
    }

    #[derive(Serialize)]
    struct Joined<'a> {
        #[serde(flatten)]
        shaped: Shaped<'a>,
        customer_name: &'a str,
        customer_age: i64,
    }

    fn shaped<'a>(o: &'a Order<'a>) -> Shaped<'a> {
        Shaped {
            order_id: &o.order_id,
            customer_id: o.customer_id,
            currency: &o.currency,
            name: &o.name,
            city: &o.city,
            price_cents: cents(o.price),
        }
    }

    pub fn transform(line: &str, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        emit(w, &shaped(&o))
    }

    pub fn join(line: &str, customers: &HashMap<i64, Customer>, w: &mut Out) -> Result<bool> {
        let o: Order = serde_json::from_str(line)?;
        if o.currency == "aud" {
            return Ok(false);
        }
        let Some(c) = customers.get(&o.customer_id) else {
            return Ok(false);
        };
        emit(
            w,
            &Joined {
                shaped: shaped(&o),
                customer_name: &c.name,
                customer_age: c.age,
            },
        )
    }
}
