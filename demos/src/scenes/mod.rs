//! One module per scene; each exposes `draw(frame, target, input)`.

pub mod bounce;
pub mod clock;
pub mod plasma;
pub mod rotozoom;
pub mod starfield;
pub mod stats;
pub mod testcard;
