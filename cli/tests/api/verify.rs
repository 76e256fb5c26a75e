//! `hospital verify` against a running system: consistent after real traffic (exit 0), and a
//! read-model row altered behind the service's back is named (exit 1).

use crate::backend::TestDb;
use crate::replay::{hospital_in, stderr, stdout, system_with_history};

#[tokio::test]
async fn verify_passes_on_a_consistent_system_and_names_an_altered_read_model_row() {
    let (clinic, _services) = system_with_history().await;
    let app = &clinic.app;

    let output = hospital_in(app, &["verify"]).await;
    let printed = stdout(&output);
    assert!(output.status.success(), "{printed}\n{}", stderr(&output));
    assert!(printed.contains("verify: consistent"), "{printed}");
    assert!(printed.contains("record.known_appointments"), "{printed}");

    let db = TestDb::open(&app.databases, "record").await;
    let first = db.table("directory_patients", "id").await;
    db.execute(
        "UPDATE directory_patients SET name = 'Tampered'
         WHERE id = (SELECT id FROM directory_patients ORDER BY id LIMIT 1)",
    )
    .await;
    db.close().await;
    // The row's id, as both backends print it (the first column).
    let id: String = first[0]
        .trim_start_matches('(')
        .split(['|', ','])
        .next()
        .unwrap()
        .to_owned();

    let output = hospital_in(app, &["verify", "--settle", "0.5"]).await;
    let printed = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{printed}\n{}",
        stderr(&output)
    );
    assert!(
        printed.contains(&format!("differing record.directory_patients {id}")),
        "{printed}"
    );
    assert!(printed.contains("verify: 1 differences"), "{printed}");
}
