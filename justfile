# The project's commands. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Run the IdP, the API and the BFF together (http://localhost:3000).
up:
    bash scripts/up.sh

# The mock IdP alone on :9000.
idp *ARGS:
    cargo run -p mock-idp -- {{ARGS}}

# The API alone on :4000.
api *ARGS:
    cargo run -p api -- {{ARGS}}

# The BFF alone on :3000.
bff *ARGS:
    cargo run -p bff -- {{ARGS}}

# Every test of the workspace.
test:
    cargo test --workspace --all-targets

# Formatting and lints, as CI expects them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
