//! Audio helpers: G.711 μ-law and small signal tools used by the simulator and the recorder.
pub mod microphone;
pub mod mulaw;
