//! Layers wrap a capability (`Arc<dyn Trait>` in, `Arc<dyn Trait>` out) to add behaviour
//! around every call. See the crate docs, section *Layer order*, for where each one sits.

pub mod fallback;
