#!/usr/bin/env bash
# What the host's native build needs beyond a C compiler: librdkafka's bundled
# OpenSSL (rdkafka's ssl-vendored, built by the openssl-src crate) runs
# OpenSSL's Configure, which needs perl with IPC::Cmd (Debian's `perl`; the
# minimal `perl-base` lacks it), and librdkafka itself builds with make.
# Installs them with apt-get when missing (first run only).
set -euo pipefail
missing=()
perl -MIPC::Cmd -e1 2>/dev/null || missing+=(perl)
command -v make >/dev/null 2>&1 || missing+=(make)
((${#missing[@]})) || exit 0
echo "native-build: installing ${missing[*]} with apt-get (first run only)" >&2
sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
perl -MIPC::Cmd -e1
