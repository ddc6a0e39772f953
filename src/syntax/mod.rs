//! Stage one: `.handoff` text → syntax tree, and the formatter that writes a
//! tree back as text.
//!
//! This stage knows the grammar and nothing else: it does not resolve names or
//! types (that is `check`'s job).

pub mod ast;
mod builder;
mod errors;
pub mod format;
mod lexical;
mod parser;

pub use ast::*;
pub use format::format;
pub use parser::{parse, Parsed};
