#!/usr/bin/env bash
# Installs the JavaScript / TypeScript plugin toolchain (pinned) under
# ${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/js and writes env.sh there, which
# puts componentize-js, esbuild, jco and tsc on PATH when sourced.
#
#   componentize-js  JS -> Wasm component (StarlingMonkey engine, no --aot)
#   jco              pulled in by componentize-js; pinned here too
#   typescript       tsc, for TypeScript plugins (type-checked and compiled to JS first)
#   esbuild          bundles a plugin and the SDK (sdk/js) into the one module
#                    componentize-js takes
#
# Needs only Node >= 18 and npm (the npm registry). Idempotent: a second run
# with the same pins only writes env.sh.
set -euo pipefail

COMPONENTIZE_JS_VERSION=0.23.0
JCO_VERSION=1.15.1
TYPESCRIPT_VERSION=5.9.3
ESBUILD_VERSION=0.28.2

root=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/js
pins="componentize-js=$COMPONENTIZE_JS_VERSION jco=$JCO_VERSION typescript=$TYPESCRIPT_VERSION esbuild=$ESBUILD_VERSION"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "js toolchain: node and npm are required (Node 20 or newer)" >&2
  exit 1
fi

if [[ -f $root/.pins && $(cat "$root/.pins") == "$pins" && -x $root/node_modules/.bin/componentize-js && -x $root/node_modules/.bin/tsc && -x $root/node_modules/.bin/esbuild ]]; then
  echo "js toolchain already installed in $root ($pins)" >&2
else
  echo "installing the js toolchain into $root ($pins)" >&2
  mkdir -p "$root"
  rm -f "$root/.pins"
  cat >"$root/package.json" <<JSON
{
  "name": "sluice-js-toolchain",
  "private": true,
  "description": "Pinned toolchain for Sluice JavaScript/TypeScript plugins (scripts/toolchains/js.sh)",
  "dependencies": {
    "@bytecodealliance/componentize-js": "$COMPONENTIZE_JS_VERSION",
    "@bytecodealliance/jco": "$JCO_VERSION",
    "typescript": "$TYPESCRIPT_VERSION",
    "esbuild": "$ESBUILD_VERSION"
  }
}
JSON
  (cd "$root" && npm install --no-audit --no-fund --loglevel=error)
  echo "$pins" >"$root/.pins"
fi

cat >"$root/env.sh" <<ENV
# Written by scripts/toolchains/js.sh: the Sluice js/ts plugin toolchain.
export SLUICE_JS_TOOLCHAIN="$root"
case ":\$PATH:" in *":$root/node_modules/.bin:"*) ;; *) export PATH="$root/node_modules/.bin:\$PATH" ;; esac
ENV
echo "js toolchain: source $root/env.sh" >&2
