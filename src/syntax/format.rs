pub fn format(_f: &crate::syntax::File, _s: &str) -> String {
    String::new()
}
