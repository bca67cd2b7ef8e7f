fn main() {
    println!("plugnode {}", env!("CARGO_PKG_VERSION"));
}
