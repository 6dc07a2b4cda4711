//! The mock IdP's integration tests: one test binary, a module per part of
//! the authorization server. Every test starts the real IdP in-process on
//! a free port and talks HTTP to it.

mod abuse;
mod authorize_refusals;
mod certified_rp;
mod cli;
mod client_auth;
mod common;
mod flow;
mod grants;
mod lifecycle;
mod logout;
mod openid_client;
mod pages;
mod persistence;
mod profiles;
mod properties;
mod store;
mod token_refusals;
