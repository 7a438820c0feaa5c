//! Runs a compat suite runner (tests/compat/*_suite.py) against the respite-server binary cargo
//! built for this test. The runner exits 77 when Python, pytest, the suite's dependencies or the
//! sdist are missing: the test then prints the runner's notice and passes (.ci/run installs them).

use std::process::Command;

pub fn run_suite(script: &str, what: &str) {
    let runner = format!("{}/tests/compat/{script}", env!("CARGO_MANIFEST_DIR"));
    let server = env!("CARGO_BIN_EXE_respite-server");
    // The runner bounds each pytest run itself; `timeout` is the last resort if Python hangs.
    let out = match Command::new("timeout")
        .args(["900", "python3", &runner, "--server", server])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("NOTICE: cannot run python3 ({e}); {what} skipped (.ci/run installs it)");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => println!("{text}"),
        Some(77) | Some(127) => eprintln!("NOTICE: {what} skipped: {}", text.trim()),
        _ => panic!("{what}: outcomes differ from the expected file (or the run failed):\n{text}"),
    }
}
