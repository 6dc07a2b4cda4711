//! The README's walkthroughs, run as written: each is taken from README.md
//! itself (between `<!-- walkthrough: NAME -->` and `<!-- /walkthrough -->`),
//! run by bash against a stack this test starts, and every `# →` line is
//! the output it must print, in order.
//!
//! What the runner changes, and only that: the stack's addresses for
//! `localhost:9000` and `localhost:4000`; the line where a person pastes the
//! code becomes a `read` the test answers after signing in as alice, as the
//! person would in the browser.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use testkit::{ALICE, api::Api, http_client, idp::Idp, query_of};

/// Where a person pastes the code from the browser's address bar.
const PASTE_THE_CODE: &str = "CODE=paste-the-code-here";

/// The walkthrough `name`: its script (the `sh` blocks, in order) and the
/// output it must print (its `# →` lines).
fn walkthrough(name: &str) -> (String, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = format!("<!-- walkthrough: {name} -->");
    let (_, rest) = readme.split_once(&start).expect("the walkthrough's start");
    let (section, _) = rest
        .split_once("<!-- /walkthrough -->")
        .expect("the walkthrough's end");
    let mut script = String::from("set -euo pipefail\n");
    let mut expected = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        match line.trim_end() {
            "```sh" => in_block = true,
            "```" => in_block = false,
            line if in_block => {
                if let Some(output) = line.strip_prefix("# → ") {
                    expected.push(output.to_owned());
                }
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    (script, expected)
}

/// The tools the walkthrough uses, or the one that is missing.
fn missing_tool() -> Option<&'static str> {
    ["curl", "openssl", "jq"].into_iter().find(|tool| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_lifecycle_walkthrough_works_as_written() {
    if let Some(tool) = missing_tool() {
        if std::env::var("REQUIRE_WALKTHROUGHS").is_ok_and(|v| v == "1") {
            panic!("{tool} is not installed, and REQUIRE_WALKTHROUGHS=1");
        }
        // Past the test harness's capture: one line, as for the browser.
        let _ = writeln!(
            std::io::stderr(),
            "README walkthrough skipped: {tool} is not installed (apt-get install curl openssl jq)"
        );
        return;
    }
    let idp = Idp::start().await;
    let api = Api::start(&idp).await;
    let (script, expected) = walkthrough("token-lifecycle");
    assert!(
        script.contains(PASTE_THE_CODE),
        "the paste line is in the README"
    );
    assert!(expected.len() >= 10, "the walkthrough checks its answers");
    let script = script
        .replace("http://localhost:9000", &idp.base_url)
        .replace("http://localhost:4000", &api.base_url)
        .replace(PASTE_THE_CODE, "read -r CODE");

    let mut bash = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut stdout = BufReader::new(bash.stdout.take().unwrap());
    // The first block prints the authorization URL a person opens.
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with(&idp.issuer), "{url}");
    let browser = http_client();
    let callback = testkit::idp::browse_to_callback(&browser, &idp, &url, &ALICE).await;
    let code = query_of(&callback)["code"].clone();
    let mut stdin = bash.stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);

    let output: Vec<String> =
        tokio::task::spawn_blocking(move || stdout.lines().map_while(Result::ok).collect())
            .await
            .unwrap();
    let status = bash.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut bash.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(output, expected, "stderr:\n{stderr}");
    assert!(status.success(), "{status}; stderr:\n{stderr}");
}
