//! Wasm-side glue between the generated `sluice:plugin` bindings and the SDK
//! traits. Hidden from docs: plugin authors only see [`crate::export_transform!`].

use std::cell::RefCell;
use std::sync::Once;

pub use wit_bindgen;

/// Bindings generated from the contract; the export macro refers to them.
#[allow(missing_docs)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_sdk::glue::wit",
        runtime_path: "::sluice_sdk::glue::wit_bindgen::rt",
    });
}

use crate::abi::{CallError, RawBatch};
use crate::{run_transform, Params, Transform};
use wit::exports::sluice::plugin::transformer as exported;
use wit::sluice::plugin::types as t;

/// Builds the `describe` answer from the plugin crate's Cargo metadata.
pub fn info(name: &str, version: &str, description: &str) -> t::PluginInfo {
    t::PluginInfo {
        name: name.to_string(),
        version: version.to_string(),
        description: description.to_string(),
    }
}

/// A transform instance behind a WIT resource handle.
pub struct TransformResource<T: Transform> {
    inner: RefCell<T>,
}

static PANIC_HOOK: Once = Once::new();

/// Panics abort the instance (the host replaces it); first tell the host why,
/// since a bare `unreachable` trap says nothing useful to an operator.
pub fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            wit::sluice::plugin::log::log(
                wit::sluice::plugin::log::Level::Error,
                &format!("plugin panicked: {info}"),
            );
        }));
    });
}

impl<T: Transform + 'static> exported::GuestTransform for TransformResource<T> {
    fn create(params: Vec<t::Param>) -> Result<exported::Transform, String> {
        install_panic_hook();
        let params = Params::new(params.into_iter().map(|p| (p.name, p.value)));
        let inner = T::new(&params)?;
        Ok(exported::Transform::new(TransformResource {
            inner: RefCell::new(inner),
        }))
    }

    fn process(&self, input: t::Batch) -> Result<t::Output, t::CallError> {
        let input = from_wit(input);
        let mut inner = self.inner.borrow_mut();
        output_to_wit(run_transform(&mut *inner, &input))
    }
}

/// The host drops the resource when it retires the instance cleanly (the
/// end of a run, a hot reload), which is the transform's [`Transform::finish`].
impl<T: Transform> Drop for TransformResource<T> {
    fn drop(&mut self) {
        self.inner.get_mut().finish();
    }
}

/// A call's result in the contract's types.
pub(crate) fn output_to_wit(
    result: Result<crate::abi::RawOutput, CallError>,
) -> Result<t::Output, t::CallError> {
    match result {
        Ok(out) => Ok(t::Output {
            events: to_wit(out.events),
            rejected: out
                .rejected
                .into_iter()
                .map(|r| t::Rejection {
                    index: r.index,
                    reason: r.reason,
                })
                .collect(),
        }),
        Err(CallError::Retry(m)) => Err(t::CallError::Retry(m)),
        Err(CallError::Fatal(m)) => Err(t::CallError::Fatal(m)),
    }
}

/// An input batch from contract 0.2.0's byte tables.
pub(crate) fn from_wit(b: t::Batch) -> RawBatch {
    RawBatch::from_tables(b.data, &b.events, &b.headers, b.streams)
}

/// An output batch as contract 0.2.0's byte tables.
pub fn to_wit(b: RawBatch) -> t::Batch {
    t::Batch {
        events: b.event_table(),
        headers: b.header_table(),
        data: b.data,
        streams: b.streams,
    }
}
