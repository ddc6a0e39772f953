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

/// Runs pest's generated parser alone over a whole file, building no tree
/// and reporting nothing: true when the grammar accepts the text. The
/// baseline the parse benchmark (`benches/parse.rs`) compares
/// [`parse`] with; not part of the API.
#[doc(hidden)]
pub fn recognize(text: &str) -> bool {
    use pest::Parser as _;
    parser::Grammar::parse(parser::Rule::file, text).is_ok()
}
