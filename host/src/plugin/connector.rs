//! Custom connectors: components exporting the `source` or `sink` world,
//! loaded, linked and called under the same sandbox as every plugin
//! (memory limiter, epoch CPU deadline per call, output checks, log budget,
//! identity in errors). A trap or limit breach fails the call and discards
//! the instance; the caller (`sources/wasm`, `sinks/wasm`) reopens a fresh
//! one at the position it knows to be safe.
//!
//! The CPU deadline counts time in the guest only: time a call spends
//! waiting on a granted HTTP request is bounded by the request's own
//! timeouts (`HttpLimits`) and credited back to the deadline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use wasmtime::component::{HasSelf, Linker, ResourceAny};
use wasmtime::{Store, UpdateDeadline};

use super::bindings::v2::{self, sink as wsink, source as wsource};
use super::bindings::{Batch, PluginInfo};
use super::cache::ComponentCache;
use super::component::{self, Shape, World};
use super::engine::WasmEngine;
use super::host::HostState;
use super::limiter::StoreData;
use super::limits::Limits;
use super::net::{Grants, HttpLimits, Net};
use super::output_check;
use super::transform::{call_deadline, classify, compile, file_stem, link_err};
use super::{CallFailure, LoadError};
use crate::event::abi::{Frame, Output, Rejection};

/// The contract interface custom connectors may be granted.
pub const HTTP_IMPORT: &str = "sluice:plugin/http";

/// Most bytes of one checkpointed position.
pub const MAX_POSITION_BYTES: usize = 1 << 20;

/// Most bytes of one malformed input's reason (longer ones are cut).
const MAX_REASON_BYTES: usize = 4096;

/// The engine and compile cache connectors share in this process. Stages
/// get theirs from the runner; connectors are built by their configs, which
/// see no runner, so they share one of their own.
pub fn shared() -> anyhow::Result<&'static (WasmEngine, ComponentCache)> {
    static SHARED: OnceLock<(WasmEngine, ComponentCache)> = OnceLock::new();
    if let Some(s) = SHARED.get() {
        return Ok(s);
    }
    let built = (WasmEngine::new()?, ComponentCache::from_env());
    Ok(SHARED.get_or_init(|| built))
}

/// True when the component imports the `clock` interface.
pub fn wants_clock(shape: &Shape) -> bool {
    shape
        .imports
        .iter()
        .any(|i| i.starts_with(super::clock::CLOCK_IMPORT))
}

/// True when the component imports the `http` interface.
pub fn wants_http(shape: &Shape) -> bool {
    shape.imports.iter().any(|i| i.starts_with(HTTP_IMPORT))
}

enum Pre {
    Source(wsource::SourcePre<StoreData>),
    Sink(wsink::SinkPre<StoreData>),
}

enum Guest {
    Source(wsource::Source),
    Sink(wsink::Sink),
}

/// A compiled, linked connector component.
pub struct ConnectorPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Its exports and imports.
    pub shape: Shape,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    engine: wasmtime::Engine,
    pre: Pre,
}

impl ConnectorPlugin {
    /// Loads `path` as a connector of `world` (`Source` or `Sink`). The
    /// `http` import is linked only when `grants.http` names a host; any
    /// other import, granted interfaces aside, is a trap.
    pub fn load(
        engine: &WasmEngine,
        cache: &ComponentCache,
        path: &Path,
        world: World,
        grants: &Grants,
        limits: &Limits,
    ) -> Result<Self, LoadError> {
        let compiled = compile(engine, cache, path, limits.cpu_ms_per_call)?;
        component::check_world(path, &compiled.shape, world)?;
        if compiled.shape.version.as_deref() != Some("0.2.0") {
            return Err(link_err(
                path,
                "custom connectors need contract 0.2.0; rebuild against the current sluice-sdk",
            ));
        }
        let mut linker: Linker<StoreData> = Linker::new(&compiled.engine);
        v2::sluice::plugin::log::add_to_linker::<StoreData, HasSelf<HostState>>(&mut linker, |s| {
            &mut s.host
        })
        .map_err(|e| link_err(path, e))?;
        if !grants.http.is_empty() {
            wsource::sluice::plugin::http::add_to_linker::<StoreData, HasSelf<HostState>>(
                &mut linker,
                |s| &mut s.host,
            )
            .map_err(|e| link_err(path, e))?;
        }
        // Always linked (Python and JS components import it whether they
        // use it or not); without the grant a call fails naming it.
        super::clock::add_to_linker(&mut linker, grants.clock).map_err(|e| link_err(path, e))?;
        linker
            .define_unknown_imports_as_traps(&compiled.component)
            .map_err(|e| link_err(path, e))?;
        let pre = linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| link_err(path, e))?;
        let pre = match world {
            World::Sink => Pre::Sink(wsink::SinkPre::new(pre).map_err(|e| link_err(path, e))?),
            _ => Pre::Source(wsource::SourcePre::new(pre).map_err(|e| link_err(path, e))?),
        };
        let mut plugin = Self {
            path: path.to_path_buf(),
            info: PluginInfo {
                name: file_stem(path),
                version: "?".into(),
                description: String::new(),
            },
            shape: compiled.shape,
            sha256: compiled.sha256,
            engine: compiled.engine,
            pre,
        };
        let mut store = plugin.store("describe", limits, None);
        plugin.info = match &plugin.pre {
            Pre::Source(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_reader().call_describe(&mut store)),
            Pre::Sink(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| i.sluice_plugin_writer().call_describe(&mut store)),
        }
        .map(super::wire::info)
        .map_err(|e| super::transform::describe_err(path, e, limits.cpu_ms_per_call))?;
        Ok(plugin)
    }

    /// The plugin as errors and logs name it (see [`super::identity::label`]).
    pub fn label(&self) -> String {
        super::identity::label(&self.path, &self.sha256, &self.info)
    }

    fn store(&self, name: &str, limits: &Limits, net: Option<Net>) -> Store<StoreData> {
        let log = limits.log_bytes_per_call();
        let mut host = super::with_log_budget(log, || HostState::new(name, &self.label()));
        host.net = net;
        let mut store = StoreData::new(host, limits.memory_mb).store(&self.engine);
        if let (Some(ticks), _) = call_deadline(limits.cpu_ms_per_call, None) {
            store.set_epoch_deadline(ticks);
            // Time spent waiting on the network is not the guest's CPU: give
            // it back, bounded by the requests' own timeouts.
            store.epoch_deadline_callback(|mut cx| {
                let waited = cx
                    .data_mut()
                    .host
                    .net
                    .as_mut()
                    .map(|n| std::mem::take(&mut n.waited))
                    .unwrap_or_default();
                if waited.is_zero() {
                    return Err(wasmtime::Trap::Interrupt.into());
                }
                Ok(UpdateDeadline::Continue(WasmEngine::ticks_for(waited)))
            });
        }
        store
    }
}

struct Live {
    store: Store<StoreData>,
    guest: Guest,
    handle: ResourceAny,
}

/// What a source's poll returned, checked.
#[derive(Debug)]
pub struct SourcePoll {
    /// Events, with spans, headers and ceilings checked and host-owned
    /// headers stripped.
    pub events: Frame,
    /// Inputs the source could not decode: (raw bytes, reason).
    pub malformed: Vec<(Vec<u8>, String)>,
    /// The new position, if it moved.
    pub position: Option<Vec<u8>>,
    /// The source says it has delivered its backlog.
    pub caught_up: bool,
    /// A bounded source is drained.
    pub done: bool,
}

/// One running connector instance, replaced after any failure.
pub struct ConnectorInstance {
    plugin: Arc<ConnectorPlugin>,
    name: String,
    params: Vec<v2::sluice::plugin::types::Param>,
    limits: Limits,
    grants: Grants,
    http_limits: HttpLimits,
    live: Option<Live>,
    /// Instances created so far.
    pub instantiations: u64,
}

impl ConnectorInstance {
    /// An instance of `plugin` for the connector `name`; nothing runs until
    /// [`ConnectorInstance::open`].
    pub fn new(
        plugin: Arc<ConnectorPlugin>,
        name: &str,
        params: &[(String, String)],
        limits: Limits,
        grants: Grants,
        http_limits: HttpLimits,
    ) -> Self {
        Self {
            plugin,
            name: name.to_string(),
            params: params
                .iter()
                .map(|(name, value)| v2::sluice::plugin::types::Param {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            limits,
            grants,
            http_limits,
            live: None,
            instantiations: 0,
        }
    }

    /// The plugin's label.
    pub fn label(&self) -> String {
        self.plugin.label()
    }

    /// The plugin it runs.
    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.plugin
    }

    /// An instance of another build for the same connector, with the same
    /// params, limits and grants (hot reload); nothing runs until `open`.
    pub fn with_plugin(&self, plugin: Arc<ConnectorPlugin>) -> Self {
        Self {
            plugin,
            name: self.name.clone(),
            params: self.params.clone(),
            limits: self.limits,
            grants: self.grants.clone(),
            http_limits: self.http_limits,
            live: None,
            instantiations: 0,
        }
    }

    /// True while an instance is open (it is dropped after a failure).
    pub fn is_open(&self) -> bool {
        self.live.is_some()
    }

    /// Starts a fresh instance and opens it at `position`.
    pub fn open(&mut self, position: Option<&[u8]>) -> Result<(), CallFailure> {
        self.live = None;
        let net =
            (!self.grants.http.is_empty()).then(|| Net::new(self.grants.clone(), self.http_limits));
        let mut store = self.plugin.store(&self.name, &self.limits, net);
        store.data_mut().host.begin_call();
        let guest = match &self.plugin.pre {
            Pre::Source(pre) => pre.instantiate(&mut store).map(Guest::Source),
            Pre::Sink(pre) => pre.instantiate(&mut store).map(Guest::Sink),
        }
        .map_err(|e| self.classify(&store, e))?;
        self.instantiations += 1;
        let position = position.map(<[u8]>::to_vec);
        let opened = match &guest {
            Guest::Source(g) => g.sluice_plugin_reader().source().call_open(
                &mut store,
                &self.params,
                position.as_deref(),
            ),
            Guest::Sink(g) => g.sluice_plugin_writer().sink().call_open(
                &mut store,
                &self.params,
                position.as_deref(),
            ),
        }
        .map_err(|e| self.classify(&store, e))?;
        let handle = opened.map_err(|message| CallFailure::Init {
            plugin: self.plugin.label(),
            stage: self.name.clone(),
            message,
        })?;
        self.live = Some(Live {
            store,
            guest,
            handle,
        });
        Ok(())
    }

    /// Runs one call on the live instance; a trap discards it.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&Guest, &mut Store<StoreData>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let Some(mut live) = self.live.take() else {
            return Err(CallFailure::Trap {
                plugin: self.plugin.label(),
                stage: self.name.clone(),
                message: "the instance was discarded after an earlier failure and not reopened"
                    .into(),
            });
        };
        if let (Some(ticks), _) = call_deadline(self.limits.cpu_ms_per_call, None) {
            live.store.set_epoch_deadline(ticks);
        }
        live.store.data_mut().host.begin_call();
        if let Some(net) = live.store.data_mut().host.net.as_mut() {
            net.waited = std::time::Duration::ZERO;
        }
        match f(&live.guest, &mut live.store, live.handle) {
            Ok(r) => {
                self.live = Some(live);
                Ok(r)
            }
            Err(e) => Err(self.classify(&live.store, e)),
        }
    }

    /// Polls a source for up to `max` events.
    pub fn poll(&mut self, max: u32) -> Result<SourcePoll, CallFailure> {
        let polled = self.call(|g, store, h| match g {
            Guest::Source(g) => g.sluice_plugin_reader().source().call_poll(store, h, max),
            Guest::Sink(_) => Err(wasmtime::Error::msg("poll called on a sink")),
        })?;
        let polled = polled.map_err(|e| self.call_error(e.into()))?;
        match self.check_poll(polled, max) {
            Ok(p) => Ok(p),
            Err(fault) => {
                // A connector that breaks the contract once is not trusted
                // with the next call either.
                self.live = None;
                Err(CallFailure::from_output(
                    fault,
                    self.plugin.label(),
                    self.name.clone(),
                ))
            }
        }
    }

    fn check_poll(
        &self,
        polled: wsource::Polled,
        max: u32,
    ) -> Result<SourcePoll, output_check::OutputFault> {
        use output_check::OutputFault;
        let mut events = super::wire::unpack(polled.events, &self.limits)?;
        if events.events.len() > max as usize {
            return Err(OutputFault::Invalid(format!(
                "poll returned {} events but was asked for at most {max}",
                events.events.len()
            )));
        }
        // A source's events derive from nothing: parent and stream are the
        // host's to set.
        for (i, e) in events.events.iter_mut().enumerate() {
            e.parent = u32::try_from(i).unwrap_or(u32::MAX);
            e.stream = 0;
        }
        let n = events.events.len();
        let mut out = Output {
            events,
            rejected: Vec::new(),
        };
        output_check::check(&mut out, n, &self.limits)?;
        if polled.malformed.len() as u64 > self.limits.output_events_per_call {
            return Err(OutputFault::Limit(format!(
                "output ceiling of {} events per call (the poll returned {} malformed inputs)",
                self.limits.output_events_per_call,
                polled.malformed.len()
            )));
        }
        let raw: u64 = polled
            .malformed
            .iter()
            .map(|m| m.raw.len() as u64 + m.reason.len() as u64)
            .sum::<u64>()
            + out.events.data.len() as u64;
        if raw > self.limits.output_bytes() {
            return Err(OutputFault::Limit(format!(
                "output ceiling of {} MiB per call (events and malformed inputs of one poll)",
                self.limits.output_mb()
            )));
        }
        if polled.position.len() > MAX_POSITION_BYTES {
            return Err(OutputFault::Limit(format!(
                "position ceiling of {MAX_POSITION_BYTES} bytes (the poll returned {})",
                polled.position.len()
            )));
        }
        let malformed = polled
            .malformed
            .into_iter()
            .map(|m| (m.raw, cut(m.reason)))
            .collect();
        Ok(SourcePoll {
            events: out.events,
            malformed,
            position: (!polled.position.is_empty()).then_some(polled.position),
            caught_up: polled.caught_up,
            done: polled.done,
        })
    }

    /// Tells a source a checkpoint holding `position` is durable.
    pub fn commit(&mut self, position: &[u8]) -> Result<(), CallFailure> {
        let r = self.call(|g, store, h| match g {
            Guest::Source(g) => g
                .sluice_plugin_reader()
                .source()
                .call_commit(store, h, position),
            Guest::Sink(_) => Err(wasmtime::Error::msg("commit called on a sink")),
        })?;
        r.map_err(|e| self.call_error(e.into()))
    }

    /// Writes a batch to a sink; returns the events it refused.
    pub fn write(&mut self, batch: &Batch) -> Result<Vec<Rejection>, CallFailure> {
        let packed = super::wire::pack(batch);
        let r = self.call(|g, store, h| match g {
            Guest::Sink(g) => g
                .sluice_plugin_writer()
                .sink()
                .call_write(store, h, &packed),
            Guest::Source(_) => Err(wasmtime::Error::msg("write called on a source")),
        })?;
        let rejected = r.map_err(|e| self.call_error(e.into()))?;
        let mut out = Output {
            events: Frame {
                data: Vec::new(),
                events: Vec::new(),
                headers: Vec::new(),
                streams: Vec::new(),
            },
            rejected: rejected
                .into_iter()
                .map(|r| Rejection {
                    index: r.index,
                    reason: r.reason,
                })
                .collect(),
        };
        if let Err(fault) = output_check::check(&mut out, batch.events.len(), &self.limits) {
            self.live = None;
            return Err(CallFailure::from_output(
                fault,
                self.plugin.label(),
                self.name.clone(),
            ));
        }
        Ok(out.rejected)
    }

    /// Makes a sink's writes durable; returns the position to checkpoint.
    pub fn flush(&mut self) -> Result<Vec<u8>, CallFailure> {
        let r = self.call(|g, store, h| match g {
            Guest::Sink(g) => g.sluice_plugin_writer().sink().call_flush(store, h),
            Guest::Source(_) => Err(wasmtime::Error::msg("flush called on a source")),
        })?;
        let position = r.map_err(|e| self.call_error(e.into()))?;
        if position.len() > MAX_POSITION_BYTES {
            self.live = None;
            return Err(CallFailure::Limit {
                plugin: self.plugin.label(),
                stage: self.name.clone(),
                limit: format!(
                    "position ceiling of {MAX_POSITION_BYTES} bytes (flush returned {})",
                    position.len()
                ),
            });
        }
        Ok(position)
    }

    fn call_error(&self, e: GuestError) -> CallFailure {
        match e {
            GuestError::Retry(message) => CallFailure::Retry {
                plugin: self.plugin.label(),
                stage: self.name.clone(),
                message,
            },
            GuestError::Fatal(message) => CallFailure::Fatal {
                plugin: self.plugin.label(),
                stage: self.name.clone(),
                message,
            },
        }
    }

    fn classify(&self, store: &Store<StoreData>, e: wasmtime::Error) -> CallFailure {
        // Reopening cannot grant the clock: stop with the grant to add.
        if let Some(denied) = e.downcast_ref::<super::clock::ClockDenied>() {
            return CallFailure::Fatal {
                plugin: self.plugin.label(),
                stage: self.name.clone(),
                message: denied.to_string(),
            };
        }
        classify(
            store,
            e,
            self.plugin.label(),
            self.name.clone(),
            call_deadline(self.limits.cpu_ms_per_call, None).1,
        )
    }
}

/// A `call-error` of either world.
enum GuestError {
    Retry(String),
    Fatal(String),
}

// Both worlds share `types`, so one `call-error` type serves them.
impl From<v2::sluice::plugin::types::CallError> for GuestError {
    fn from(e: v2::sluice::plugin::types::CallError) -> Self {
        match e {
            v2::sluice::plugin::types::CallError::Retry(m) => GuestError::Retry(m),
            v2::sluice::plugin::types::CallError::Fatal(m) => GuestError::Fatal(m),
        }
    }
}

fn cut(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut at = MAX_REASON_BYTES;
        while !reason.is_char_boundary(at) {
            at -= 1;
        }
        reason.truncate(at);
        reason.push_str("… (cut)");
    }
    reason
}

/// A position as the checkpoint records it: readable text when it is
/// UTF-8 (a cursor, an offset), base64 otherwise.
pub fn position_to_json(position: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(position) {
        Ok(text) => serde_json::json!({ "text": text }),
        Err(_) => {
            use base64::Engine;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(position) })
        }
    }
}

/// The bytes of a position recorded by [`position_to_json`].
pub fn position_from_json(value: &serde_json::Value) -> Result<Vec<u8>, String> {
    if let Some(text) = value.get("text").and_then(serde_json::Value::as_str) {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(b64) = value.get("base64").and_then(serde_json::Value::as_str) {
        use base64::Engine;
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("checkpointed position is not valid base64: {e}"));
    }
    Err(format!(
        "checkpointed position {value} is not a custom connector's position (`text` or `base64`)"
    ))
}

/// Parameters as the plugin receives them: strings as they are, anything
/// else as its JSON text (as for stages).
pub fn params_text(
    params: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// Loads a connector with the process's shared engine and cache, checking
/// that what it imports is granted: a component that imports `http` with
/// no `grants.http` is refused here, naming the grant to add.
pub fn load_connector(
    path: &Path,
    world: World,
    grants: &Grants,
    limits: &Limits,
) -> anyhow::Result<Arc<ConnectorPlugin>> {
    let (engine, cache) = shared()?;
    let plugin = ConnectorPlugin::load(engine, cache, path, world, grants, limits)?;
    if wants_http(&plugin.shape) && grants.http.is_empty() {
        anyhow::bail!(
            "{} imports {HTTP_IMPORT} but this connector is granted no hosts; add `grants: {{http: [\"host:port\"]}}` naming the hosts it may reach",
            plugin.label()
        );
    }
    Ok(Arc::new(plugin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_as_text_or_base64() {
        for p in [&b"cursor-42"[..], &[0xff, 0x00, 0x10][..], &b""[..]] {
            let v = position_to_json(p);
            assert_eq!(position_from_json(&v).expect("decodes"), p, "{v}");
        }
        assert_eq!(position_to_json(b"abc")["text"], "abc");
        assert!(position_from_json(&serde_json::json!({"offset": 3})).is_err());
    }
}
