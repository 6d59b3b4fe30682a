//! What the browser tests share: where the scripts live (`tests/browser`, with
//! playwright-core from `npm ci`) and the check that node, playwright-core and Chromium are
//! there (skipped with a reason outside CI; a failure under CI).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// What the browser check needs, or None (after printing why) when something is missing
/// outside CI: under CI a missing piece fails the test, so it can never be skipped silently.
pub fn browser_check_ready() -> Option<()> {
    let chromium =
        std::env::var("SWITCHYARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let missing = if !matches!(node, Ok(s) if s.success()) {
        Some(format!(
            "node is not installed ({node:?}); install Debian's nodejs and npm"
        ))
    } else if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        Some(
            "tests/browser/node_modules has no playwright-core; run \
             `npm ci --prefix tests/browser --no-audit --no-fund`"
                .to_owned(),
        )
    } else if !Path::new(&chromium).is_file() {
        Some(format!(
            "chromium is not at {chromium}; install it with `apt-get install -y \
             --no-install-recommends chromium` (or set SWITCHYARD_CHROMIUM to its binary)"
        ))
    } else {
        None
    };
    let Some(why) = missing else {
        return Some(());
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the browser check: {why}");
    }
    eprintln!("SKIPPED the browser check: {why}");
    None
}
