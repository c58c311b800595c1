//! A test guest that misbehaves on request, to prove the sandbox contains it.
//! An event `{"do": "loop"}` spins forever, `{"do": "alloc"}` asks for 4 GiB,
//! `{"do": "panic"}` panics; any other event is forwarded with `"tag"` set to
//! the build-time `MISBEHAVE_TAG` (so two builds can be told apart in a
//! hot-reload test). The parameter `on_create: loop` (or `alloc`) does the
//! same in `create`, before any event, to prove `create` runs under the
//! stage's limits too.

use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The misbehaving transform.
pub struct Misbehave;

const TAG: &str = match option_env!("MISBEHAVE_TAG") {
    Some(t) => t,
    None => "a",
};

impl Transform for Misbehave {
    fn new(params: &Params) -> Result<Self, String> {
        match params.get("on_create") {
            Some("loop") => spin(),
            Some("alloc") => {
                let hoard = hoard();
                Err(format!("allocated {} bytes", hoard.len()))
            }
            _ => Ok(Misbehave),
        }
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        let mut value = event.json()?;
        match value.get("do").and_then(|d| d.as_str()) {
            Some("loop") => spin(),
            Some("alloc") => {
                let hoard = hoard();
                out.value(&hoard[63][..1]);
            }
            Some("panic") => panic!("boom on purpose at event {}", value["n"]),
            _ => {
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("tag".into(), TAG.into());
                }
                out.json(&value);
            }
        }
        Ok(())
    }
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// 4 GiB in 64 MiB pieces (one allocation cannot exceed isize::MAX on
/// wasm32), all kept alive.
fn hoard() -> Vec<Vec<u8>> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    for _ in 0..64 {
        hoard.push(vec![1u8; 64 << 20]);
    }
    hoard
}

sluice_sdk::export_transform!(Misbehave);
