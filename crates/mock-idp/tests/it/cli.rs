//! The `mock-idp` binary as a person or a script uses it: `hash-password`,
//! `rotate-keys`, `--help`, and a clear one-line refusal of a bad
//! `--config`.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

/// Every option of the binary and the environment variable beside it
/// (every option is a `--flag` with an environment variable beside it).
const OPTIONS: [(&str, &str); 7] = [
    ("--port", "IDP_PORT"),
    ("--bind", "IDP_BIND"),
    ("--issuer", "IDP_ISSUER"),
    ("--config", "IDP_CONFIG"),
    ("--database-url", "IDP_DATABASE_URL"),
    ("--signing-alg", "IDP_SIGNING_ALG"),
    ("--log-format", "LOG_FORMAT"),
];

/// The binary with none of its environment variables set, so the test sees
/// its own arguments only.
fn mock_idp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mock-idp"));
    for (_, var) in OPTIONS {
        command.env_remove(var);
    }
    command
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("the binary ends")
}

#[tokio::test]
async fn hash_password_prints_an_argon2id_phc_hash_that_verifies() {
    let mut command = mock_idp();
    command.arg("hash-password");
    let output = run_with_stdin(command, "correct horse battery staple\n");
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let hash = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "one line, the hash: {stdout:?}");
    assert!(
        hash.starts_with("$argon2id$"),
        "a PHC argon2id string: {hash}"
    );

    // The newline that ended the input is not part of the password.
    let hasher = mock_idp::passwords::Hasher::new(1);
    let verify = |password: &str| hasher.verify(password.into(), Some(hash.into()));
    assert!(verify("correct horse battery staple").await.unwrap());
    assert!(!verify("correct horse battery staple\n").await.unwrap());
    assert!(!verify("wrong").await.unwrap());
}

#[test]
fn hash_password_with_empty_input_fails_clearly() {
    let mut command = mock_idp();
    command.arg("hash-password");
    let output = run_with_stdin(command, "");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no hash of nothing");
    assert!(String::from_utf8_lossy(&output.stderr).contains("standard input"));
}

#[test]
fn help_lists_every_option_with_its_environment_variable() {
    let help = help_of(&[]);
    for subcommand in ["serve", "hash-password", "rotate-keys"] {
        assert!(
            help.contains(subcommand),
            "{subcommand} missing from --help"
        );
    }
    assert_lists_every_option(&help);
    // The options a subcommand reads are in its own help, and may follow it
    // (`mock-idp rotate-keys --database-url ...`).
    for subcommand in ["serve", "rotate-keys"] {
        assert_lists_every_option(&help_of(&[subcommand]));
    }
}

fn help_of(args: &[&str]) -> String {
    let output = mock_idp().args(args).arg("--help").output().unwrap();
    assert!(output.status.success(), "{args:?} --help");
    String::from_utf8(output.stdout).unwrap()
}

fn assert_lists_every_option(help: &str) {
    // One entry per option: its line, and any lines wrapped below it.
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        match entries.last_mut() {
            Some(entry) if !line.trim_start().starts_with('-') && line.starts_with("   ") => {
                entry.push_str(line);
            }
            _ => entries.push(line.to_owned()),
        }
    }
    for (flag, var) in OPTIONS {
        let entry = entries
            .iter()
            .find(|e| e.trim_start().starts_with(&format!("{flag} <")))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        assert!(
            entry.contains(&format!("[env: {var}=")),
            "{flag} does not show {var}:\n{entry}"
        );
    }
}

#[tokio::test]
async fn rotate_keys_adds_the_key_a_restarted_idp_signs_with() {
    let path = std::env::temp_dir().join(format!("mock-idp-cli-{}.db", testkit::random_string()));
    let url = format!("sqlite://{}", path.display());
    let output = mock_idp()
        .args(["rotate-keys", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let kid = stdout
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("the new kid is printed: {stdout}"))
        .to_owned();

    let idp = testkit::idp::Idp::start_on_store(mock_idp::Settings::demo(), &url).await;
    let tokens = testkit::idp::login(&idp, &testkit::ALICE, "openid").await;
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(kid.as_str()),
        "the IdP signs with the new key"
    );
    drop(idp);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn a_signing_alg_other_than_the_stored_keys_is_warned_about_at_start() {
    let db = testkit::TempFile::new("mock-idp-alg.db");
    let url = db.sqlite_url();
    // An RS256 key in the store, as the first start makes.
    let made = mock_idp()
        .args(["rotate-keys", "--database-url", &url])
        .output()
        .unwrap();
    assert!(made.status.success());
    let mut idp = mock_idp()
        .args([
            "--port",
            "0",
            "--database-url",
            &url,
            "--signing-alg",
            "ES256",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(idp.stderr.take().unwrap());
    let mut warned = None;
    for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
        if line.contains("listening") {
            break;
        }
        if line.contains("--signing-alg ES256 is not used") {
            warned = Some(line);
        }
    }
    let _ = idp.kill();
    let _ = idp.wait();
    let line = warned.expect("a warning before the IdP listens");
    assert!(
        line.contains("RS256") && line.contains("rotate-keys"),
        "{line}"
    );
}

#[test]
fn unreadable_config_exits_nonzero_with_one_line_naming_config_and_no_backtrace() {
    let missing =
        std::env::temp_dir().join(format!("no-such-dir-{}/idp.toml", testkit::random_string()));
    let directory = std::env::temp_dir();
    for path in [missing.as_path(), directory.as_path()] {
        for via_env in [false, true] {
            let mut command = mock_idp();
            // Port 0 and a database in memory: if the file were somehow read,
            // nothing on the machine would be touched.
            command
                .args(["--port", "0", "--database-url", "sqlite::memory:"])
                .env("RUST_BACKTRACE", "1");
            if via_env {
                command.env("IDP_CONFIG", path);
            } else {
                command.arg("--config").arg(path);
            }
            let output = command.output().unwrap();
            assert!(!output.status.success(), "{} was accepted", path.display());
            let stderr = String::from_utf8(output.stderr).unwrap();
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "one line, got:\n{stderr}");
            assert!(
                lines[0].contains("--config"),
                "the line names --config: {}",
                lines[0]
            );
            assert!(
                lines[0].contains(&path.display().to_string()),
                "and the file: {}",
                lines[0]
            );
            assert!(
                !stderr.contains("panicked") && !stderr.contains("backtrace"),
                "{stderr}"
            );
        }
    }
}
