//! Clients shared by more than one connector (a source and a sink of the
//! same system). They sit beside the connector contract: connectors import
//! them, and they import nothing above [`crate::connector`].

pub mod kafka;
pub mod kafka_buffers;
pub mod kafka_diagnose;
pub mod kafka_security;
pub mod mongodb;
pub mod postgres;
pub mod postgres_tls;
pub mod sql;
pub mod tls;
