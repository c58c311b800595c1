#!/usr/bin/env bash
# Builds the built-in plugins (and, with --test-guests, the test guests) into
# wasm32-wasip2 components and copies them to target/plugins/NAME.wasm, where
# `sluice` finds them by name (`plugin: filter`).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
plugins=(filter project mask unwrap passthrough window-aggregate lookup-join window-join)
args=()
for p in "${plugins[@]}"; do args+=(-p "sluice-plugin-$p"); done
# Guests are small: whole-program optimization is cheap for them and pays per
# event. .cargo/config.toml adds the inlining flags every guest is built with.
# Not incremental: with the workspace's `incremental = true`, calls into the
# SDK's one-line functions stayed calls despite LTO (docs/performance.md).
# `sluice build --release` exports the same (a test keeps them equal).
export CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true CARGO_PROFILE_RELEASE_INCREMENTAL=false
cargo build --release --target wasm32-wasip2 "${args[@]}"
mkdir -p "$TARGET_DIR/plugins"
for p in "${plugins[@]}"; do
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_plugin_${p//-/_}.wasm" "$TARGET_DIR/plugins/$p.wasm"
done
if [[ ${1:-} == --test-guests ]]; then
  mkdir -p "$TARGET_DIR/test-guests"
  # Two builds of one guest that differ only in a baked-in tag, for the hot-reload test.
  MISBEHAVE_TAG=a cargo build --release --target wasm32-wasip2 -p sluice-test-misbehave
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_misbehave.wasm" "$TARGET_DIR/test-guests/misbehave.wasm"
  MISBEHAVE_TAG=b cargo build --release --target wasm32-wasip2 -p sluice-test-misbehave
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_misbehave.wasm" "$TARGET_DIR/test-guests/misbehave-b.wasm"
  # Guests that attack the host through outputs, state and timers.
  cargo build --release --target wasm32-wasip2 -p sluice-test-hostile -p sluice-test-hostile-state
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_hostile.wasm" "$TARGET_DIR/test-guests/hostile.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_hostile_state.wasm" "$TARGET_DIR/test-guests/hostile-state.wasm"
  # A plugin whose describe() spins: loading it must be bounded.
  cargo build --release --target wasm32-wasip2 -p sluice-test-spin-describe
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_spin_describe.wasm" "$TARGET_DIR/test-guests/spin-describe.wasm"
  cargo build --release --target wasm32-wasip2 -p sluice-test-loud
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_loud.wasm" "$TARGET_DIR/test-guests/loud.wasm"
  # Custom connectors: a misbehaving source and the two connector examples.
  cargo build --release --target wasm32-wasip2 -p sluice-test-conn-misbehave -p sluice-test-conn-clock -p sluice-test-conn-sink-misbehave -p sluice-connector-http-poll -p sluice-connector-webhook-sink
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_conn_misbehave.wasm" "$TARGET_DIR/test-guests/conn-misbehave.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_conn_clock.wasm" "$TARGET_DIR/test-guests/conn-clock.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_conn_sink_misbehave.wasm" "$TARGET_DIR/test-guests/conn-sink-misbehave.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_connector_http_poll.wasm" "$TARGET_DIR/test-guests/http-poll.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_connector_webhook_sink.wasm" "$TARGET_DIR/test-guests/webhook-sink.wasm"
  # User-defined functions: a hostile one and the Rust example.
  cargo build --release --target wasm32-wasip2 -p sluice-test-udf-hostile -p sluice-udf-haversine
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_udf_hostile.wasm" "$TARGET_DIR/test-guests/udf-hostile.wasm"
  cp "$TARGET_DIR/wasm32-wasip2/release/sluice_udf_haversine.wasm" "$TARGET_DIR/test-guests/haversine.wasm"
  # Builds of one sink connector that differ only in a baked-in tag, for the
  # sink hot-reload test; `trap-open` panics in open.
  for tag in a b trap-open; do
    CONN_SINK_TAG=$tag cargo build --release --target wasm32-wasip2 -p sluice-test-conn-sink-tagged
    cp "$TARGET_DIR/wasm32-wasip2/release/sluice_test_conn_sink_tagged.wasm" "$TARGET_DIR/test-guests/conn-sink-tagged-$tag.wasm"
  done
fi
echo "plugins in $TARGET_DIR/plugins:" >&2
ls -l "$TARGET_DIR/plugins" >&2
