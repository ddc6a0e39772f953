//! CRM values to field values: a CRM property through the mapping to the
//! field it feeds, its value shaped for the field's type (stage ids to
//! labels, owner ids to emails, epoch milliseconds to dates), ready for
//! the same per-field typing every event gets (`Event::decode_lenient`).

use super::mapping::{CrmMapping, ObjectMapping};
use crate::check::{ObjectSchema, Type};

/// Converts one CRM property's value for `field`'s type: stage ids become
/// stage labels, owner ids become emails, epoch-millisecond text becomes a
/// number for dates, an empty value is null. Returns (field, value, whether
/// a stage id was translated), or `None` when the property is not mapped.
pub fn map_property(
    mapping: &CrmMapping,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    property: &str,
    value: &serde_json::Value,
) -> Option<(String, serde_json::Value, bool)> {
    use serde_json::Value as J;
    let field = om.field_for(property)?;
    let slot = schema.slot(field)?;
    if let Type::List(item) = &schema.fields[slot].ty {
        if let Some(list) = option_list(value, item) {
            return Some((field.to_string(), list, false));
        }
    }
    // Pipedrive wraps some values: `{"value": 12000, "currency": "EUR"}`,
    // `{"id": 7, "name": "Sam"}`.
    let value = match value {
        J::Object(o) => o.get("value").or_else(|| o.get("id")).unwrap_or(&J::Null),
        v => v,
    };
    let text = match value {
        J::String(s) if s.trim().is_empty() => return Some((field.to_string(), J::Null, false)),
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        J::Null => return Some((field.to_string(), J::Null, false)),
        _ => None,
    };
    let out = match (&schema.fields[slot].ty, text) {
        (Type::OneOf(_), Some(t)) => match om.stage_label(&t) {
            Some(label) => return Some((field.to_string(), J::String(label.into()), true)),
            None => J::String(t),
        },
        (Type::User | Type::Person, Some(t)) => {
            J::String(mapping.owner_email(&t).map(str::to_string).unwrap_or(t))
        }
        // HubSpot sends dates and date-times as epoch milliseconds in text.
        (Type::Date | Type::DateTime, Some(t))
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) =>
        {
            t.parse::<i64>().map(J::from).unwrap_or(J::String(t))
        }
        _ => value.clone(),
    };
    Some((field.to_string(), out, false))
}

/// A multi-option value for a list field, as a JSON list: Pipedrive's v2
/// `{"type": "set", "values": [{"id": 12}, …]}` or v1's `"12,13"`. Option
/// ids are kept as sent (text for a list of text). `None` when `value` is
/// neither (a JSON list, or HubSpot's `a;b;c`, goes on as it is).
fn option_list(value: &serde_json::Value, item: &Type) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    let textual = matches!(item, Type::Text | Type::OneOf(_) | Type::Email);
    let one = |v: &J| -> Option<J> {
        let v = match v {
            J::Object(o) => o
                .get("label")
                .or_else(|| o.get("value"))
                .or_else(|| o.get("id"))?,
            v => v,
        };
        match v {
            J::Number(n) if textual => Some(J::String(n.to_string())),
            J::String(t) if t.trim().is_empty() => None,
            J::String(t) => Some(J::String(t.trim().to_string())),
            J::Number(_) => Some(v.clone()),
            _ => None,
        }
    };
    match value {
        J::Object(o) => match o.get("values") {
            Some(J::Array(items)) => Some(J::Array(items.iter().filter_map(one).collect())),
            Some(J::Null) => Some(J::Array(Vec::new())),
            _ => None,
        },
        // Pipedrive v1 separates a set's option ids with `,` (ids only: a
        // text with a comma in it stays one text). HubSpot's `a;b;c` is
        // split by the engine's typing, like any event's.
        J::String(t) if textual && is_id_list(t) => Some(J::Array(
            t.split(',')
                .map(|p| J::String(p.trim().to_string()))
                .collect(),
        )),
        _ => None,
    }
}

/// `12,13`: option ids separated by commas.
fn is_id_list(t: &str) -> bool {
    t.contains(',')
        && t.split(',').all(|p| {
            let p = p.trim();
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Maps many properties into `into`; returns the unmapped ones. When two
/// properties feed one field, a value listed under `stages` wins over one
/// that is not, and Pipedrive's `status` (`won`, `lost`) wins over its
/// `stage_id`: a won deal reads "Closed Won" whatever stage it was won
/// from, and an open one reads its stage.
pub fn apply_properties(
    into: &mut serde_json::Map<String, serde_json::Value>,
    mapping: &CrmMapping,
    om: &ObjectMapping,
    schema: &ObjectSchema,
    properties: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> Vec<String> {
    let mut unmapped = Vec::new();
    // field -> the property whose listed stage it holds
    let mut translated: std::collections::HashMap<String, String> = Default::default();
    for (property, value) in properties {
        match map_property(mapping, om, schema, &property, &value) {
            Some((field, v, stage)) => {
                match translated.get(&field) {
                    Some(_) if !stage => continue,
                    Some(by) if by == "status" => continue,
                    _ => {}
                }
                if stage {
                    translated.insert(field.clone(), property.clone());
                }
                into.insert(field, v);
            }
            None => unmapped.push(property),
        }
    }
    unmapped
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value as J};

    use super::*;
    use crate::runtime::adapters::mapping::Mapping;

    fn fixture() -> (Mapping, crate::compile::WorkflowSet) {
        let text = r#"
[pipedrive.objects.deal]
object_type = "deals"
[pipedrive.objects.deal.properties]
stage_id = "stage"
status = "stage"
user_id = "owner"
value = "amount"
start = "start_date"
deliverables = "promised_deliverables"
[pipedrive.objects.deal.stages]
"3" = "Proposal"
won = "Closed Won"
[pipedrive.users]
"7" = "sam@example.com"
"#;
        let table: toml::Table = toml::from_str(text).unwrap();
        let mapping = Mapping::from_table(&table, "handoff.toml").unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let (set, _) = crate::compile::load(&[dir]).unwrap();
        (mapping, set)
    }

    fn apply(props: &[(&str, J)]) -> serde_json::Map<String, J> {
        let (mapping, set) = fixture();
        let crm = mapping.pipedrive.as_ref().unwrap();
        let om = crm.object("deal").unwrap();
        let schema = set.object("deal").unwrap();
        let mut out = serde_json::Map::new();
        let unmapped = apply_properties(
            &mut out,
            crm,
            om,
            schema,
            props.iter().map(|(k, v)| (k.to_string(), v.clone())),
        );
        assert_eq!(unmapped, Vec::<String>::new());
        out
    }

    #[test]
    fn ids_become_labels_and_emails_and_dates_read_from_milliseconds() {
        let out = apply(&[
            ("stage_id", json!(3)),
            ("user_id", json!({"id": 7, "name": "Sam", "value": 7})),
            ("value", json!({"value": 12000, "currency": "EUR"})),
            ("start", json!("1796601600000")),
        ]);
        assert_eq!(out["stage"], "Proposal");
        assert_eq!(out["owner"], "sam@example.com");
        assert_eq!(out["amount"], 12000);
        assert_eq!(out["start_date"], 1796601600000_i64);
        // An owner nobody mapped stays as sent (the engine shows it).
        assert_eq!(apply(&[("user_id", json!(99))])["owner"], "99");
        // Cleared in the CRM: null, not the empty text.
        assert_eq!(apply(&[("value", json!(""))])["amount"], J::Null);
    }

    #[test]
    fn multi_option_values_become_lists() {
        let (mapping, set) = fixture();
        let crm = mapping.pipedrive.as_ref().unwrap();
        let om = crm.object("deal").unwrap();
        let schema = set.object("deal").unwrap();
        let map = |v: J| {
            map_property(crm, om, schema, "deliverables", &v)
                .map(|(f, v, _)| (f, v))
                .unwrap()
        };
        let field = "promised_deliverables".to_string();
        // Pipedrive v2's set field: its option ids, as text (a list of text).
        assert_eq!(
            map(json!({"type": "set", "values": [{"id": 12}, {"id": 13}]})),
            (field.clone(), json!(["12", "13"]))
        );
        assert_eq!(
            map(json!({"type": "set", "values": null})),
            (field.clone(), json!([]))
        );
        // Pipedrive v1 sends the option ids in one text.
        assert_eq!(map(json!("12,13")), (field.clone(), json!(["12", "13"])));
        assert_eq!(
            map(json!("Playbook;Two trainings")),
            (field.clone(), json!("Playbook;Two trainings")),
            "the engine's typing splits this one"
        );
        // One value, a text with a comma, and a JSON list go through as
        // before.
        assert_eq!(map(json!("Playbook")), (field.clone(), json!("Playbook")));
        assert_eq!(
            map(json!("Playbook, two trainings")),
            (field.clone(), json!("Playbook, two trainings"))
        );
        assert_eq!(map(json!(["a", "b"])), (field, json!(["a", "b"])));
    }

    #[test]
    fn a_won_status_wins_over_the_stage_id_in_either_order() {
        let won = [("stage_id", json!(3)), ("status", json!("won"))];
        assert_eq!(apply(&won)["stage"], "Closed Won");
        let reversed = [("status", json!("won")), ("stage_id", json!(3))];
        assert_eq!(apply(&reversed)["stage"], "Closed Won");
        // An open deal reads its stage.
        let open = [("status", json!("open")), ("stage_id", json!(3))];
        assert_eq!(apply(&open)["stage"], "Proposal");
        let open = [("stage_id", json!(3)), ("status", json!("open"))];
        assert_eq!(apply(&open)["stage"], "Proposal");
    }
}
