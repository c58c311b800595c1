//! Integration tests: the real `sluice` binary on real files, real Wasm
//! components and real signals. Components come from
//! `scripts/build-plugins.sh --test-guests` (the test script runs it first).

mod cache;
mod cdc_ddl;
mod cli;
mod console;
mod debezium_oracle;
mod dlq;
mod elasticsearch;
mod exactly_once;
mod faults;
mod fuzz_replay;
mod host_config;
mod hostile;
mod hot_reload;
mod kafka;
mod kafka_faults;
mod languages;
mod logistics;
mod mongo;
mod mongo_tls;
mod mysql_tls;
mod network_faults;
mod pg_tls;
mod plugin_logs;
mod postgres_cdc;
mod postgres_poll;
mod processors;
mod proxy;
mod registry_exposure;
mod s3;
mod sandbox;
mod scaffold;
mod search_faults;
mod server;
mod server_cert;
mod sink_hot_reload;
mod sql;
mod sql_evolution;
mod sql_shell;
mod sql_sinks;
mod sqldb;
mod support;
mod tap;
mod validate;
mod wasm_connectors;
