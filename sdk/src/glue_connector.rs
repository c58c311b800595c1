//! Wasm-side glue for custom connectors (feature `connector`): the `source`
//! and `sink` worlds' exports behind [`Source`] and [`Sink`], the `http`
//! import behind [`crate::connector::http::send`] and the `clock` import
//! behind [`crate::connector::clock`].

use std::cell::RefCell;

use crate::connector::http::{HttpError, Request, Response};
use crate::connector::{Poll, Rejections, Sink, Source, Written};
use crate::glue::{from_wit, install_panic_hook, to_wit, wit::sluice::plugin::types as t};
use crate::Params;

/// Bindings for the `source` world; `types` and `log` are shared with the
/// transform bindings.
#[allow(missing_docs)]
pub mod swit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_sdk::glue_connector::swit",
        runtime_path: "::sluice_sdk::glue::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.2.0": crate::glue::wit::sluice::plugin::types,
            "sluice:plugin/log@0.2.0": crate::glue::wit::sluice::plugin::log,
        },
    });
}

/// Bindings for the `sink` world, sharing `http` with the source's.
#[allow(missing_docs)]
pub mod kwit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sink",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_sdk::glue_connector::kwit",
        runtime_path: "::sluice_sdk::glue::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.2.0": crate::glue::wit::sluice::plugin::types,
            "sluice:plugin/log@0.2.0": crate::glue::wit::sluice::plugin::log,
            "sluice:plugin/http@0.2.0": super::swit::sluice::plugin::http,
            "sluice:plugin/clock@0.2.0": super::swit::sluice::plugin::clock,
        },
    });
}

use kwit::exports::sluice::plugin::writer as wexp;
use swit::exports::sluice::plugin::reader as rexp;
use swit::sluice::plugin::http as h;

pub(crate) fn now_ms() -> i64 {
    swit::sluice::plugin::clock::now_ms()
}

pub(crate) fn monotonic_ns() -> u64 {
    swit::sluice::plugin::clock::monotonic_ns()
}

pub(crate) fn send(req: Request) -> Result<Response, HttpError> {
    let req = h::Request {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
    };
    match h::send(&req) {
        Ok(r) => Ok(Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }),
        Err(h::HttpError::Denied(m)) => Err(HttpError::Denied(m)),
        Err(h::HttpError::Timeout(m)) => Err(HttpError::Timeout(m)),
        Err(h::HttpError::TooLarge(m)) => Err(HttpError::TooLarge(m)),
        Err(h::HttpError::Failed(m)) => Err(HttpError::Failed(m)),
    }
}

fn call_error(e: crate::abi::CallError) -> t::CallError {
    match e {
        crate::abi::CallError::Retry(m) => t::CallError::Retry(m),
        crate::abi::CallError::Fatal(m) => t::CallError::Fatal(m),
    }
}

fn params(params: Vec<t::Param>) -> Params {
    Params::new(params.into_iter().map(|p| (p.name, p.value)))
}

/// A source behind a WIT resource handle.
pub struct SourceResource<S> {
    inner: RefCell<S>,
}

impl<S: Source + 'static> rexp::GuestSource for SourceResource<S> {
    fn open(params_: Vec<t::Param>, position: Option<Vec<u8>>) -> Result<rexp::Source, String> {
        install_panic_hook();
        let inner = S::open(&params(params_), position.as_deref())?;
        Ok(rexp::Source::new(SourceResource {
            inner: RefCell::new(inner),
        }))
    }

    fn poll(&self, max_events: u32) -> Result<rexp::Polled, t::CallError> {
        let mut out = Poll::default();
        self.inner
            .borrow_mut()
            .poll(max_events as usize, &mut out)
            .map_err(call_error)?;
        Ok(rexp::Polled {
            events: to_wit(out.events),
            malformed: out
                .malformed
                .into_iter()
                .map(|(raw, reason)| rexp::Malformed { raw, reason })
                .collect(),
            position: out.position,
            caught_up: out.caught_up,
            done: out.done,
        })
    }

    fn commit(&self, position: Vec<u8>) -> Result<(), t::CallError> {
        self.inner
            .borrow_mut()
            .commit(&position)
            .map_err(call_error)
    }
}

/// A sink behind a WIT resource handle.
pub struct SinkResource<K> {
    inner: RefCell<K>,
}

impl<K: Sink + 'static> wexp::GuestSink for SinkResource<K> {
    fn open(params_: Vec<t::Param>, position: Option<Vec<u8>>) -> Result<wexp::Sink, String> {
        install_panic_hook();
        let inner = K::open(&params(params_), position.as_deref())?;
        Ok(wexp::Sink::new(SinkResource {
            inner: RefCell::new(inner),
        }))
    }

    fn write(&self, events: t::Batch) -> Result<Vec<t::Rejection>, t::CallError> {
        let batch = from_wit(events);
        let mut rejected = Rejections::default();
        self.inner
            .borrow_mut()
            .write(&Written::new(&batch), &mut rejected)
            .map_err(call_error)?;
        Ok(rejected
            .items
            .into_iter()
            .map(|r| t::Rejection {
                index: r.index,
                reason: r.reason,
            })
            .collect())
    }

    fn flush(&self) -> Result<Vec<u8>, t::CallError> {
        self.inner.borrow_mut().flush().map_err(call_error)
    }
}
