//! The README's C example is `samples/host-c/minimal.c`, verbatim (the C tests build and run
//! that file under valgrind).

#[test]
fn readme_shows_the_minimal_c_example_verbatim() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../samples/host-c/minimal.c");
    let start = readme.find("```c\n").expect("a C block in README.md") + "```c\n".len();
    let end = start + readme[start..].find("```").expect("end of the C block");
    assert_eq!(
        &readme[start..end],
        example,
        "README.md's C example differs from samples/host-c/minimal.c"
    );
}
