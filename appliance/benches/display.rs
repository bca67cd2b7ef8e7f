//! Display figures (filled in with the display service).
fn main() {}
