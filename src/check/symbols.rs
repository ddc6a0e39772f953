//! The names a project declares: objects and their fields, users, teams,
//! channels and the calendar. Declarations from every file share one
//! namespace per kind, and a name may be declared once.

use std::collections::HashMap;

use super::types::Type;
use super::{Checker, Loc};
use crate::diagnostic::Code;
use crate::syntax::{CalendarDecl, CalendarItem, ClockTime, Declaration, Member, Span, Weekday};

/// The record types the CRM has.
#[derive(Debug, Default, Clone)]
pub struct Schema {
    pub objects: Vec<ObjectSchema>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    /// The object called `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
        self.by_name.get(name).map(|&i| &self.objects[i])
    }
    /// The names of all objects.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().map(|o| o.name.as_str())
    }
}

/// One record type.
#[derive(Debug, Clone)]
pub struct ObjectSchema {
    pub name: String,
    /// Fields in declaration order; a field's index is its slot in a record.
    pub fields: Vec<FieldSchema>,
    by_name: HashMap<String, usize>,
    pub loc: Loc,
}

impl ObjectSchema {
    /// The slot of field `name`.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.slot(name).map(|i| &self.fields[i])
    }
}

/// One field of a record type.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    pub name: String,
    pub ty: Type,
    /// What people call it (the declared label, else the name).
    pub label: String,
    pub loc: Loc,
}

/// Users, teams and channels.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    pub users: HashMap<String, Named<String>>,
    pub teams: HashMap<String, Named<Vec<String>>>,
    pub channels: HashMap<String, Named<String>>,
    pub calendar: Option<Calendar>,
}

/// A declared value with where it was declared.
#[derive(Debug, Clone)]
pub struct Named<T> {
    pub value: T,
    pub loc: Loc,
}

/// Working time for `business` durations.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub workdays: Vec<Weekday>,
    /// Minutes after midnight.
    pub day_start: u32,
    pub day_end: u32,
    pub timezone: String,
    pub holidays: Vec<jiff::civil::Date>,
    pub loc: Loc,
}

impl Checker<'_> {
    /// Collects every declaration of every file.
    pub(super) fn collect_symbols(&mut self) {
        let units = self.units;
        for (fi, unit) in units.iter().enumerate() {
            for decl in &unit.file.declarations {
                match decl {
                    Declaration::Object(o) => {
                        let loc = Loc::new(fi, o.name.span);
                        if self.first_decl("object", &o.name.name, loc).is_some() {
                            continue;
                        }
                        let mut obj = ObjectSchema {
                            name: o.name.name.clone(),
                            fields: Vec::new(),
                            by_name: HashMap::new(),
                            loc,
                        };
                        for f in &o.fields {
                            let floc = Loc::new(fi, f.name.span);
                            if let Some(&i) = obj.by_name.get(&f.name.name) {
                                let first = obj.fields[i].loc;
                                let d = self
                                    .diag(
                                        Code::H101,
                                        floc,
                                        format!(
                                            "field `{}` is declared twice in `object {}`",
                                            f.name.name, o.name.name
                                        ),
                                        "declared again here",
                                    )
                                    .with_related(first.span, "first declared here")
                                    .with_help("delete one of them, or rename one");
                                self.diagnostics.push(d);
                                continue;
                            }
                            obj.by_name.insert(f.name.name.clone(), obj.fields.len());
                            obj.fields.push(FieldSchema {
                                name: f.name.name.clone(),
                                ty: Type::of_field(&f.ty),
                                label: f
                                    .label
                                    .as_ref()
                                    .map_or_else(|| f.name.name.clone(), |l| l.value.clone()),
                                loc: floc,
                            });
                            if let crate::syntax::FieldType::OneOf { values, .. } = &f.ty {
                                let mut seen: HashMap<&str, Span> = HashMap::new();
                                for v in values {
                                    if let Some(&first) = seen.get(v.value.as_str()) {
                                        let d = self
                                            .diag(
                                                Code::H101,
                                                Loc::new(fi, v.span),
                                                format!(
                                                    "value \"{}\" is listed twice for `{}`",
                                                    v.value, f.name.name
                                                ),
                                                "listed again here",
                                            )
                                            .with_related(first, "first listed here")
                                            .with_help("delete the second one");
                                        self.diagnostics.push(d);
                                    } else {
                                        seen.insert(&v.value, v.span);
                                    }
                                }
                            }
                        }
                        self.schema
                            .by_name
                            .insert(obj.name.clone(), self.schema.objects.len());
                        self.schema.objects.push(obj);
                    }
                    Declaration::User(u) => {
                        let loc = Loc::new(fi, u.name.span);
                        if self.first_decl("user", &u.name.name, loc).is_none() {
                            self.directory.users.insert(
                                u.name.name.clone(),
                                Named {
                                    value: u.email.value.clone(),
                                    loc,
                                },
                            );
                        }
                    }
                    Declaration::Channel(c) => {
                        let loc = Loc::new(fi, c.name.span);
                        if self.first_decl("channel", &c.name.name, loc).is_none() {
                            self.directory.channels.insert(
                                c.name.name.clone(),
                                Named {
                                    value: c.target.value.clone(),
                                    loc,
                                },
                            );
                        }
                    }
                    Declaration::Team(_) | Declaration::Calendar(_) | Declaration::Handoff(_) => {}
                }
            }
        }
        // Teams may name users declared in any file, so they come second.
        for (fi, unit) in units.iter().enumerate() {
            for decl in &unit.file.declarations {
                match decl {
                    Declaration::Team(t) => {
                        let loc = Loc::new(fi, t.name.span);
                        if self.first_decl("team", &t.name.name, loc).is_some() {
                            continue;
                        }
                        let mut members: Vec<String> = Vec::new();
                        let mut spans: Vec<crate::source::Span> = Vec::new();
                        for m in &t.members {
                            let before = members.len();
                            match m {
                                Member::Email(e) => members.push(e.value.clone()),
                                Member::User(u) => match self.directory.users.get(&u.name) {
                                    Some(user) => {
                                        members.push(user.value.clone());
                                        self.used.insert(("user", u.name.clone()));
                                    }
                                    None => {
                                        let names: Vec<String> =
                                            self.directory.users.keys().cloned().collect();
                                        self.unknown(
                                            Code::H104,
                                            Loc::new(fi, u.span),
                                            "user",
                                            &u.name,
                                            &names,
                                            "declare it with `user NAME = \"email\"`, or write the email in quotes",
                                        );
                                    }
                                },
                            }
                            let span = match m {
                                Member::Email(e) => e.span,
                                Member::User(u) => u.span,
                            };
                            if members.len() > before {
                                // Twice in one team, by address or by a
                                // user's name: round robin would give that
                                // person two turns in every round.
                                let added = members[before].to_lowercase();
                                let first = members[..before]
                                    .iter()
                                    .position(|e| e.to_lowercase() == added);
                                if let Some(i) = first {
                                    let d = self
                                        .diag(
                                            Code::H101,
                                            Loc::new(fi, span),
                                            format!(
                                                "`{}` is in team `{}` twice",
                                                members[before], t.name.name
                                            ),
                                            "listed again here",
                                        )
                                        .with_related(spans[i], "first listed here")
                                        .with_help("list each person once: round robin would give them two turns in every round");
                                    self.diagnostics.push(d);
                                    members.pop();
                                } else {
                                    spans.push(span);
                                }
                            }
                        }
                        self.directory.teams.insert(
                            t.name.name.clone(),
                            Named {
                                value: members,
                                loc,
                            },
                        );
                    }
                    Declaration::Calendar(c) => self.calendar(fi, c),
                    _ => {}
                }
            }
        }
    }

    /// Registers a declaration; reports and returns the first one's location
    /// when the name is taken.
    fn first_decl(&mut self, kind: &'static str, name: &str, loc: Loc) -> Option<Loc> {
        let key = (kind, name.to_string());
        if let Some(&first) = self.declared.get(&key) {
            self.duplicate(kind, name, loc, first);
            return Some(first);
        }
        self.declared.insert(key, loc);
        None
    }

    fn duplicate(&mut self, kind: &str, name: &str, loc: Loc, first: Loc) {
        let d = self
            .diag(
                Code::H101,
                loc,
                format!("{kind} `{name}` is declared twice"),
                "declared again here",
            )
            .with_help(
                "rename one of them or delete one; names are shared by every file in the project",
            );
        let d = self.relate(d, first, "first declared here");
        self.diagnostics.push(d);
    }

    fn calendar(&mut self, fi: usize, c: &CalendarDecl) {
        let loc = Loc::new(fi, Span::new(c.span.start, c.span.start + "calendar".len()));
        if let Some(prev) = &self.directory.calendar {
            let first = prev.loc;
            let d = self
                .diag(
                    Code::H115,
                    loc,
                    "the project declares more than one calendar".to_string(),
                    "second calendar",
                )
                .with_help("business days and hours come from one calendar; merge the two");
            let d = self.relate(d, first, "first calendar");
            self.diagnostics.push(d);
            return;
        }
        let mut cal = Calendar {
            workdays: Weekday::ALL[..5].to_vec(),
            day_start: 9 * 60,
            day_end: 17 * 60,
            timezone: "UTC".to_string(),
            holidays: Vec::new(),
            loc,
        };
        for item in &c.items {
            match item {
                CalendarItem::Workdays { days, range, span } => {
                    cal.workdays = if *range && days.len() == 2 {
                        let a = Weekday::ALL.iter().position(|d| *d == days[0]).unwrap_or(0);
                        let b = Weekday::ALL.iter().position(|d| *d == days[1]).unwrap_or(0);
                        if a > b {
                            let d = self
                                .diag(
                                    Code::H115,
                                    Loc::new(fi, *span),
                                    format!(
                                        "`{} to {}` runs backwards: a range of workdays goes from monday towards sunday",
                                        days[0].keyword(),
                                        days[1].keyword()
                                    ),
                                    "backwards range",
                                )
                                .with_help(format!(
                                    "write `workdays {} to {}`, or list the days: `workdays {}`",
                                    days[1].keyword(),
                                    days[0].keyword(),
                                    wrapped_days(a, b)
                                ));
                            self.diagnostics.push(d);
                        }
                        Weekday::ALL[a..=b.max(a)].to_vec()
                    } else {
                        days.clone()
                    };
                }
                CalendarItem::Timezone { name, .. } => {
                    let known = jiff::tz::TimeZone::get(&name.value).is_ok();
                    if let Some((why, place, also)) =
                        super::timezone::not_a_place(&name.value).filter(|_| known)
                    {
                        self.warn(
                            Code::H210,
                            Loc::new(fi, name.span),
                            format!("timezone \"{}\" is not a place", name.value),
                            "not a place",
                            &format!(
                                "{why}; name the team's place, for example \"{place}\"{also}, so business hours follow its clock all year"
                            ),
                        );
                    }
                    if !known {
                        let known: Vec<String> = jiff::tz::db()
                            .available()
                            .map(|n| n.as_str().to_string())
                            .collect();
                        let help = match (
                            super::timezone::place_for(&name.value),
                            super::suggest(&name.value, known.iter().map(String::as_str)),
                        ) {
                            // An abbreviation: the nearest spelling is no help
                            // (`AEST` is nearest to `EST`), the place is.
                            (Some((place, also)), _) => format!(
                                "a timezone is a place, so daylight saving follows it: write \"{place}\"{also}"
                            ),
                            (None, Some(s)) => format!("did you mean \"{s}\"?"),
                            (None, None) => {
                                "use an IANA name such as \"America/New_York\" or \"Europe/Berlin\""
                                    .to_string()
                            }
                        };
                        let d = self
                            .diag(
                                Code::H115,
                                Loc::new(fi, name.span),
                                format!("unknown timezone \"{}\"", name.value),
                                "not an IANA timezone",
                            )
                            .with_help(help);
                        self.diagnostics.push(d);
                    }
                    cal.timezone = name.value.clone();
                }
                CalendarItem::Holidays { dates, .. } => {
                    for d in dates {
                        if let Ok(date) = jiff::civil::Date::new(d.year, d.month, d.day) {
                            cal.holidays.push(date);
                        }
                    }
                }
                CalendarItem::Hours { start, end, span } => {
                    cal.day_start = u32::from(start.hour) * 60 + u32::from(start.minute);
                    cal.day_end = u32::from(end.hour) * 60 + u32::from(end.minute);
                    if cal.day_start >= cal.day_end {
                        let d = self
                            .diag(
                                Code::H115,
                                Loc::new(fi, *span),
                                format!(
                                    "working hours end at {} but start at {}: the working day is empty",
                                    clock(end), clock(start)
                                ),
                                "end is not after start",
                            )
                            .with_help(format!(
                                "write the start first, for example `hours {} to {}`; a working day cannot run past midnight",
                                clock(end), clock(start)
                            ));
                        self.diagnostics.push(d);
                    }
                }
            }
        }
        self.directory.calendar = Some(cal);
    }
}

/// `9:00`, as written in a calendar.
fn clock(t: &ClockTime) -> String {
    format!("{}:{:02}", t.hour, t.minute)
}

/// The days from `ALL[from]` to `ALL[to]` going past sunday, as a list.
fn wrapped_days(from: usize, to: usize) -> String {
    Weekday::ALL[from..]
        .iter()
        .chain(&Weekday::ALL[..=to])
        .map(|d| d.keyword())
        .collect::<Vec<_>>()
        .join(", ")
}
