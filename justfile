# The project's commands. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Recipe arguments reach commands as they were typed ("$@"), quotes and all.
set positional-arguments := true

# List the recipes.
default:
    @just --list

# Run the IdP, the API and the BFF together (http://localhost:3000).
up:
    bash scripts/up.sh

# The mock IdP alone on :9000.
idp *ARGS:
    cargo run -p mock-idp -- "$@"

# The API alone on :4000.
api *ARGS:
    cargo run -p api -- "$@"

# The BFF alone on :3000.
bff *ARGS:
    cargo run -p bff -- "$@"

# Every test of the workspace. The browser tests need Chromium, chromedriver
# and axe-core; without them they pass as skipped, and the last line says so.
test: && _browser-notice
    cargo test --workspace --all-targets

# Rewrites the README's provider matrix from the tests that produce it.
matrix:
    UPDATE_README_MATRIX=1 cargo test -p bff --test it providers::the_readme_shows_the_tested_matrix
    cargo test -p bff --test it providers

# Says plainly when the browser tests were skipped, and how to run them.
_browser-notice:
    #!/usr/bin/env bash
    if ! command -v "${CHROMIUM:-chromium}" >/dev/null || ! command -v "${CHROMEDRIVER:-chromedriver}" >/dev/null; then
      echo "browser tests skipped: install chromium and chromium-driver (apt-get install chromium chromium-driver)"
    elif [ ! -f "${AXE_CORE_JS:-target/axe/node_modules/axe-core/axe.min.js}" ]; then
      echo "browser accessibility tests skipped: install axe-core (npm install --prefix target/axe axe-core@4)"
    fi

# Every page at laptop and phone widths, taken by the browser tests.
# The README's screenshots, into docs/screenshots/.
screenshots:
    [ -f target/axe/node_modules/axe-core/axe.min.js ] || npm install --prefix target/axe --no-audit --no-fund axe-core@4
    rm -f docs/screenshots/*.png
    SCREENSHOT_DIR=docs/screenshots REQUIRE_BROWSER=1 cargo test -p bff --test browser every_page_passes_axe_core

# Formatting, lints and unused dependencies, as CI expects them (needs
# cargo-machete: `cargo install cargo-machete --locked`).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo machete
