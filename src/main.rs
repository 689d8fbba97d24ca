//! Thin binary: everything lives in the library (`epic_audit::cmd::main`).

fn main() -> std::process::ExitCode {
    epic_audit::cmd::main()
}
