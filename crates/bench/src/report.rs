//! The table `just bench` prints, and its JSON under `target/bench/`.

use serde::Serialize;

/// One line of the table: a figure, what it is measured against, and the
/// goal its ratio is held to.
#[derive(Serialize)]
pub struct Row {
    pub what: String,
    pub measured: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    /// The ratio must be at least this (or, with `at_most`, at most).
    pub goal: Option<f64>,
    pub at_most: bool,
    /// Its repeated runs lay too far apart for the ratio to be judged.
    pub noisy: bool,
}

impl Row {
    /// Whether the ratio meets the goal; `None` without a goal, or when
    /// the run was too noisy to tell.
    pub fn meets_goal(&self) -> Option<bool> {
        if self.noisy {
            return None;
        }
        match (self.ratio, self.goal) {
            (Some(ratio), Some(goal)) if self.at_most => Some(ratio <= goal),
            (Some(ratio), Some(goal)) => Some(ratio >= goal),
            _ => None,
        }
    }
}

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub date: String,
    pub rows: Vec<Row>,
    /// Every run's raw figures, by name.
    pub runs: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    pub fn new() -> Report {
        // The machine's, not this pinned process's.
        let cores = std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
            .unwrap_or(1);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Report {
            machine: format!("{cpu}, {cores} cores"),
            date,
            ..Report::default()
        }
    }

    pub fn row(
        &mut self,
        what: &str,
        measured: String,
        baseline: String,
        ratio: Option<f64>,
        goal: Option<f64>,
    ) {
        println!(
            "  {what}: {measured} against {baseline}{}",
            match ratio {
                Some(r) => format!(" = {r:.2}"),
                None => String::new(),
            }
        );
        self.rows.push(Row {
            what: what.to_owned(),
            measured,
            baseline,
            ratio,
            goal,
            at_most: false,
            noisy: false,
        });
    }

    /// Marks the last row as too noisy to judge, when `noisy`.
    pub fn noisy_if(&mut self, noisy: bool) {
        if let Some(last) = self.rows.last_mut() {
            last.noisy |= noisy;
        }
    }

    /// A row whose ratio is held to at most `goal`.
    pub fn row_at_most(
        &mut self,
        what: &str,
        measured: String,
        baseline: String,
        ratio: f64,
        goal: f64,
    ) {
        self.row(what, measured, baseline, Some(ratio), Some(goal));
        if let Some(last) = self.rows.last_mut() {
            last.at_most = true;
        }
    }

    pub fn keep<T: Serialize>(&mut self, name: &str, value: &T) {
        self.runs.insert(
            name.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }

    /// The table, as markdown (the README's Performance section takes it
    /// as printed).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} on {} (`just bench`)\n\n| what | measured | against | ratio | goal |\n| --- | --- | --- | --- | --- |\n",
            self.date, self.machine
        );
        for row in &self.rows {
            let ratio = row.ratio.map_or("-".into(), |r| format!("{r:.2}"));
            let goal = match (row.goal, row.meets_goal()) {
                (Some(goal), met) => format!(
                    "{} {goal:.2} {}",
                    if row.at_most { "≤" } else { "≥" },
                    match met {
                        Some(true) => "✓",
                        Some(false) => "✗",
                        None => "? (runs too far apart)",
                    }
                ),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {ratio} | {goal} |\n",
                row.what, row.measured, row.baseline
            ));
        }
        out
    }

    pub fn write(&self) -> anyhow::Result<std::path::PathBuf> {
        let dir = crate::procs::workspace().join("target/bench");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("latest.json");
        std::fs::write(&path, serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("latest.md"), self.table())?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noisy_row_is_printed_but_not_judged() {
        let mut report = Report::default();
        report.row("quiet", "1/s".into(), "2/s".into(), Some(0.5), Some(0.9));
        report.row("noisy", "3/s".into(), "2/s".into(), Some(1.5), Some(0.9));
        report.noisy_if(true);
        assert_eq!(report.rows[0].meets_goal(), Some(false));
        assert_eq!(report.rows[1].meets_goal(), None);
        let table = report.table();
        assert!(table.contains("| 0.50 | ≥ 0.90 ✗ |"), "{table}");
        assert!(
            table.contains("| 1.50 | ≥ 0.90 ? (runs too far apart) |"),
            "{table}"
        );
    }
}
