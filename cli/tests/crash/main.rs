//! Crash and outage safety, with every component as a real OS process (`hospital serve
//! <component>`, configured as `hospital up` configures its children) against a nats-server of
//! the test's own: clients write through the gateway while a service is killed with SIGKILL, or
//! while nats-server itself is stopped, and afterwards every write a client saw acknowledged is
//! in its owner's database, in the stream exactly once and in every read-model.
//!
//! `scale_out_faults` runs the scaled-out system instead: two instances of every service on
//! PostgreSQL (it needs a server, see `kit::postgres_test`), two gateways, a NATS cluster.
//!
//! The tests in this binary run one at a time (see [`support::serial`]): each runs six
//! processes or more and measures latencies, which they would otherwise distort for each other.
//! `cargo test --test crash -- --nocapture` shows the figures each test measured.

mod cluster_failover;
mod kill_services;
mod nats_outage;
mod scale_out_faults;
mod support;
