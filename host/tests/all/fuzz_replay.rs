//! The fuzz targets' invariants (`fuzz/src/lib.rs`), run in the normal test
//! build: every corpus entry in `fuzz/corpus/<target>/`, then seeded random
//! mutations of them for a few seconds per target. This is not
//! coverage-guided (that is `scripts/fuzz.sh`, a second instrumented build
//! too slow for CI); it makes CI fail when a change breaks an invariant on an
//! input the corpus already reaches, or on one a few mutations away.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "../../../fuzz/src/lib.rs"]
mod checks;

/// Seconds of mutations per target: `SLUICE_FUZZ_REPLAY_SECS`, default 3.
fn budget() -> Duration {
    let secs = std::env::var("SLUICE_FUZZ_REPLAY_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs.max(0.0))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/corpus/{target}"));
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    entries.sort();
    entries
        .iter()
        .map(|p| std::fs::read(p).expect("a readable corpus file"))
        .collect()
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// The byte values libFuzzer also favours: edges of the integer types.
const INTERESTING: &[&[u8]] = &[
    &[0],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0x80],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
];

/// One to four of: flip a bit, set a byte, insert bytes (random or
/// interesting), delete a range, duplicate a range, truncate, or splice in
/// part of another corpus entry.
fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())].to_vec()
                } else {
                    (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect()
                };
                out.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                out.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let copy = out[at..at + n].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - from).min(256));
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[from..from + n].iter().copied());
                }
            }
        }
    }
    out
}

/// Runs `check` on `input`; a panic fails the test with the input saved to
/// a file and the command that replays it under libFuzzer.
fn run(target: &str, check: fn(&[u8]), input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_ok() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-replay");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{target}-crash"));
    let _ = std::fs::write(&file, input);
    panic!(
        "fuzz target `{target}` broke its invariant on {what} ({} bytes, saved to {}); replay it with \
         `cd fuzz && cargo fuzz run {target} {}` or read fuzz/src/lib.rs",
        input.len(),
        file.display(),
        file.display()
    );
}

#[test]
fn every_fuzz_target_holds_on_its_corpus_and_seeded_mutations_of_it() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("fuzz replay: seed {seed}, {:?} per target", budget());
    let mut rng = Rng(seed);
    for &(target, check) in checks::TARGETS {
        let corpus = corpus(target);
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no seeds");
        for (i, input) in corpus.iter().enumerate() {
            run(target, check, input, &format!("corpus entry {i}"));
        }
        let (start, mut runs) = (Instant::now(), 0u64);
        while start.elapsed() < budget() {
            let base = &corpus[rng.below(corpus.len())];
            let input = mutate(&mut rng, base, &corpus);
            run(
                target,
                check,
                &input,
                &format!("mutation {runs} (seed {seed})"),
            );
            runs += 1;
        }
        eprintln!(
            "fuzz replay: {target}: {} corpus entries, {runs} mutations",
            corpus.len()
        );
    }
}

#[test]
fn a_broken_invariant_fails_the_replay_and_saves_the_input() {
    fn refuses_boom(data: &[u8]) {
        assert!(data != b"boom", "boom");
    }
    run("selftest", refuses_boom, b"fine", "a good input");
    let failed = catch_unwind(|| run("selftest", refuses_boom, b"boom", "a bad input"));
    let message = failed
        .expect_err("the replay must fail on a broken invariant")
        .downcast::<String>()
        .map(|m| *m)
        .unwrap_or_default();
    assert!(
        message.contains("fuzz target `selftest` broke its invariant on a bad input (4 bytes"),
        "{message}"
    );
    let saved = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-replay/selftest-crash");
    assert_eq!(std::fs::read(saved).expect("the saved input"), b"boom");
}
