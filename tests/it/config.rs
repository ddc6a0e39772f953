//! Settings layering: defaults < handoff.toml < HANDOFF_* < flags.

use std::collections::HashMap;
use std::path::PathBuf;

use handoff::runtime::config::{LogFormat, Synchronous};
use handoff::runtime::{Overrides, Settings};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn the_file_is_overridden_by_the_environment_which_is_overridden_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("handoff.toml");
    std::fs::write(
        &file,
        r#"
listen      = "127.0.0.1:1111"
db          = "from-file.db"
workflows   = "rules"
synchronous = "normal"
log_format  = "json"
public_url  = "https://handoff.example.com/"
"#,
    )
    .unwrap();
    let with_file = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };

    // The file over the defaults.
    let s = Settings::load_with(&with_file, env(&[])).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:1111");
    assert_eq!(s.db, dir.path().join("from-file.db"));
    assert_eq!(s.workflows, dir.path().join("rules"));
    assert_eq!(s.synchronous, Synchronous::Normal);
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.public_url(), "https://handoff.example.com");
    assert_eq!(
        s.max_body_bytes,
        1024 * 1024,
        "not in the file: the default"
    );

    // The environment over the file.
    let vars = [
        ("HANDOFF_LISTEN", "127.0.0.1:2222"),
        ("HANDOFF_DB", "from-env.db"),
        ("HANDOFF_MAX_BODY_BYTES", "4096"),
    ];
    let s = Settings::load_with(&with_file, env(&vars)).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:2222");
    assert_eq!(s.db, PathBuf::from("from-env.db"));
    assert_eq!(s.max_body_bytes, 4096);
    assert_eq!(
        s.synchronous,
        Synchronous::Normal,
        "not in the env: the file's"
    );

    // Flags over the environment.
    let flags = Overrides {
        listen: Some("127.0.0.1:3333".into()),
        log_format: Some(LogFormat::Human),
        ..with_file.clone()
    };
    let s = Settings::load_with(&flags, env(&vars)).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:3333");
    assert_eq!(s.log_format, LogFormat::Human);
    assert_eq!(s.db, PathBuf::from("from-env.db"), "no --db: the env's");
}

#[test]
fn the_config_file_can_be_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.toml");
    std::fs::write(&file, "watch = false\n").unwrap();
    let s = Settings::load_with(
        &Overrides::default(),
        env(&[("HANDOFF_CONFIG", file.to_str().unwrap())]),
    )
    .unwrap();
    assert!(!s.watch);
}

#[test]
fn a_named_config_file_that_is_missing_is_an_error() {
    let flags = Overrides {
        config: Some(PathBuf::from("/nonexistent/handoff.toml")),
        ..Overrides::default()
    };
    let err = Settings::load_with(&flags, env(&[])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the config file `/nonexistent/handoff.toml`"),
        "{err}"
    );
}
