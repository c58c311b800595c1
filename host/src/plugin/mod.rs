//! The Wasm side of the host: engine, compile cache, contract checks, and
//! sandboxed transform instances.

pub mod bindings;
mod cache;
pub mod component;
mod engine;
mod host;
mod transform;

pub use cache::{CacheOutcome, ComponentCache};
pub use component::{ComponentError, Shape, World};
pub use engine::WasmEngine;
pub use transform::{CallFailure, LoadError, TransformInstance, TransformPlugin};
