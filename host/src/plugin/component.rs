//! Checking a `.wasm` file before it runs: is it a component, which world does
//! it implement, and against which contract version.

use std::path::Path;

use wasmtime::component::Component;
use wasmtime::Engine;

/// Contract versions this host runs.
pub const ACCEPTED_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// The contract package name.
pub const PACKAGE: &str = "sluice:plugin";

/// A plugin kind: which world the component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Stateless transform (exports `transformer`).
    Transform,
    /// Stateful processor (exports `stateful`).
    Processor,
    /// Custom source connector (exports `reader`).
    Source,
    /// Custom sink connector (exports `writer`).
    Sink,
    /// User-defined scalar function (exports `scalar`).
    Udf,
}

impl World {
    /// The world's name in the WIT package.
    pub fn name(self) -> &'static str {
        match self {
            World::Transform => "transform",
            World::Processor => "processor",
            World::Source => "source",
            World::Sink => "sink",
            World::Udf => "udf",
        }
    }

    fn from_interface(name: &str) -> Option<Self> {
        match name {
            "transformer" => Some(World::Transform),
            "stateful" => Some(World::Processor),
            "reader" => Some(World::Source),
            "writer" => Some(World::Sink),
            "scalar" => Some(World::Udf),
            _ => None,
        }
    }
}

/// Why a file cannot be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// Could not read it.
    // Not a `source`: the message already says why, and a source would be
    // printed a second time by `{:#}`.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// Not WebAssembly at all.
    #[error("{path} is not a WebAssembly file (no `\\0asm` header)")]
    NotWasm {
        /// The file.
        path: String,
    },
    /// A core module, not a component.
    #[error("{path} is a core WebAssembly module, not a component; build plugins for wasm32-wasip2 (`sluice plugin build DIR`) or wrap the module with `wasm-tools component new`")]
    CoreModule {
        /// The file.
        path: String,
    },
    /// Built against another contract version.
    #[error("{path} targets contract {PACKAGE}@{found}, but this host accepts {PACKAGE}@{accepted}; rebuild the plugin against sluice-sdk {accepted}")]
    WrongVersion {
        /// The file.
        path: String,
        /// The version it exports.
        found: String,
        /// What the host accepts.
        accepted: String,
    },
    /// Exports no Sluice world, or a different one than the stage needs.
    #[error("{path} {found}, but {user} needs the `{expected}` world (it must export {PACKAGE}/{interface}@{version})")]
    WrongWorld {
        /// The file.
        path: String,
        /// What loads it: a stage, a `wasm` source or sink.
        user: &'static str,
        /// What it does export.
        found: String,
        /// The world required.
        expected: &'static str,
        /// The interface that world exports.
        interface: &'static str,
        /// The version expected.
        version: &'static str,
    },
    /// The engine refused it.
    #[error("{path} is not a valid component: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The engine's message.
        message: String,
    },
}

/// What a component exports and imports.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The Sluice world it implements, if any.
    pub world: Option<World>,
    /// The contract version of that world.
    pub version: Option<String>,
    /// Export names.
    pub exports: Vec<String>,
    /// Import names.
    pub imports: Vec<String>,
    /// Whether it declares that it reads the host's field tables (a
    /// `sluice:field-tables` custom section, see [`declares_field_tables`]).
    pub reads_field_tables: bool,
    /// Whether it declares that its outputs may take parts of their parents
    /// by reference (a `sluice:parent-refs` custom section, see
    /// [`declares_parent_refs`]).
    pub takes_parent_refs: bool,
}

/// The custom section a plugin carries to say it reads field tables
/// (`sluice_sdk::declare_field_tables!`).
pub const FIELD_TABLES_SECTION: &str = "sluice:field-tables";

/// The table layout this host writes, as the section's one byte names it: a
/// plugin built for another layout gets no tables (and scans).
pub const FIELD_TABLES_LAYOUT: u8 = 1;

/// Whether any module inside the component `bytes` has a custom section
/// named [`FIELD_TABLES_SECTION`] holding [`FIELD_TABLES_LAYOUT`]. The host
/// then sends the plugin each
/// value's field table (`crate::event::FieldTables`). A plugin that declares
/// it falsely only makes the host scan its input values natively, as
/// sources already do: no more than linear work in bytes it was sent.
pub fn declares_field_tables(bytes: &[u8]) -> bool {
    declares(bytes, FIELD_TABLES_SECTION, FIELD_TABLES_LAYOUT)
}

/// The custom section a plugin carries to say its outputs may name parts of
/// their parents instead of copying them (contract 0.2.0, output flags 2-4;
/// `sluice_sdk::export_transform!` and `export_processor!` put it in).
pub const PARENT_REFS_SECTION: &str = "sluice:parent-refs";

/// The version of parent references this host resolves.
pub const PARENT_REFS_LAYOUT: u8 = 1;

/// Whether any module inside the component `bytes` has a custom section
/// named [`PARENT_REFS_SECTION`] holding [`PARENT_REFS_LAYOUT`]. The host
/// then marks its input events as open to references (input flag 2), and
/// only then does the plugin use them, so a plugin that has the section
/// still runs on a host without it, and a hand-written guest that checks
/// every input flag never sees the new one unless it asks.
pub fn declares_parent_refs(bytes: &[u8]) -> bool {
    declares(bytes, PARENT_REFS_SECTION, PARENT_REFS_LAYOUT)
}

/// Whether any module inside the component `bytes` has the custom section
/// `name` holding the one byte `layout`.
fn declares(bytes: &[u8], name: &str, layout: u8) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .take_while(Result::is_ok)
        .flatten()
        .any(|payload| {
            matches!(payload, wasmparser::Payload::CustomSection(c)
                if c.name() == name && c.data() == [layout])
        })
}

/// Rejects files that are not components before spending time compiling them.
pub fn check_header(path: &Path, bytes: &[u8]) -> Result<(), ComponentError> {
    let p = path.display().to_string();
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ComponentError::NotWasm { path: p });
    }
    // Bytes 4..8: version + layer; core modules are `01 00 00 00`.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(ComponentError::CoreModule { path: p });
    }
    Ok(())
}

/// Reads exports/imports and identifies the world and contract version.
pub fn shape(engine: &Engine, component: &Component) -> Shape {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut world = None;
    let mut version = None;
    for name in &exports {
        if let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) {
            let (iface, ver) = rest.split_once('@').unwrap_or((rest, ""));
            if let Some(w) = World::from_interface(iface) {
                world = Some(w);
                version = Some(ver.to_string());
            }
        }
    }
    Shape {
        world,
        version,
        exports,
        imports,
        reads_field_tables: false,
        takes_parent_refs: false,
    }
}

/// Checks that `shape` is `expected` at an accepted version.
pub fn check_world(path: &Path, shape: &Shape, expected: World) -> Result<(), ComponentError> {
    let p = path.display().to_string();
    let (interface, user) = match expected {
        World::Transform => ("transformer", "a stage"),
        World::Processor => ("stateful", "a stage"),
        World::Source => ("reader", "a `wasm` source"),
        World::Sink => ("writer", "a `wasm` sink"),
        World::Udf => ("scalar", "a user-defined function"),
    };
    if let Some(v) = &shape.version {
        if !ACCEPTED_VERSIONS.contains(&v.as_str()) {
            return Err(ComponentError::WrongVersion {
                path: p,
                found: v.clone(),
                accepted: ACCEPTED_VERSIONS.join(", "),
            });
        }
    }
    if shape.world != Some(expected) {
        let found = match shape.world {
            Some(w) => format!("implements the `{}` world", w.name()),
            None => format!(
                "exports no Sluice world (exports: {})",
                if shape.exports.is_empty() {
                    "none".to_string()
                } else {
                    shape.exports.join(", ")
                }
            ),
        };
        return Err(ComponentError::WrongWorld {
            path: p,
            user,
            found,
            expected: expected.name(),
            interface,
            version: ACCEPTED_VERSIONS[0],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_section_in_a_nested_module_declares_field_tables() {
        use wasm_encoder::{Component, CustomSection, Module, ModuleSection};
        let with_data = |name: &str, data: &[u8]| {
            let mut module = Module::new();
            module.section(&CustomSection {
                name: name.into(),
                data: data.to_vec().into(),
            });
            let mut component = Component::new();
            component.section(&ModuleSection(&module));
            component.finish()
        };
        let with = |name: &str| with_data(name, &[FIELD_TABLES_LAYOUT]);
        assert!(declares_field_tables(&with(FIELD_TABLES_SECTION)));
        // Another layout (a plugin built for a later host): no tables.
        assert!(!declares_field_tables(&with_data(
            FIELD_TABLES_SECTION,
            &[2]
        )));
        assert!(!declares_field_tables(&with_data(
            FIELD_TABLES_SECTION,
            &[]
        )));
        assert!(!declares_field_tables(&with("sluice:field-table")));
        assert!(!declares_field_tables(&with("name")));
        // Not Wasm, or cut short: no declaration, no panic.
        let whole = with(FIELD_TABLES_SECTION);
        assert!(!declares_field_tables(b"not wasm at all"));
        assert!(!declares_field_tables(&whole[..whole.len() / 2]));
    }

    #[test]
    fn an_unreadable_file_says_why_once() {
        let err = anyhow::Error::from(ComponentError::Io {
            path: "filter".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        let text = format!("{err:#}");
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("cannot read filter: "), "{text}");
    }
}
