//! How stored object traces are shown in Jaeger: display modes, the trace IDs that
//! encode a mode and a cached search, link selection, merging and transform steps
//! (SPEC section 6).

pub mod assemble;
pub mod links;
pub mod mode;
pub mod trace_id;
pub mod transform;
pub mod tree;

use mode::DisplayMode;
use tree::Span;

/// Applies a mode's transform steps to an assembled result.
pub fn render(mut tree: Span, mode: DisplayMode) -> Span {
    transform::run(&mut tree, &transform::steps(mode.base));
    tree
}

#[cfg(test)]
mod golden;
