//! The README's Rust example is `examples/quickstart.rs`, verbatim, and it runs.

mod quickstart {
    include!("../examples/quickstart.rs");
    pub fn run() -> Result<(), cairndb::Error> {
        main()
    }
}

#[test]
fn readme_shows_the_quickstart_example_verbatim() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/quickstart.rs");
    let start = readme.find("```rust\n").expect("a rust block in README.md") + "```rust\n".len();
    let end = start + readme[start..].find("```").expect("end of the rust block");
    assert_eq!(
        &readme[start..end],
        example,
        "README.md's example differs from examples/quickstart.rs"
    );
}

#[test]
fn the_quickstart_example_runs() {
    quickstart::run().expect("quickstart");
}
