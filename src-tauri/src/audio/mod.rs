//! Audio helpers: G.711 μ-law, small signal tools used by the simulator and the recorder, and the
//! operator's microphone.
pub mod devices;
pub mod mic_pipeline;
pub mod microphone;
pub mod mulaw;
