//! `handoff check --config handoff.toml` checks the CRM mapping against the
//! declared objects: an unknown object, field or stage label is an error
//! pointing into the TOML, with a suggestion; the example mapping is clean.

use std::path::Path;

use assert_cmd::Command;

fn check(config: &Path) -> assert_cmd::assert::Assert {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::cargo_bin("handoff")
        .unwrap()
        .current_dir(root)
        .env_remove("HANDOFF_CONFIG")
        .args(["check", "workflows", "--config"])
        .arg(config)
        .assert()
}

#[test]
fn the_example_mapping_checks_clean() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/crm/handoff.toml");
    let out = check(&example).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn unknown_objects_fields_and_stage_labels_point_into_the_toml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handoff.toml");
    std::fs::write(
        &path,
        r#"listen = "127.0.0.1:8080"

[hubspot.objects.deal]
object_type = "deals"

[hubspot.objects.deal.properties]
dealstage = "stage"
delivery_risk_notes = "risk_note"

[hubspot.objects.deal.stages]
closedwon = "Closed-Won"
closedlost = "Closed Lost"

[pipedrive.objects.deals]
object_type = "deals"
"#,
    )
    .unwrap();
    let out = check(&path).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The field: named, located, and the likely fix.
    assert!(stderr.contains("H103"), "{stderr}");
    assert!(stderr.contains("`deal.risk_note`"), "{stderr}");
    assert!(stderr.contains("did you mean `risk_notes`?"), "{stderr}");
    assert!(stderr.contains("handoff.toml:8:"), "{stderr}");
    // The stage label.
    assert!(stderr.contains("H108"), "{stderr}");
    assert!(stderr.contains(r#"did you mean "Closed Won"?"#), "{stderr}");
    assert!(stderr.contains("handoff.toml:11:"), "{stderr}");
    assert!(!stderr.contains("Closed Lost\" , which"), "{stderr}");
    // The object.
    assert!(stderr.contains("H102"), "{stderr}");
    assert!(stderr.contains("did you mean `deal`?"), "{stderr}");
}
