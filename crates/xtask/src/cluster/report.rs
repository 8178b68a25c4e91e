//! The checks' report: `PASS (x) ...`, `FAIL (x) ...` and indented facts, printed as they come,
//! and the closing count.

/// What the checks found so far.
#[derive(Debug, Default)]
pub struct Report {
    passed: usize,
    failures: Vec<String>,
}

impl Report {
    pub fn pass(&mut self, label: &str, text: impl AsRef<str>) {
        self.passed += 1;
        println!("PASS {label} {}", text.as_ref());
    }

    pub fn fail(&mut self, label: &str, text: impl AsRef<str>) {
        let line = format!("FAIL {label} {}", text.as_ref());
        println!("{line}");
        self.failures.push(line);
    }

    /// A fact that is neither a pass nor a failure.
    pub fn info(&mut self, text: impl AsRef<str>) {
        println!("     {}", text.as_ref());
    }

    /// Passes or fails `label` on `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, label: &str, text: impl AsRef<str>) -> bool {
        if ok {
            self.pass(label, text);
        } else {
            self.fail(label, text);
        }
        ok
    }

    pub fn passed(&self) -> usize {
        self.passed
    }

    pub fn failed(&self) -> usize {
        self.failures.len()
    }
}
