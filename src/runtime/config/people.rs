//! Per-person sign-in tokens for the web pages.
//!
//! A person is named in `handoff.toml` under `[people."ana@example.com"]`
//! with `token_file = "secrets/ana.token"` (relative to the file), or by the
//! environment: `HANDOFF_TOKEN_ANA=…` (or `HANDOFF_TOKEN_ANA_FILE=path`).
//! The variable's `<NAME>` matches a person of the file whose name, up to
//! the `@`, reads the same in capitals with `_` for other characters
//! (`ana@example.com` → `ANA`); a variable matching nobody names a person
//! of its own (`HANDOFF_TOKEN_MAYA` → `maya`). A token itself in the file
//! is refused like every other secret: the file is meant to be committed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use crate::runtime::secret::Secret;

/// The prefix of a person's token variable.
pub const TOKEN_VAR_PREFIX: &str = "HANDOFF_TOKEN_";

/// A person who can sign in, and their token.
#[derive(Debug, Clone)]
pub struct Person {
    /// How their actions are recorded: the key of `[people."…"]`, or the
    /// lowercased `<NAME>` of the variable.
    pub name: String,
    pub token: Secret,
}

/// One `[people."…"]` table of the config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PersonFile {
    pub token_file: Option<PathBuf>,
}

/// The `<NAME>` of a person's variable: the part before `@`, in capitals,
/// other characters as `_`.
pub fn var_name(person: &str) -> String {
    let local = person.split('@').next().unwrap_or(person);
    let mut name = String::with_capacity(TOKEN_VAR_PREFIX.len() + local.len());
    name.push_str(TOKEN_VAR_PREFIX);
    name.extend(local.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    name
}

/// The people declared in the file, with the tokens of their files.
pub(super) fn from_file(
    file: BTreeMap<String, PersonFile>,
    base: &Path,
    shown: &str,
) -> Result<Vec<(String, Option<Secret>)>, ConfigError> {
    let mut out = Vec::with_capacity(file.len());
    for (name, p) in file {
        let token = match p.token_file {
            None => None,
            Some(path) => Some(read_token(&base.join(path), &name, shown)?),
        };
        out.push((name, token));
    }
    Ok(out)
}

fn read_token(path: &Path, person: &str, shown: &str) -> Result<Secret, ConfigError> {
    let var = format!("people.\"{person}\".token_file in {shown}");
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
        var: var.clone(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        return Err(ConfigError::EmptySecret { var });
    }
    Ok(Secret::new(token))
}

/// Joins the file's people with the `HANDOFF_TOKEN_*` variables of `vars`
/// (each `(name, value)`); the variable wins over the file's token.
pub(super) fn resolve(
    declared: Vec<(String, Option<Secret>)>,
    vars: impl Iterator<Item = (String, String)>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<Person>, ConfigError> {
    let mut by_var: BTreeMap<String, (String, Option<Secret>)> = declared
        .into_iter()
        .map(|(name, token)| (var_name(&name), (name, token)))
        .collect();
    let mut names: Vec<String> = vars
        .filter_map(|(k, _)| {
            let base = k.strip_suffix("_FILE").unwrap_or(&k);
            (base.len() > TOKEN_VAR_PREFIX.len() && base.starts_with(TOKEN_VAR_PREFIX))
                .then(|| base.to_string())
        })
        .collect();
    names.extend(by_var.keys().cloned());
    names.sort();
    names.dedup();
    let mut people = Vec::new();
    for var in names {
        let from_env = super::read_secret(env, &var)?;
        let (name, token) = match by_var.remove(&var) {
            Some((name, file_token)) => (name, from_env.or(file_token)),
            None => (var[TOKEN_VAR_PREFIX.len()..].to_ascii_lowercase(), from_env),
        };
        if let Some(token) = token {
            people.push(Person { name, token });
        }
    }
    Ok(people)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_name_comes_from_the_part_before_the_at() {
        assert_eq!(var_name("ana@example.com"), "HANDOFF_TOKEN_ANA");
        assert_eq!(var_name("li.wu@example.com"), "HANDOFF_TOKEN_LI_WU");
        assert_eq!(var_name("maya"), "HANDOFF_TOKEN_MAYA");
    }

    #[test]
    fn variables_join_the_file_people_or_name_their_own() {
        let vars = [
            ("HANDOFF_TOKEN_ANA", "t-ana"),
            ("HANDOFF_TOKEN_MAYA", "t-maya"),
            ("HANDOFF_API_TOKEN", "not-a-person"),
        ];
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let declared = vec![
            ("ana@example.com".to_string(), None),
            ("sam@example.com".to_string(), Some(Secret::new("t-sam"))),
            ("nobody@example.com".to_string(), None),
        ];
        let people = resolve(
            declared,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &env,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = people
            .iter()
            .map(|p| (p.name.as_str(), p.token.expose()))
            .collect();
        assert_eq!(
            got,
            [
                ("ana@example.com", "t-ana"),
                ("maya", "t-maya"),
                ("sam@example.com", "t-sam"),
            ]
        );
    }
}
