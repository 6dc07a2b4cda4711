//! A real browser: headless Chromium, driven through Debian's chromedriver
//! ([`chrome`]), what a person does in it ([`person`]), what it received
//! ([`network`]) and how accessible its pages are ([`axe`]).
//!
//! Without Chromium and chromedriver a browser test says it was skipped and
//! passes; with `REQUIRE_BROWSER=1` (CI) it fails instead.

pub mod axe;
pub mod chrome;
pub mod network;
pub mod person;
