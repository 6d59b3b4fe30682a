//! `switchyard export` as a process against a running server (SQLite, and PostgreSQL when
//! DATABASE_URL is set): the CSV lands in the file (or on stdout) whole, and a refusal is
//! reported with the field the API named, leaving no file behind.

mod server_common;
mod store_common;

use std::process::{Command, Output};

use server_common::*;
use switchyard_api::store::CallRow;
use uuid::Uuid;

/// 2026-11-02T00:00:00Z.
const DAY: i64 = 1_793_577_600_000;

async fn switchyard(key: &str, args: Vec<String>) -> Output {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .env("SWITCHYARD_API_KEY", key)
            .output()
            .expect("run switchyard")
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchyard_export_writes_the_whole_file_and_reports_a_refusal_with_its_field() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        // Three pages and a bit.
        let calls: Vec<CallRow> = (0..3_100)
            .map(|i| CallRow {
                id: Uuid::new_v4(),
                tenant,
                queue_id: 1,
                queues: vec![1],
                agent_id: None,
                caller_number: format!("+1555{i:07}"),
                outcome: "abandoned".into(),
                arrived_at_ms: DAY + i * 1_000,
                wait_ms: 1_000,
                talk_ms: 0,
                offers: 0,
                synthetic: false,
                callback_leg: None,
            })
            .collect();
        s.store.insert_calls(&calls).await.unwrap();
        let dir = std::env::temp_dir().join(format!("switchyard-export-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("calls.csv");
        let to = (DAY + 86_400_000).to_string();
        let file_arg = file.to_str().unwrap();

        let out = switchyard(
            &admin,
            args(&[
                "export",
                "--url",
                &s.base,
                "--kind",
                "calls",
                "--from",
                "2026-11-02T00:00:00Z",
                "--to",
                &to,
                "--out",
                file_arg,
            ]),
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 3_101, "header and every call");
        assert!(
            lines[0].starts_with("id,arrived_at,arrived_at_ms,queue"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(&calls[0].id.to_string()),
            "{}",
            lines[1]
        );
        assert!(lines[3_100].starts_with(&calls[3_099].id.to_string()));
        assert!(!dir.join("calls.csv.part").exists());

        // Without --out the same file goes to stdout.
        let out = switchyard(
            &admin,
            args(&[
                "export",
                "--url",
                &s.base,
                "--kind",
                "calls",
                "--from",
                &DAY.to_string(),
                "--to",
                &to,
            ]),
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), written);

        // A refusal names the field; nothing is written.
        let refused = dir.join("refused.csv");
        let out = switchyard(
            &admin,
            args(&[
                "export",
                "--url",
                &s.base,
                "--kind",
                "queue_intervals",
                "--from",
                &to,
                "--to",
                &DAY.to_string(),
                "--out",
                refused.to_str().unwrap(),
            ]),
        )
        .await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("to: must be after from"), "{stderr}");
        assert!(!refused.exists());
        assert!(!dir.join("refused.csv.part").exists());
        std::fs::remove_dir_all(&dir).ok();
        s.stop().await;
    })
    .await;
}
