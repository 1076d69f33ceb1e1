//! How stored object traces are shown in Jaeger: display modes, the trace IDs that
//! encode a mode and a cached search, link selection, merging and transform steps
//! (SPEC section 6).

pub mod mode;
pub mod trace_id;
pub mod tree;
