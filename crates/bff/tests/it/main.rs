//! The BFF's integration tests: one test binary, a module per concern.
//! Every test starts the real IdP, API and BFF in-process on free ports
//! (testkit's `Stack`) and plays the browser over HTTP, or drives a real
//! headless Chromium (`browser`).

mod attacks;
mod backchannel;
mod browser;
mod faults;
mod flow;
mod flow_inspector;
mod logout;
mod metrics;
mod node_oidc_provider;
mod properties;
mod providers;
mod refresh;
mod store;
