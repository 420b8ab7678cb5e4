//! The platform server over real HTTP on loopback, on SQLite and PostgreSQL.

mod openapi;
mod setup;
mod support;
