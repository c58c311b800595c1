//! A fair share of the host's CPU between the tenants of one server.
//!
//! The kernel shares CPU between threads, so a tenant with more busy
//! threads (more pipelines, more stages) gets more of the machine. Here each
//! tenant has a weight, and while several tenants are active each may use
//! `cores × weight / (sum of the active tenants' weights)`; a tenant alone
//! may use everything. Every pipeline thread of a served run measures its
//! own CPU time (`CLOCK_THREAD_CPUTIME_ID`) at each batch boundary and
//! charges it to its tenant's bucket, which refills at the tenant's share;
//! a thread whose tenant is in debt sleeps until the debt is repaid, before
//! it takes its next batch. The share is a cap while others are active, not
//! a reservation: CPU that an active tenant leaves unused is not lent out.
//!
//! A plugin call is not interrupted for this (its own CPU budget bounds it),
//! so the share holds over a few hundred milliseconds, not within a call.
//! Outside a server no thread has an account and [`pace`] is one
//! thread-local read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::metrics::thread_cpu_ns;

/// A tenant that charged nothing for this long no longer counts as active.
const ACTIVE_WINDOW: Duration = Duration::from_millis(500);
/// CPU a tenant may use ahead of its share, in nanoseconds (one burst).
const BURST_NS: f64 = 50e6;
/// The longest one wait; a thread still in debt after it waits again at its
/// next batch, so a stop is never held up for long.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// The shares of one server's tenants.
pub struct Governor {
    cores: f64,
    /// False under `SLUICE_CPU_SHARE=off`: usage is counted, nobody waits
    /// (for measuring what the share changes).
    enforced: bool,
    tenants: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    weight: u32,
    /// CPU nanoseconds it may still use; negative is debt.
    balance_ns: f64,
    refilled: Instant,
    last_charge: Instant,
    used_ns: u64,
    throttled_ns: u64,
}

/// What a tenant used and how long its threads waited for their share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time its pipelines' threads used.
    pub used_ns: u64,
    /// Time its threads slept to stay within the share.
    pub throttled_ns: u64,
}

/// One tenant's account with a [`Governor`]; pipeline threads carry it.
pub struct Account {
    governor: Arc<Governor>,
    tenant: String,
}

impl Governor {
    /// A governor sharing `cores` CPUs.
    pub fn new(cores: usize) -> Arc<Self> {
        Arc::new(Self {
            cores: cores.max(1) as f64,
            enforced: true,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// A governor sharing the CPUs this process may run on; counting only
    /// under `SLUICE_CPU_SHARE=off`.
    pub fn for_this_host() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let enforced = std::env::var("SLUICE_CPU_SHARE").map_or(true, |v| v != "off");
        Arc::new(Self {
            cores: cores as f64,
            enforced,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Bucket>> {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `tenant`'s account, with `weight` (at least 1) from now on.
    pub fn account(self: &Arc<Self>, tenant: &str, weight: u32) -> Arc<Account> {
        let now = Instant::now();
        self.lock()
            .entry(tenant.to_string())
            .and_modify(|b| b.weight = weight.max(1))
            .or_insert(Bucket {
                weight: weight.max(1),
                balance_ns: BURST_NS,
                refilled: now,
                // Not active until it uses something.
                last_charge: now.checked_sub(ACTIVE_WINDOW * 2).unwrap_or(now),
                used_ns: 0,
                throttled_ns: 0,
            });
        Arc::new(Account {
            governor: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// What `tenant` used so far.
    pub fn usage(&self, tenant: &str) -> Usage {
        self.lock()
            .get(tenant)
            .map_or_else(Usage::default, |b| Usage {
                used_ns: b.used_ns,
                throttled_ns: b.throttled_ns,
            })
    }

    /// Charges `cpu_ns` to `tenant` at `now`; how long its thread should wait.
    fn charge(&self, tenant: &str, cpu_ns: u64, now: Instant) -> Duration {
        let mut all = self.lock();
        let active_weight: u64 = all
            .iter()
            .filter(|(name, b)| {
                name.as_str() == tenant || now.duration_since(b.last_charge) < ACTIVE_WINDOW
            })
            .map(|(_, b)| u64::from(b.weight))
            .sum();
        let Some(b) = all.get_mut(tenant) else {
            return Duration::ZERO;
        };
        b.last_charge = now;
        b.used_ns = b.used_ns.saturating_add(cpu_ns);
        let elapsed = now.duration_since(b.refilled).as_nanos() as f64;
        b.refilled = now;
        if !self.enforced || active_weight <= u64::from(b.weight) {
            // Alone: the whole machine, and a full burst for when others come.
            b.balance_ns = BURST_NS;
            return Duration::ZERO;
        }
        let share = self.cores * f64::from(b.weight) / active_weight as f64;
        b.balance_ns = (b.balance_ns + elapsed * share).min(BURST_NS) - cpu_ns as f64;
        if b.balance_ns >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((-b.balance_ns / share) as u64).min(MAX_WAIT)
    }

    fn waited(&self, tenant: &str, slept: Duration) {
        if let Some(b) = self.lock().get_mut(tenant) {
            b.throttled_ns = b
                .throttled_ns
                .saturating_add(u64::try_from(slept.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

struct Meter {
    account: Arc<Account>,
    last_cpu_ns: u64,
}

thread_local! {
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// The calling thread's account, for a thread it starts to carry on.
pub fn current() -> Option<Arc<Account>> {
    METER.with(|m| m.borrow().as_ref().map(|m| m.account.clone()))
}

/// Charges the calling thread's CPU from now on to `account` (none: to
/// nobody, as outside a server).
pub fn enter(account: Option<Arc<Account>>) {
    METER.with(|m| {
        *m.borrow_mut() = account.map(|account| Meter {
            account,
            last_cpu_ns: thread_cpu_ns(),
        });
    });
}

/// At a batch boundary: charges the CPU this thread used since the last
/// call to its tenant, and waits while the tenant is over its share.
pub fn pace() {
    let debt = METER.with(|m| {
        let mut m = m.borrow_mut();
        let meter = m.as_mut()?;
        let now_cpu = thread_cpu_ns();
        let used = now_cpu.saturating_sub(meter.last_cpu_ns);
        meter.last_cpu_ns = now_cpu;
        let a = &meter.account;
        let wait = a.governor.charge(&a.tenant, used, Instant::now());
        (!wait.is_zero()).then(|| (a.clone(), wait))
    });
    if let Some((account, wait)) = debt {
        std::thread::sleep(wait);
        account.governor.waited(&account.tenant, wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_tenant_alone_is_never_held_back() {
        let g = Governor::new(2);
        g.account("a", 1);
        let t0 = Instant::now();
        for i in 0..100 {
            let at = t0 + Duration::from_millis(i);
            assert_eq!(g.charge("a", 10 * MS, at), Duration::ZERO);
        }
        assert_eq!(g.usage("a").used_ns, 1000 * MS);
    }

    #[test]
    fn with_two_active_tenants_each_is_held_to_its_weighted_share() {
        let g = Governor::new(2);
        g.account("a", 1);
        g.account("b", 3);
        let t0 = Instant::now();
        // One thread of `a` uses 100 ms of CPU per 25 ms of wall time, four
        // times, waiting as told; `b` stays active beside it.
        let mut t = t0;
        let mut steps = 0;
        loop {
            t += Duration::from_millis(25);
            assert_eq!(
                g.charge("b", MS, t),
                Duration::ZERO,
                "b is within 1.5 cores"
            );
            let cpu = if steps < 4 { 100 * MS } else { 0 };
            let wait = g.charge("a", cpu, t);
            assert!(wait <= MAX_WAIT);
            t += wait;
            steps += 1;
            if steps >= 4 && wait.is_zero() {
                break;
            }
        }
        // 400 ms of CPU at 0.5 core (weight 1 of 4 on 2 cores), less the
        // 50 ms burst: about 700 ms of wall time.
        let took = t.duration_since(t0);
        assert!(
            took >= Duration::from_millis(650) && took <= Duration::from_millis(800),
            "took {took:?}"
        );
        assert!(g.usage("a").used_ns == 400 * MS);
    }

    #[test]
    fn a_tenant_idle_for_a_while_no_longer_shares() {
        let g = Governor::new(2);
        g.account("a", 1);
        g.account("b", 1);
        let t0 = Instant::now();
        g.charge("b", MS, t0);
        assert!(!g
            .charge("a", 500 * MS, t0 + Duration::from_millis(1))
            .is_zero());
        // b has been quiet for longer than the window: a is alone again.
        let later = t0 + ACTIVE_WINDOW + Duration::from_millis(10);
        assert_eq!(g.charge("a", 500 * MS, later), Duration::ZERO);
    }

    #[test]
    fn pace_charges_only_threads_that_carry_an_account() {
        let g = Governor::new(1);
        enter(None);
        pace();
        let a = g.account("a", 1);
        enter(Some(a));
        let spin_until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < spin_until {
            std::hint::black_box(0u64);
        }
        pace();
        assert!(g.usage("a").used_ns >= 5 * MS, "{:?}", g.usage("a"));
        assert!(current().is_some());
        enter(None);
        assert!(current().is_none());
    }
}
