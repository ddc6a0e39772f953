//! The CRM mapping in `handoff.toml`: per CRM and per `.handoff` object,
//! which CRM property feeds which field, which pipeline stage id means
//! which stage label, and which CRM owner/user id is which person.
//!
//! ```toml
//! [hubspot.objects.deal]            # `deal` is the .handoff object
//! object_type = "deals"
//! [hubspot.objects.deal.properties] # CRM property -> handoff field
//! dealstage = "stage"
//! [hubspot.objects.deal.stages]     # CRM stage id -> stage label
//! closedwon = "Closed Won"
//! [hubspot.owners]                  # CRM owner id -> person email
//! "123" = "ana@example.com"
//! ```
//!
//! Every name keeps its span in the file, so `handoff check` points at the
//! exact key or value that names an unknown field or stage label.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{ObjectSchema, Type};
use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::source::Span;

/// The CRMs handoff reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Crm {
    HubSpot,
    Pipedrive,
}

impl Crm {
    /// The CRM named `name` in `handoff.toml` (`hubspot`, `pipedrive`).
    pub fn parse(name: &str) -> Option<Crm> {
        match name {
            "hubspot" => Some(Crm::HubSpot),
            "pipedrive" => Some(Crm::Pipedrive),
            _ => None,
        }
    }

    /// The name used in `handoff.toml`, metrics and the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Crm::HubSpot => "hubspot",
            Crm::Pipedrive => "pipedrive",
        }
    }
}

impl std::fmt::Display for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mapping of every CRM configured.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub hubspot: Option<CrmMapping>,
    pub pipedrive: Option<CrmMapping>,
}

/// The default `hydrate_deadline_ms`: HubSpot waits 5 s for a webhook's
/// answer and then drops it (and retries, and at last gives up); 3 s of
/// reads leaves the rest for storing the events and answering.
pub const DEFAULT_HYDRATE_DEADLINE_MS: u64 = 3000;

/// The longest `timeout_ms` and `hydrate_deadline_ms`: 5 minutes.
const MAX_TIMEOUT_MS: u64 = 5 * 60 * 1000;

/// The longest `pending_retry_ms`: 30 minutes, where its doubling stops.
const MAX_PENDING_RETRY_MS: u64 = 30 * 60 * 1000;

/// The most `retries`: each is another call (up to `timeout_ms`) holding
/// one of the few turns every webhook and the retry loop share; past a
/// few, the pending-decision loop's growing waits serve a CRM that is down
/// better than trying again at once.
const MAX_RETRIES: u32 = 10;

/// One CRM's `[hubspot]` or `[pipedrive]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmMapping {
    /// The API's base URL (tests point it at a local fake).
    pub api_base: Option<String>,
    /// How long one API call may take, in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
    /// How many times a failed API call is tried again at once (default 2).
    pub retries: Option<u32>,
    /// How long all the API reads of one webhook request may take
    /// together, in milliseconds (default [`DEFAULT_HYDRATE_DEADLINE_MS`]):
    /// the records not read by then are stored as pending, so the hook
    /// answers before the CRM gives up on it.
    pub hydrate_deadline_ms: Option<u64>,
    /// How long a decision waiting for the CRM's API waits before its first
    /// retry, in milliseconds (default 30000); the wait doubles after each
    /// failed retry, up to 30 minutes.
    pub pending_retry_ms: Option<u64>,
    /// HubSpot only: also accept the older v1 and v2 signatures (default
    /// false). They carry no timestamp, so a captured request could be
    /// replayed at any time; HubSpot sends the v3 signature with every
    /// request, so only a proxy that drops its headers needs this.
    pub legacy_signatures: Option<Spanned<bool>>,
    /// `.handoff` object name -> its mapping.
    #[serde(default)]
    pub objects: BTreeMap<Spanned<String>, ObjectMapping>,
    /// CRM owner/user id -> person email (`users` in Pipedrive's words).
    #[serde(default, alias = "users")]
    pub owners: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// One object's mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMapping {
    /// The CRM's object type: `deals`, `contacts` (HubSpot), `deals`,
    /// `leads`, `persons` (Pipedrive).
    pub object_type: Spanned<String>,
    /// CRM property (custom ones too; a Pipedrive custom field by its key)
    /// -> field.
    #[serde(default)]
    pub properties: BTreeMap<Spanned<String>, Spanned<String>>,
    /// CRM stage id (or Pipedrive status such as `won`) -> label.
    #[serde(default)]
    pub stages: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// Why the mapping could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`[{crm}]` in `{path}` is not a valid mapping: {reason}")]
#[diagnostic(
    code(config::mapping),
    help("see the README's HubSpot and Pipedrive sections for the mapping's keys")
)]
pub struct MappingError {
    pub crm: Crm,
    pub path: String,
    pub reason: String,
}

/// Why `legacy_signatures` under `[pipedrive]` is refused.
const NOT_PIPEDRIVE_KEY: &str = "`legacy_signatures` is a HubSpot setting: Pipedrive's \
     webhooks are not signed (they log in with HANDOFF_PIPEDRIVE_USER and \
     HANDOFF_PIPEDRIVE_PASSWORD); remove it from `[pipedrive]`";

impl CrmMapping {
    /// Whether HubSpot's v1 and v2 signatures are accepted (see
    /// [`CrmMapping::legacy_signatures`]).
    pub fn accepts_legacy_signatures(&self) -> bool {
        self.legacy_signatures
            .as_ref()
            .is_some_and(|v| *v.get_ref())
    }

    /// Refuses durations no one means, which would overflow the clock
    /// arithmetic they feed (a deadline of `now` + the value).
    fn check_durations(&self) -> Result<(), String> {
        let limits = [
            (
                "timeout_ms",
                self.timeout_ms,
                MAX_TIMEOUT_MS,
                "one API call",
            ),
            (
                "hydrate_deadline_ms",
                self.hydrate_deadline_ms,
                MAX_TIMEOUT_MS,
                "a webhook's API reads (HubSpot gives up on a webhook after 5 s)",
            ),
            (
                "pending_retry_ms",
                self.pending_retry_ms,
                MAX_PENDING_RETRY_MS,
                "the first retry of a waiting decision (the wait doubles up to 30 minutes)",
            ),
        ];
        for (key, value, most, what) in limits {
            if let Some(v) = value.filter(|v| *v > most) {
                return Err(format!(
                    "`{key} = {v}` is longer than {what} may take: write at most {most} ({} s)",
                    most / 1000
                ));
            }
        }
        if let Some(n) = self.retries.filter(|n| *n > MAX_RETRIES) {
            return Err(format!(
                "`retries = {n}` is more tries at once than help: write at most {MAX_RETRIES} (a read that still fails waits as a pending decision and is tried again later, with growing waits)"
            ));
        }
        Ok(())
    }

    /// How long the API reads of one webhook request may take together.
    pub fn hydrate_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.hydrate_deadline_ms
                .unwrap_or(DEFAULT_HYDRATE_DEADLINE_MS),
        )
    }
}

impl Mapping {
    /// Reads `[hubspot]` and `[pipedrive]` from a parsed config file.
    pub fn from_table(table: &toml::Table, path: &str) -> Result<Mapping, MappingError> {
        let read = |crm: Crm| -> Result<Option<CrmMapping>, MappingError> {
            let Some(value) = table.get(crm.as_str()) else {
                return Ok(None);
            };
            // Through the text again so every key keeps its span.
            let text = toml::to_string(value).map_err(|e| MappingError {
                crm,
                path: path.to_string(),
                reason: e.to_string(),
            })?;
            let m: CrmMapping =
                toml::from_str(&text).map_err(|e: toml::de::Error| MappingError {
                    crm,
                    path: path.to_string(),
                    reason: e.message().to_string(),
                })?;
            m.check_durations().map_err(|reason| MappingError {
                crm,
                path: path.to_string(),
                reason,
            })?;
            Ok(Some(m))
        };
        let pipedrive = read(Crm::Pipedrive)?;
        if pipedrive
            .as_ref()
            .is_some_and(|p| p.legacy_signatures.is_some())
        {
            return Err(MappingError {
                crm: Crm::Pipedrive,
                path: path.to_string(),
                reason: NOT_PIPEDRIVE_KEY.to_string(),
            });
        }
        Ok(Mapping {
            hubspot: read(Crm::HubSpot)?,
            pipedrive,
        })
    }

    /// The `.handoff` objects both CRMs map. Records are kept by object
    /// and record id whichever CRM sent them, so HubSpot deal 55 and
    /// Pipedrive deal 55 would be one record: `serve` warns about each.
    pub fn shared_objects(&self) -> Vec<&str> {
        let (Some(h), Some(p)) = (&self.hubspot, &self.pipedrive) else {
            return Vec::new();
        };
        h.objects
            .keys()
            .map(|name| name.get_ref().as_str())
            .filter(|name| p.object(name).is_some())
            .collect()
    }

    /// The mapping of `crm`, when configured.
    pub fn crm(&self, crm: Crm) -> Option<&CrmMapping> {
        match crm {
            Crm::HubSpot => self.hubspot.as_ref(),
            Crm::Pipedrive => self.pipedrive.as_ref(),
        }
    }

    /// What of this mapping workflows declaring `objects` could not take:
    /// a mapped object they do not declare (its events would be skipped),
    /// a property mapped to a field they do not declare (its values would
    /// be dropped). One line each, naming the fix; empty when it fits.
    /// `handoff check` says the same with the file's lines
    /// ([`check`]); this is for a server whose mapping is already read.
    pub fn does_not_fit(&self, objects: &[ObjectSchema]) -> Vec<String> {
        let mut out = Vec::new();
        for crm in [Crm::HubSpot, Crm::Pipedrive] {
            let Some(m) = self.crm(crm) else { continue };
            for (name, om) in &m.objects {
                let name = name.get_ref();
                let Some(schema) = objects.iter().find(|o| &o.name == name) else {
                    out.push(format!(
                        "`[{crm}.objects.{name}]` in handoff.toml maps an object the workflows no longer declare, so its {crm} events would be skipped: declare `object {name}` again, or change the mapping and restart the server"
                    ));
                    continue;
                };
                for (property, field) in &om.properties {
                    let field = field.get_ref();
                    if schema.slot(field).is_none() {
                        out.push(format!(
                            "{crm} property `{}` is mapped to `{name}.{field}`, which the workflows no longer declare, so its values would be dropped: declare `{field}` in `object {name}` again, or change the mapping and restart the server",
                            property.get_ref()
                        ));
                    }
                }
            }
        }
        out
    }

    /// The CRM owner/user id of the person `email` (the delivery worker
    /// assigns CRM tasks with it). Emails compare case-insensitively.
    pub fn crm_user_id(&self, crm: Crm, email: &str) -> Option<&str> {
        self.crm(crm)?
            .owners
            .iter()
            .find(|(_, e)| e.get_ref().eq_ignore_ascii_case(email.trim()))
            .map(|(id, _)| id.get_ref().as_str())
    }

    /// The CRM property that feeds `field` of `object` (the delivery
    /// worker writes `set` actions back to it).
    pub fn property_for(&self, crm: Crm, object: &str, field: &str) -> Option<&str> {
        self.crm(crm)?
            .object(object)?
            .properties
            .iter()
            .find(|(_, f)| f.get_ref() == field)
            .map(|(p, _)| p.get_ref().as_str())
    }
}

impl CrmMapping {
    /// The mapping of the `.handoff` object `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectMapping> {
        self.objects
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(_, v)| v)
    }

    /// The `.handoff` object whose `object_type` is `object_type`.
    pub fn object_for_type(&self, object_type: &str) -> Option<(&str, &ObjectMapping)> {
        self.objects
            .iter()
            .find(|(_, v)| v.object_type.get_ref().eq_ignore_ascii_case(object_type))
            .map(|(k, v)| (k.get_ref().as_str(), v))
    }

    /// The person email of owner id `id`.
    pub fn owner_email(&self, id: &str) -> Option<&str> {
        self.owners
            .iter()
            .find(|(k, _)| k.get_ref() == id)
            .map(|(_, v)| v.get_ref().as_str())
    }
}

impl ObjectMapping {
    /// The field CRM property `property` feeds.
    pub fn field_for(&self, property: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k.get_ref() == property)
            .map(|(_, v)| v.get_ref().as_str())
    }

    /// The label of stage id `id`.
    pub fn stage_label(&self, id: &str) -> Option<&str> {
        self.stages
            .iter()
            .find(|(k, _)| k.get_ref() == id)
            .map(|(_, v)| v.get_ref().as_str())
    }

    /// Every CRM property mapped, in file order of the keys.
    pub fn mapped_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .map(|(k, v)| (k.get_ref().as_str(), v.get_ref().as_str()))
    }
}

/// Checks the mapping of `file` (the text of `handoff.toml`) against the
/// declared objects: an object, field or stage label the workflows do not
/// declare is an error pointing into the file, with a suggestion.
pub fn check(file: &Arc<SourceFile>, objects: &[ObjectSchema]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Unknown top-level keys are the server's business: `Whole` ignores
    // them. Parsed from the file's own text, so spans point into it.
    #[derive(Deserialize)]
    struct Whole {
        hubspot: Option<CrmMapping>,
        pipedrive: Option<CrmMapping>,
    }
    let whole: Whole = match toml::from_str(&file.text) {
        Ok(w) => w,
        Err(e) => {
            let span = e
                .span()
                .map(|r| Span::new(r.start, r.end))
                .unwrap_or(Span::new(0, 0));
            out.push(
                Diagnostic::error(
                    Code::H001,
                    file,
                    span,
                    format!("the CRM mapping is not valid: {}", e.message()),
                    "here",
                )
                .with_help("a CRM table's keys are object_type, properties, stages, owners (users), api_base, timeout_ms, retries, hydrate_deadline_ms, pending_retry_ms and (HubSpot) legacy_signatures"),
            );
            return out;
        }
    };
    for (crm, mapping) in [
        (Crm::HubSpot, whole.hubspot),
        (Crm::Pipedrive, whole.pipedrive),
    ] {
        if let Some(m) = mapping {
            check_crm(file, crm, &m, objects, &mut out);
        }
    }
    out
}

fn span_of<T>(s: &Spanned<T>) -> Span {
    let r = s.span();
    Span::new(r.start, r.end)
}

fn check_crm(
    file: &Arc<SourceFile>,
    crm: Crm,
    m: &CrmMapping,
    objects: &[ObjectSchema],
    out: &mut Vec<Diagnostic>,
) {
    if let (Crm::Pipedrive, Some(key)) = (crm, &m.legacy_signatures) {
        out.push(
            Diagnostic::error(
                Code::H001,
                file,
                span_of(key),
                "`legacy_signatures` is a HubSpot setting".to_string(),
                "not a Pipedrive key",
            )
            .with_help(NOT_PIPEDRIVE_KEY),
        );
    }
    for (name, om) in &m.objects {
        let Some(schema) = objects.iter().find(|o| &o.name == name.get_ref()) else {
            let mut d = Diagnostic::error(
                Code::H102,
                file,
                span_of(name),
                format!(
                    "`[{crm}.objects.{}]` maps an object the workflows do not declare",
                    name.get_ref()
                ),
                "not a declared object",
            );
            let names = objects.iter().map(|o| o.name.as_str());
            d = d.with_help(match crate::check::suggest(name.get_ref(), names) {
                Some(s) => format!(
                    "did you mean `{s}`? the key is the object's name in the .handoff files"
                ),
                None => format!(
                    "the key is the object's name in the .handoff files: {}",
                    objects
                        .iter()
                        .map(|o| format!("`{}`", o.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            out.push(d);
            continue;
        };
        let mut stage_fields = Vec::new();
        for (property, field) in &om.properties {
            match schema.slot(field.get_ref()) {
                Some(slot) => {
                    if let Type::OneOf(allowed) = &schema.fields[slot].ty {
                        stage_fields.push((field.get_ref().clone(), allowed.clone()));
                    }
                }
                None => {
                    let names = schema.fields.iter().map(|f| f.name.as_str());
                    let help = match crate::check::suggest(field.get_ref(), names) {
                        Some(s) => format!("did you mean `{s}`? or declare `{}` in `object {}`", field.get_ref(), schema.name),
                        None => format!("map `{}` to one of the fields of `object {}`, or declare the field there", property.get_ref(), schema.name),
                    };
                    out.push(
                        Diagnostic::error(
                            Code::H103,
                            file,
                            span_of(field),
                            format!(
                                "CRM property `{}` is mapped to `{}.{}`, which is not declared",
                                property.get_ref(),
                                schema.name,
                                field.get_ref()
                            ),
                            "no such field",
                        )
                        .with_help(help),
                    );
                }
            }
        }
        if om.stages.is_empty() {
            continue;
        }
        // A stage label must be one of the listed values of a `one of`
        // field the mapping feeds (usually the stage).
        let allowed: Vec<&String> = stage_fields.iter().flat_map(|(_, a)| a.iter()).collect();
        let fields = stage_fields
            .iter()
            .map(|(f, _)| format!("`{}.{f}`", schema.name))
            .collect::<Vec<_>>()
            .join(", ");
        for (id, label) in &om.stages {
            if allowed.iter().any(|a| *a == label.get_ref()) {
                continue;
            }
            let help = if allowed.is_empty() {
                format!(
                    "map the CRM's stage property to a `one of` field of `object {}` first",
                    schema.name
                )
            } else {
                match crate::check::suggest(label.get_ref(), allowed.iter().map(|s| s.as_str())) {
                    Some(s) => format!("did you mean \"{s}\"? (the labels of {fields})"),
                    None => format!(
                        "use one of {}: the labels of {fields}",
                        allowed
                            .iter()
                            .map(|a| format!("\"{a}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            };
            out.push(
                Diagnostic::error(
                    Code::H108,
                    file,
                    span_of(label),
                    format!(
                        "stage `{}` is mapped to \"{}\", which is not a listed value",
                        id.get_ref(),
                        label.get_ref()
                    ),
                    "not a listed value",
                )
                .with_help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[hubspot.objects.deal]
object_type = "deals"
[hubspot.objects.deal.properties]
dealstage = "stage"
amount = "amount"
[hubspot.objects.deal.stages]
closedwon = "Closed Won"
[hubspot.owners]
"123" = "Ana@example.com"
"#;

    #[test]
    fn the_hydrate_deadline_is_3_s_unless_set_and_well_under_hubspots_5_s() {
        let table: toml::Table = toml::from_str(TOML).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        let hs = m.crm(Crm::HubSpot).unwrap();
        assert_eq!(hs.hydrate_deadline(), std::time::Duration::from_secs(3));
        let set = format!("[hubspot]\nhydrate_deadline_ms = 1500\n{TOML}");
        let table: toml::Table = toml::from_str(&set).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        assert_eq!(
            m.crm(Crm::HubSpot).unwrap().hydrate_deadline(),
            std::time::Duration::from_millis(1500)
        );
    }

    /// A huge duration overflowed `now + it` and answered every CRM
    /// request 500; it is refused at start, naming the key and the most.
    #[test]
    fn durations_past_their_most_are_refused_by_name() {
        let read = |line: &str| {
            let text = format!("[hubspot]\n{line}\n{TOML}");
            let table: toml::Table = toml::from_str(&text).unwrap();
            Mapping::from_table(&table, "handoff.toml")
        };
        for (line, most) in [
            ("pending_retry_ms = 9223372036854775807", "1800000"),
            ("pending_retry_ms = 1800001", "1800000"),
            ("hydrate_deadline_ms = 9223372036854775807", "300000"),
            ("timeout_ms = 300001", "300000"),
            ("retries = 4294967295", "10"),
            ("retries = 11", "10"),
        ] {
            let key = line.split(' ').next().unwrap();
            let err = read(line).expect_err(line).to_string();
            assert!(
                err.contains(&format!("`{key} = ")) && err.contains(&format!("at most {most}")),
                "{line}: {err}"
            );
        }
        for line in [
            "pending_retry_ms = 1800000",
            "hydrate_deadline_ms = 300000",
            "timeout_ms = 300000",
            "retries = 10",
        ] {
            assert!(read(line).is_ok(), "{line}");
        }
    }

    #[test]
    fn the_delivery_worker_reads_owner_ids_and_property_names_from_it() {
        use crate::runtime::delivery::UserIds;
        let table: toml::Table = toml::from_str(TOML).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        let users: &dyn UserIds = &m;
        assert_eq!(
            users.crm_user_id("hubspot", "ana@example.com").as_deref(),
            Some("123")
        );
        assert_eq!(users.crm_user_id("slack", "ana@example.com"), None);
        assert_eq!(
            users.crm_property("hubspot", "deal", "stage").as_deref(),
            Some("dealstage")
        );
        assert_eq!(users.crm_property("hubspot", "deal", "risk_notes"), None);
        assert_eq!(users.crm_property("pipedrive", "deal", "stage"), None);
    }

    #[test]
    fn objects_mapped_from_both_crms_are_named() {
        let table: toml::Table = toml::from_str(TOML).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        assert!(m.shared_objects().is_empty(), "one CRM");
        let both = format!(
            "{TOML}\n[pipedrive.objects.lead]\nobject_type = \"leads\"\n\
             [pipedrive.objects.deal]\nobject_type = \"deals\"\n"
        );
        let table: toml::Table = toml::from_str(&both).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        assert_eq!(m.shared_objects(), vec!["deal"]);
        // The bundled example maps both CRMs for reference, and says so.
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/crm/handoff.toml");
        let text = std::fs::read_to_string(example).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        assert_eq!(m.shared_objects(), vec!["deal", "lead"]);
    }

    #[test]
    fn lookups_both_ways() {
        let table: toml::Table = toml::from_str(TOML).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        assert_eq!(m.crm_user_id(Crm::HubSpot, "ana@example.com"), Some("123"));
        assert_eq!(m.crm_user_id(Crm::HubSpot, "raj@example.com"), None);
        assert_eq!(m.crm_user_id(Crm::Pipedrive, "ana@example.com"), None);
        assert_eq!(
            m.property_for(Crm::HubSpot, "deal", "stage"),
            Some("dealstage")
        );
        assert_eq!(m.property_for(Crm::HubSpot, "deal", "owner"), None);
        let hs = m.hubspot.as_ref().unwrap();
        assert_eq!(hs.object_for_type("deals").unwrap().0, "deal");
        assert_eq!(
            hs.object("deal").unwrap().stage_label("closedwon"),
            Some("Closed Won")
        );
    }

    #[test]
    fn legacy_signatures_are_off_unless_set_and_only_hubspot_has_them() {
        let read = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap();
            Mapping::from_table(&table, "handoff.toml")
        };
        let m = read("[hubspot]\n").unwrap();
        assert!(!m.hubspot.unwrap().accepts_legacy_signatures());
        let m = read("[hubspot]\nlegacy_signatures = true\n").unwrap();
        assert!(m.hubspot.unwrap().accepts_legacy_signatures());
        let err = read("[pipedrive]\nlegacy_signatures = true\n").unwrap_err();
        assert!(
            err.to_string().contains("is a HubSpot setting") && err.reason.contains("remove it"),
            "{err}"
        );
        // `handoff check --config` points at the key.
        let text = "[pipedrive]\nlegacy_signatures = false\n";
        let file = SourceFile::new("handoff.toml", text);
        let found = check(&file, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("HubSpot setting"), "{found:?}");
        let span = found[0].span;
        assert_eq!(&text[span.start..span.end], "false");
    }

    #[test]
    fn a_mapping_that_does_not_fit_the_workflows_says_what_would_be_lost() {
        let table: toml::Table = toml::from_str(TOML).unwrap();
        let m = Mapping::from_table(&table, "handoff.toml").unwrap();
        let objects = |text: &str| {
            let file = SourceFile::new("crm.handoff", text);
            let (set, _) = crate::compile::load_sources(&[file]).expect("valid");
            set.schema().objects.clone()
        };
        let fits = objects("object deal {\n  stage: one of \"Closed Won\"\n  amount: money\n}\n");
        assert_eq!(m.does_not_fit(&fits), Vec::<String>::new());
        let no_amount = objects("object deal {\n  stage: one of \"Closed Won\"\n}\n");
        let lost = m.does_not_fit(&no_amount);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].starts_with("hubspot property `amount` is mapped to `deal.amount`, which the workflows no longer declare, so its values would be dropped"), "{lost:?}");
        let no_deal = objects("object lead {\n  name: text\n}\n");
        let lost = m.does_not_fit(&no_deal);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("`[hubspot.objects.deal]` in handoff.toml maps an object the workflows no longer declare, so its hubspot events would be skipped: declare `object deal` again"), "{lost:?}");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let table: toml::Table =
            toml::from_str("[hubspot.objects.deal]\nobject_type = \"deals\"\nproperty = {}\n")
                .unwrap();
        let err = Mapping::from_table(&table, "handoff.toml").unwrap_err();
        assert!(err.to_string().contains("property"), "{err}");
    }
}
