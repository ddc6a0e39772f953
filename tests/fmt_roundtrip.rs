//! Formatter soundness, over every workflow, every fixture and generated
//! sources:
//!
//! - `parse(fmt(x)) == parse(x)`, compared as JSON (spans serialize as unit,
//!   so only layout may differ; comments are compared too, in order);
//! - `fmt(fmt(x)) == fmt(x)`.

use std::fs;
use std::path::{Path, PathBuf};

use handoff::diagnostic::{Severity, SourceFile};
use handoff::syntax;
use proptest::prelude::*;
use serde_json::Value;

/// The tree of `src` as JSON, or the syntax errors.
fn tree(name: &str, src: &str) -> Result<(syntax::File, Value), String> {
    let parsed = syntax::parse(&SourceFile::new(name, src));
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} {:?}: {}", d.code, d.start(), d.message))
        .collect();
    if !errors.is_empty() {
        return Err(format!("{name} does not parse:\n{}", errors.join("\n")));
    }
    let mut json = serde_json::to_value(&parsed.file).map_err(|e| e.to_string())?;
    // The formatter trims trailing whitespace inside comments (it means
    // nothing and editors strip it); compare comments without it.
    if let Some(comments) = json.get_mut("comments").and_then(Value::as_array_mut) {
        for c in comments {
            if let Some(Value::String(text)) = c.get_mut("text") {
                *text = text.trim_end().to_string();
            }
        }
    }
    Ok((parsed.file, json))
}

/// Checks both properties for one source; the error says what differs.
fn roundtrip(name: &str, src: &str) -> Result<(), String> {
    let (file, before) = tree(name, src)?;
    let once = syntax::format(&file, src);
    let (file_once, after) = tree(&format!("{name} (formatted)"), &once)
        .map_err(|e| format!("{e}\n--- formatted\n{once}"))?;
    if before != after {
        return Err(format!(
            "{name}: the formatted text parses to a different tree\n{}\n--- formatted\n{once}",
            first_difference(&before, &after)
        ));
    }
    let twice = syntax::format(&file_once, &once);
    if once != twice {
        return Err(format!(
            "{name}: formatting is not idempotent\n--- once\n{once}\n--- twice\n{twice}"
        ));
    }
    Ok(())
}

/// The first line where the pretty-printed trees differ, with context.
fn first_difference(a: &Value, b: &Value) -> String {
    let a = serde_json::to_string_pretty(a).unwrap_or_default();
    let b = serde_json::to_string_pretty(b).unwrap_or_default();
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let from = i.saturating_sub(8);
    format!(
        "--- source tree (from JSON line {from})\n{}\n--- formatted tree\n{}",
        a[from..(i + 3).min(a.len())].join("\n"),
        b[from..(i + 3).min(b.len())].join("\n")
    )
}

fn handoff_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    files.sort();
    files
}

fn check_files(files: &[PathBuf]) {
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let src = fs::read_to_string(f).expect("read fixture");
            roundtrip(&f.display().to_string(), &src).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn workflows_roundtrip() {
    let files = handoff_files(&root().join("workflows"), ".handoff");
    assert!(!files.is_empty());
    check_files(&files);
}

#[test]
fn valid_fixtures_roundtrip() {
    let files = handoff_files(&root().join("tests/fixtures/valid"), ".handoff");
    assert!(files.len() >= 8, "{files:?}");
    check_files(&files);
}

#[test]
fn golden_inputs_roundtrip() {
    let files = handoff_files(&root().join("tests/fixtures/fmt"), ".in.handoff");
    assert!(files.len() >= 8, "{files:?}");
    check_files(&files);
}

#[test]
fn the_property_check_catches_a_lost_comment() {
    // The checker itself must be able to fail: a tree without its comment
    // is not the tree of the source.
    let src = "user founder = \"maya@example.com\"  # the boss\n";
    let (_, with) = tree("a", src).expect("parses");
    let (_, without) = tree("b", "user founder = \"maya@example.com\"\n").expect("parses");
    assert_ne!(with, without);
    assert!(roundtrip("a", src).is_ok());
}

// ------------------------------------------------------------ generator
//
// Random valid source: declarations built token by token from the grammar,
// joined by random whitespace (spaces, tabs, CRLF, blank lines, comments).
// Names never collide with keywords (generated ones contain `_`), dates and
// times are real, numbers are in range: the source must parse, and the
// properties must hold on it.

type Toks = Vec<String>;

fn one(s: impl Into<String>) -> Toks {
    vec![s.into()]
}

fn words(s: &str) -> Toks {
    s.split(' ').map(String::from).collect()
}

fn cat(parts: impl IntoIterator<Item = Toks>) -> Toks {
    parts.into_iter().flatten().collect()
}

/// `items` separated by `,` tokens.
fn comma_list(items: Vec<Toks>) -> Toks {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(",".to_string());
        }
        out.extend(item);
    }
    out
}

fn ident() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(&["deal", "lead", "stage", "amount", "owner", "founder", "x"][..])
            .prop_map(String::from),
        "[a-z][a-z0-9]{0,3}_[a-z0-9_]{0,4}",
    ]
    .boxed()
}

/// `a.b`, sometimes with whitespace around the dot (the grammar allows it).
fn path() -> BoxedStrategy<Toks> {
    (ident(), ident(), prop::bool::weighted(0.1))
        .prop_map(|(a, b, split)| {
            if split {
                vec![a, ".".into(), b]
            } else {
                one(format!("{a}.{b}"))
            }
        })
        .boxed()
}

fn reference() -> BoxedStrategy<Toks> {
    prop_oneof![ident().prop_map(one), path()].boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof!["[0-9]{1,6}", "[1-9]_[0-9]{3}", "[0-9]{1,3}\\.[0-9]{1,3}"].boxed()
}

fn date() -> BoxedStrategy<String> {
    (2000..2100u32, 1..=12u32, 1..=28u32)
        .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
        .boxed()
}

fn datetime() -> BoxedStrategy<String> {
    let zone = prop::sample::select(&["", "Z", "+01:00", "-05:30"][..]);
    (date(), 0..24u32, 0..60u32, prop::option::of(0..60u32), zone)
        .prop_map(|(d, h, m, s, z)| {
            let s = s.map(|s| format!(":{s:02}")).unwrap_or_default();
            format!("{d}T{h:02}:{m:02}{s}{z}")
        })
        .boxed()
}

fn boolean() -> BoxedStrategy<String> {
    prop::sample::select(&["yes", "no", "true", "false"][..])
        .prop_map(String::from)
        .boxed()
}

/// A `due in` time within the ten years `check` allows.
fn due_duration() -> BoxedStrategy<Toks> {
    let unit = prop::sample::select(
        &[
            "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
        ][..],
    );
    (0u32..=520, any::<bool>(), unit)
        .prop_map(|(n, business, unit)| {
            let mut t = one(n.to_string());
            if business {
                t.push("business".into());
            }
            t.push(unit.into());
            t
        })
        .boxed()
}

fn duration() -> BoxedStrategy<Toks> {
    let unit = prop::sample::select(
        &[
            "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
        ][..],
    );
    (number(), any::<bool>(), unit)
        .prop_map(|(n, business, unit)| {
            // Days and weeks count whole (H005 refuses `2.5 days`).
            let n = if unit.starts_with("day") || unit.starts_with("week") {
                n.split('.').next().unwrap_or("1").to_string()
            } else {
                n
            };
            let mut t = one(n);
            if business {
                t.push("business".into());
            }
            t.push(unit.into());
            t
        })
        .boxed()
}

/// A piece of string content: plain text, an escape, a raw tab, non-ASCII.
fn string_piece() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ,.!?#@:-]{1,8}",
        1 => prop::sample::select(&["\\\"", "\\\\", "\\{", "\\}", "\\n", "\\t", "\t", "café €"][..])
            .prop_map(String::from),
    ]
    .boxed()
}

/// A string without interpolation (names, labels, values).
fn plain_string() -> BoxedStrategy<String> {
    prop::collection::vec(string_piece(), 0..4)
        .prop_map(|parts| format!("\"{}\"", parts.concat()))
        .boxed()
}

/// A string with `{expr}` interpolations; the expression stays on one line
/// (strings end on their line).
fn template(expr: BoxedStrategy<Toks>) -> BoxedStrategy<String> {
    let part = prop_oneof![
        2 => string_piece(),
        1 => expr.prop_map(|e| format!("{{{}}}", e.join(" "))),
    ];
    prop::collection::vec(part, 0..4)
        .prop_map(|parts| format!("\"{}\"", parts.concat()))
        .boxed()
}

fn leaf() -> BoxedStrategy<Toks> {
    prop_oneof![
        number().prop_map(one),
        duration(),
        date().prop_map(one),
        datetime().prop_map(one),
        plain_string().prop_map(one),
        boolean().prop_map(one),
        Just(one("today")),
        Just(one("now")),
        path(),
        ident().prop_map(one),
    ]
    .boxed()
}

/// How many `-` or `not` go before an operand: mostly none.
fn prefix_count() -> BoxedStrategy<usize> {
    prop_oneof![8 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize)].boxed()
}

/// `item` or `item op item`.
fn maybe_binary(item: BoxedStrategy<Toks>, ops: &'static [&'static str]) -> BoxedStrategy<Toks> {
    let op = prop::sample::select(ops);
    (item.clone(), prop::option::weighted(0.25, (op, item)))
        .prop_map(|(lhs, rest)| match rest {
            Some((op, rhs)) => cat([lhs, one(op), rhs]),
            None => lhs,
        })
        .boxed()
}

/// The expression grammar's precedence levels over a given `primary`.
fn levels(primary: BoxedStrategy<Toks>) -> BoxedStrategy<Toks> {
    let unary = (prefix_count(), primary)
        .prop_map(|(negs, p)| cat([vec!["-".to_string(); negs], p]))
        .boxed();
    let product = maybe_binary(unary, &["*", "/"]);
    let sum = maybe_binary(product, &["+", "-"]);
    let list = prop::collection::vec(sum.clone(), 0..3)
        .prop_map(|items| cat([one("["), comma_list(items), one("]")]))
        .boxed();
    let tail = prop_oneof![
        (
            prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]),
            sum.clone()
        )
            .prop_map(|(op, rhs)| cat([one(op), rhs])),
        (
            any::<bool>(),
            prop_oneof![
                Just(one("set")),
                Just(one("missing")),
                Just(one("empty")),
                sum.clone(),
            ]
        )
            .prop_map(|(not, test)| cat([
                one("is"),
                if not { one("not") } else { vec![] },
                test
            ])),
        (any::<bool>(), list).prop_map(|(not, list)| cat([
            if not { one("not") } else { vec![] },
            one("in"),
            list
        ])),
        sum.clone().prop_map(|item| cat([one("contains"), item])),
    ];
    let comparison = (sum, prop::option::weighted(0.4, tail))
        .prop_map(|(lhs, tail)| cat([lhs, tail.unwrap_or_default()]))
        .boxed();
    let not_expr = (prefix_count(), comparison)
        .prop_map(|(nots, c)| cat([vec!["not".to_string(); nots], c]))
        .boxed();
    let and = maybe_binary(not_expr, &["and"]);
    maybe_binary(and, &["or"])
}

fn expr() -> BoxedStrategy<Toks> {
    levels(leaf())
        .prop_recursive(2, 24, 3, |inner| {
            let primary = prop_oneof![
                4 => leaf(),
                1 => inner.clone().prop_map(|e| cat([one("("), e, one(")")])),
                1 => prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| cat([one("["), comma_list(items), one("]")])),
                1 => template(inner).prop_map(one),
            ];
            levels(primary.boxed())
        })
        .boxed()
}

fn literal() -> BoxedStrategy<Toks> {
    prop_oneof![
        plain_string().prop_map(one),
        number().prop_map(one),
        number().prop_map(|n| vec!["-".to_string(), n]),
        boolean().prop_map(one),
        date().prop_map(one),
        datetime().prop_map(one),
    ]
    .boxed()
}

fn field_type() -> BoxedStrategy<Toks> {
    let scalar = prop::sample::select(
        &[
            "text", "number", "money", "datetime", "date", "email", "user", "yes/no",
        ][..],
    )
    .prop_map(one);
    let one_of = prop::collection::vec(plain_string().prop_map(one), 1..9)
        .prop_map(|values| cat([words("one of"), comma_list(values)]));
    prop_oneof![3 => scalar, 1 => one_of]
        .prop_recursive(2, 3, 1, |inner| {
            inner.prop_map(|t| cat([words("list of"), t]))
        })
        .boxed()
}

fn object() -> BoxedStrategy<Toks> {
    let field = (
        ident(),
        field_type(),
        prop::option::weighted(0.4, plain_string()),
    )
        .prop_map(|(name, ty, label)| {
            cat([
                vec![name, ":".into()],
                ty,
                label.map(one).unwrap_or_default(),
            ])
        });
    (ident(), prop::collection::vec(field, 0..6))
        .prop_map(|(name, fields)| {
            cat([
                vec!["object".into(), name, "{".into()],
                fields.concat(),
                one("}"),
            ])
        })
        .boxed()
}

/// An email address in quotes (the parser refuses anything else, H005).
fn email() -> BoxedStrategy<String> {
    (
        "[a-z][a-z0-9._+-]{0,8}",
        "[a-z][a-z0-9-]{0,8}",
        "(com|io|example)",
    )
        .prop_map(|(local, host, tld)| format!("\"{local}@{host}.{tld}\""))
        .boxed()
}

fn directory() -> BoxedStrategy<Toks> {
    let member = prop_oneof![email().prop_map(one), ident().prop_map(one)];
    prop_oneof![
        (ident(), email()).prop_map(|(n, e)| vec!["user".into(), n, "=".into(), e]),
        (ident(), plain_string()).prop_map(|(n, e)| vec!["channel".into(), n, "=".into(), e]),
        (ident(), prop::collection::vec(member, 1..12))
            .prop_map(|(n, m)| cat([vec!["team".into(), n, "=".into()], comma_list(m)])),
    ]
    .boxed()
}

fn calendar() -> BoxedStrategy<Toks> {
    let day = prop::sample::select(
        &[
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ][..],
    )
    .prop_map(one);
    let clock = (0..24u32, 0..60u32, any::<bool>()).prop_map(|(h, m, pad)| {
        if pad {
            format!("{h:02}:{m:02}")
        } else {
            format!("{h}:{m:02}")
        }
    });
    let item = prop_oneof![
        prop::collection::vec(day.clone(), 1..4)
            .prop_map(|d| cat([one("workdays"), comma_list(d)])),
        (day.clone(), day).prop_map(|(a, b)| cat([one("workdays"), a, one("to"), b])),
        plain_string().prop_map(|z| vec!["timezone".into(), z]),
        prop::collection::vec(date().prop_map(one), 1..14)
            .prop_map(|d| cat([one("holidays"), comma_list(d)])),
        (clock.clone(), clock).prop_map(|(a, b)| vec!["hours".into(), a, "to".into(), b]),
    ];
    (prop::option::of(ident()), prop::collection::vec(item, 0..5))
        .prop_map(|(name, items)| {
            cat([
                one("calendar"),
                name.map(one).unwrap_or_default(),
                one("{"),
                items.concat(),
                one("}"),
            ])
        })
        .boxed()
}

fn action() -> BoxedStrategy<Toks> {
    let strategy = prop::sample::select(&["round robin", "least loaded"][..]).prop_map(words);
    let due = prop::option::of(due_duration().prop_map(|d| cat([words("due in"), d])));
    let body_line = prop_oneof![
        prop::collection::vec(template(expr()).prop_map(one), 1..5)
            .prop_map(|items| cat([one("checklist"), comma_list(items)])),
        Just(words("attach brief")),
    ];
    let body = prop::option::of(prop::collection::vec(body_line, 0..3));
    prop_oneof![
        (ident(), ident(), strategy).prop_map(|(role, team, s)| cat([
            vec![
                "assign".into(),
                role,
                "from".into(),
                "team".into(),
                team,
                "by".into()
            ],
            s
        ])),
        (ident(), reference())
            .prop_map(|(role, to)| cat([vec!["assign".into(), role, "to".into()], to])),
        (template(expr()), reference(), due, body).prop_map(|(title, who, due, body)| {
            let body = body.map(|lines| cat([one("{"), lines.concat(), one("}")]));
            cat([
                vec!["task".into(), title, "for".into()],
                who,
                due.unwrap_or_default(),
                body.unwrap_or_default(),
            ])
        }),
        (ident(), template(expr())).prop_map(|(c, m)| vec![
            "notify".into(),
            "channel".into(),
            c,
            m
        ]),
        (reference(), template(expr())).prop_map(|(r, m)| cat([one("notify"), r, one(m)])),
        (reference(), template(expr()), template(expr())).prop_map(|(to, s, b)| {
            cat([
                words("draft email to"),
                to,
                words("for review {"),
                vec!["subject".into(), s, "body".into(), b],
                one("}"),
            ])
        }),
        (path(), expr()).prop_map(|(p, e)| cat([one("set"), p, one("="), e])),
        Just(one("pause")),
    ]
    .boxed()
}

fn actions_block(head: &'static str) -> BoxedStrategy<Toks> {
    prop::collection::vec(action(), 0..4)
        .prop_map(move |a| cat([words(head), one("{"), a.concat(), one("}")]))
        .boxed()
}

/// A rhai script: anything but backticks, over several lines or one.
fn script() -> BoxedStrategy<String> {
    ("[a-z0-9 ().<>&|=;\"#{}\t\n]{0,30}", any::<bool>())
        .prop_map(|(body, newline)| {
            format!("script{}```{body}```", if newline { "\n" } else { " " })
        })
        .boxed()
}

fn handoff_item() -> BoxedStrategy<Toks> {
    let event = prop_oneof![
        ident().prop_map(|o| vec![o, "is".into(), "created".into()]),
        (path(), literal()).prop_map(|(p, l)| cat([p, one("becomes"), l])),
        (
            path(),
            prop::option::of(literal()),
            prop::option::of(literal())
        )
            .prop_map(|(p, from, to)| {
                cat([
                    p,
                    one("changes"),
                    from.map(|l| cat([one("from"), l])).unwrap_or_default(),
                    to.map(|l| cat([one("to"), l])).unwrap_or_default(),
                ])
            }),
    ];
    let filter = prop::option::of(expr().prop_map(|e| cat([one("where"), e])));
    let brief_item = prop_oneof![
        (template(expr()), expr()).prop_map(|(l, e)| cat([vec![l, "=".into()], e])),
        template(expr()).prop_map(|q| vec!["ask".into(), q]),
    ];
    let on_exception_item = prop_oneof![
        1 => expr().prop_map(|e| cat([words("resume when"), e])),
        2 => action(),
    ];
    prop_oneof![
        (event, filter).prop_map(|(e, f)| cat([one("when"), e, f.unwrap_or_default()])),
        prop::collection::vec(reference(), 1..14)
            .prop_map(|r| cat([one("require"), comma_list(r)])),
        actions_block("if missing"),
        (
            plain_string(),
            prop_oneof![2 => expr(), 1 => script().prop_map(one)]
        )
            .prop_map(|(n, c)| cat([vec!["exception".into(), n, "when".into()], c])),
        prop::collection::vec(on_exception_item, 0..3).prop_map(|i| cat([
            words("on exception {"),
            i.concat(),
            one("}")
        ])),
        prop::collection::vec(brief_item, 0..4).prop_map(|i| cat([
            words("brief {"),
            i.concat(),
            one("}")
        ])),
        actions_block("then"),
        expr().prop_map(|e| cat([words("done when"), e])),
    ]
    .boxed()
}

/// A handoff's name: never blank (a blank one is H005).
fn handoff_name() -> BoxedStrategy<String> {
    prop::collection::vec(string_piece(), 0..4)
        .prop_map(|parts| format!("\"H{}\"", parts.concat()))
        .boxed()
}

fn handoff_decl() -> BoxedStrategy<Toks> {
    (handoff_name(), prop::collection::vec(handoff_item(), 0..6))
        .prop_map(|(name, items)| {
            cat([
                vec!["handoff".into(), name, "{".into()],
                items.concat(),
                one("}"),
            ])
        })
        .boxed()
}

fn declaration() -> BoxedStrategy<Toks> {
    prop_oneof![1 => object(), 1 => directory(), 1 => calendar(), 2 => handoff_decl()].boxed()
}

/// Whitespace between two tokens: never empty, so tokens never merge.
fn whitespace() -> BoxedStrategy<String> {
    let comment = "#[ a-zA-Z0-9{}\"#`\t]{0,12}";
    prop_oneof![
        12 => Just(" ".to_string()),
        2 => prop::sample::select(&["  ", "\t", "\n", "\r\n", "\n\n", "\n\n\n\t  ", " \n "][..])
            .prop_map(String::from),
        2 => comment.prop_map(|c| format!("  {c}\n")),
        1 => comment.prop_map(|c| format!("\n\n{c}\r\n")),
    ]
    .boxed()
}

/// A whole random file: its tokens joined by random whitespace.
fn source() -> BoxedStrategy<String> {
    (prop::collection::vec(declaration(), 0..4), any::<bool>())
        .prop_flat_map(|(decls, bom)| {
            let toks: Toks = decls.concat();
            let gaps = prop::collection::vec(whitespace(), toks.len() + 1);
            (Just(toks), gaps, Just(bom))
        })
        .prop_map(|(toks, gaps, bom)| {
            let mut out = if bom {
                "\u{feff}".to_string()
            } else {
                String::new()
            };
            for (tok, gap) in toks.iter().zip(&gaps) {
                out.push_str(gap);
                out.push_str(tok);
            }
            out.push_str(gaps.last().map_or("", String::as_str));
            out
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Failures print the shrunk source; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_sources_roundtrip(src in source()) {
        if let Err(e) = roundtrip("generated", &src) {
            prop_assert!(false, "{}\n--- source\n{}", e, src);
        }
    }
}
