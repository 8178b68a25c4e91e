//! Black-box tests of Comanda live in `tests/`: the real app over HTTP against a real
//! PostgreSQL, through the harness in `crates/test-support`.
