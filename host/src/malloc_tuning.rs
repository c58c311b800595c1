//! Keeps glibc's allocator from handing batch buffers back to the kernel
//! after every batch.
//!
//! Each stage allocates a batch's buffers (hundreds of KiB to a few MiB) on
//! its own thread and frees them on the next. With glibc's defaults the
//! freed top of a thread's arena is past the trim threshold, so `free`
//! returns it with `madvise(MADV_DONTNEED)`, and the next batch faults the
//! same pages back in: on `file → passthrough → file` that churn (the
//! syscall, TLB-shootdown interrupts, page faults) was about a sixth of the
//! stage's thread. Fixed thresholds keep up to [`TRIM_THRESHOLD`] of freed
//! memory per arena for reuse; allocations from [`MMAP_THRESHOLD`] up still
//! get their own mapping and go back to the kernel when freed, so one huge
//! event does not stay resident.

/// Free memory an arena keeps at its top before returning it.
pub const TRIM_THRESHOLD: i32 = 64 << 20;
/// Allocations this large or larger are mapped on their own.
pub const MMAP_THRESHOLD: i32 = 8 << 20;

/// Applies the thresholds, unless the operator tuned glibc's malloc
/// (`GLIBC_TUNABLES=glibc.malloc.…`, or the older `MALLOC_…_` variables such
/// as `MALLOC_TRIM_THRESHOLD_`), whose settings then stand. Returns whether
/// it applied them. Elsewhere than glibc, does nothing.
pub fn tune() -> bool {
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    operator_left_it(tunables.as_deref(), &names) && apply()
}

/// Whether the environment (`GLIBC_TUNABLES`' value, the variables' names)
/// leaves malloc to us.
fn operator_left_it(tunables: Option<&str>, names: &[String]) -> bool {
    !tunables.is_some_and(|t| t.contains("glibc.malloc."))
        && !names
            .iter()
            .any(|n| n.starts_with("MALLOC_") && n.ends_with('_'))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: `mallopt` only sets allocator parameters; it is called before
    // the program has started other threads (and is thread-safe regardless).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_malloc_tunables_stand_and_others_do_not_stop_the_tuning() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let plain = names(&["PATH", "HOME", "MALLOC_CONF"]);
        assert!(operator_left_it(None, &plain));
        assert!(operator_left_it(
            Some("glibc.rtld.optional_static_tls=2048"),
            &plain
        ));
        assert!(!operator_left_it(
            Some("glibc.rtld.nns=2:glibc.malloc.trim_threshold=0"),
            &plain
        ));
        assert!(!operator_left_it(
            None,
            &names(&["PATH", "MALLOC_TRIM_THRESHOLD_"])
        ));
        assert!(!operator_left_it(None, &names(&["MALLOC_ARENA_MAX_"])));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_thresholds() {
        assert!(apply(), "mallopt refused a threshold");
    }
}
