//! Accessibility checks with axe-core, the npm package, injected into the
//! page as it is: the same engine browser extensions and CI tools use, run
//! against the real, rendered DOM (styles and app.js included).
//!
//! axe-core comes from `npm install --prefix target/axe axe-core@4`, or from
//! the file `AXE_CORE_JS` names.

use std::path::PathBuf;

use serde_json::Value;

use super::chrome::{Browser, browser_required, say_skipped};

const INSTALL: &str = "install axe-core (npm install --prefix target/axe axe-core@4)";

/// axe-core's own script, `None` (test skipped) when it is not installed.
pub fn axe_core() -> Option<String> {
    let path = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/axe/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(_) => {
            assert!(
                !browser_required(),
                "REQUIRE_BROWSER=1, but axe-core is not at {}: {INSTALL}",
                path.display()
            );
            say_skipped(&format!("browser accessibility tests skipped: {INSTALL}"));
            None
        }
    }
}

/// What axe-core found on one page.
pub struct Findings {
    /// How many rules applied to the page and passed.
    pub passed: usize,
    pub violations: Vec<Violation>,
}

/// One violated rule.
pub struct Violation {
    pub rule: String,
    pub impact: String,
    pub help: String,
    pub nodes: Vec<String>,
}

impl Violation {
    /// axe's two worst levels: what a person using assistive technology
    /// cannot get past.
    pub fn is_blocking(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

/// Runs every axe-core rule on the current page.
pub async fn check(browser: &Browser, axe: &str) -> Findings {
    browser.js(&format!("{axe}\nreturn true;")).await;
    let result = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document)
               .then(r => done({ passed: r.passes.length, violations: r.violations.map(v => ({
                   id: v.id, impact: v.impact || 'minor', help: v.help,
                   nodes: v.nodes.map(n => n.target.join(' ')) })) }))
               .catch(e => done({ error: String(e) }));",
            vec![],
        )
        .await
        .expect("axe.run");
    assert!(
        result["error"].is_null(),
        "axe.run failed: {}",
        result["error"]
    );
    let violations = result["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| Violation {
            rule: text(&v["id"]),
            impact: text(&v["impact"]),
            help: text(&v["help"]),
            nodes: v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect(),
        })
        .collect();
    Findings {
        passed: result["passed"].as_u64().unwrap_or_default() as usize,
        violations,
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

const IMPACTS: [&str; 4] = ["critical", "serious", "moderate", "minor"];

impl Findings {
    /// `critical 0, serious 0, moderate 1 (region), minor 0; 31 rules
    /// passed`: the violations by impact, the rules behind them.
    pub fn summary(&self) -> String {
        let by_impact: Vec<String> = IMPACTS
            .iter()
            .map(|impact| {
                let rules: Vec<&str> = self
                    .violations
                    .iter()
                    .filter(|v| v.impact == *impact)
                    .map(|v| v.rule.as_str())
                    .collect();
                if rules.is_empty() {
                    format!("{impact} 0")
                } else {
                    format!("{impact} {} ({})", rules.len(), rules.join(", "))
                }
            })
            .collect();
        format!("{}; {} rules passed", by_impact.join(", "), self.passed)
    }
}
