//! Ctrl-C / SIGTERM: the first asks for a graceful stop, the second exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Sets `stop` on the first SIGINT or SIGTERM; exits with 130 on the second.
pub fn install(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new().name("sluice-signals".into()).spawn(move || {
        rt.block_on(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                if stop.swap(true, Ordering::SeqCst) {
                    eprintln!("second signal: exiting without draining");
                    std::process::exit(130);
                }
                eprintln!("stopping: draining in-flight events and checkpointing (signal again to exit now)");
            }
        });
    })?;
    Ok(())
}
