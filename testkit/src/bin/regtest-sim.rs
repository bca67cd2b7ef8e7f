fn main() {
    let code = plugnode_testkit::sim::main_with_args(std::env::args().collect());
    std::process::exit(code);
}
