//! `handoff`: declarative CRM handoff rules.
//!
//! The pipeline, one module a stage:
//!
//! ```text
//! .handoff text ──syntax::parse──▶ syntax tree ──format──▶ canonical text
//! ```
//!
//! ```
//! use handoff::{diagnostic::SourceFile, syntax};
//!
//! let src = SourceFile::new("crm.handoff", "user founder = \"maya@example.com\"\n");
//! let parsed = syntax::parse(&src);
//! assert!(parsed.diagnostics.is_empty());
//! assert_eq!(syntax::format(&parsed.file, &src.text), "user founder = \"maya@example.com\"\n");
//! ```

pub mod check;
pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod project;
pub mod scenario;
pub mod script;
pub mod syntax;
pub mod value;
