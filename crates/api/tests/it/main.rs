//! The API's integration tests: one test binary, a module per concern.
//! Every test starts the real mock IdP and the real API in-process on free
//! ports and talks HTTP to them.

mod attacks;
mod common;
mod keys;
mod properties;
mod resource;
mod token_profiles;
