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

# The mock IdP alone on :9000 (options: just idp --help).
idp *ARGS:
    cargo run -p mock-idp -- "$@"

# The API alone on :4000 (options: just api --help).
api *ARGS:
    cargo run -p api -- "$@"

# The BFF alone on :3000 (options: just bff --help).
bff *ARGS:
    cargo run -p bff -- "$@"

# Every test of the workspace; the last lines say what was skipped, and why.
test: && _browser-notice _redis-notice _postgres-notice _walkthrough-notice
    cargo test --workspace --all-targets

# Formatting, lints and unused dependencies, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo machete

# Each hot path against its own limit, and against node-oidc-provider (release builds; a few minutes).
bench *ARGS:
    cargo build --release -p mock-idp -p api -p bff -p bench
    if command -v taskset >/dev/null; then taskset -c 1 target/release/bench "$@"; else target/release/bench "$@"; fi

# Many thousands of logins, calls, refreshes and sign-outs against one stack: memory, descriptors, errors.
soak *ARGS:
    cargo build --release -p mock-idp -p api -p bff -p bench
    target/release/bench soak "$@"

# Fuzz every parser of outside input, SECONDS per target (needs cargo-fuzz; names pick targets).
fuzz SECONDS="60" *TARGETS:
    bash scripts/fuzz.sh "$@"

# Rewrite the README's provider matrix from the tests that produce it.
matrix:
    UPDATE_README_MATRIX=1 cargo test -p bff --test it providers::the_readme_shows_the_tested_matrix
    cargo test -p bff --test it providers

# Take the README's screenshots (every page, laptop and phone) into docs/screenshots/.
screenshots:
    [ -f target/axe/node_modules/axe-core/axe.min.js ] || npm install --prefix target/axe --no-audit --no-fund axe-core@4
    rm -f docs/screenshots/*.png
    SCREENSHOT_DIR=docs/screenshots REQUIRE_BROWSER=1 cargo test -p bff --test it browser::every_page_passes_axe_core

# Says plainly when the browser tests were skipped, and how to run them.
_browser-notice:
    #!/usr/bin/env bash
    if ! command -v "${CHROMIUM:-chromium}" >/dev/null || ! command -v "${CHROMEDRIVER:-chromedriver}" >/dev/null; then
      echo "browser tests skipped: install chromium and chromium-driver (apt-get install chromium chromium-driver)"
    elif [ ! -f "${AXE_CORE_JS:-target/axe/node_modules/axe-core/axe.min.js}" ]; then
      echo "browser accessibility tests skipped: install axe-core (npm install --prefix target/axe axe-core@4)"
    fi

# Says plainly when the Redis tests were skipped, and how to run them.
_redis-notice:
    #!/usr/bin/env bash
    if [ -z "${REDIS_URL:-}" ] && ! { exec 3<>/dev/tcp/127.0.0.1/6379; } 2>/dev/null && ! command -v redis-server >/dev/null; then
      echo "Redis tests skipped: no Redis on 127.0.0.1:6379 and no redis-server to start (apt-get install redis-server)"
    fi

# Says plainly when the PostgreSQL store tests were skipped, and how to run them.
_postgres-notice:
    #!/usr/bin/env bash
    url="${DATABASE_URL_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
    server="${url#*://}"; server="${server##*@}"; server="${server%%/*}"
    host="${server%:*}"; port="${server##*:}"
    if [ "$host" = "$server" ]; then port=5432; fi
    if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
      echo "PostgreSQL tests skipped: nothing answers on $host:$port (apt-get install postgresql, or set DATABASE_URL_POSTGRES)"
    fi

# Says plainly when the README walkthrough was skipped, and how to run it.
_walkthrough-notice:
    #!/usr/bin/env bash
    for tool in curl openssl jq; do
      if ! command -v "$tool" >/dev/null; then
        echo "README walkthrough skipped: $tool is not installed (apt-get install curl openssl jq)"
        break
      fi
    done
