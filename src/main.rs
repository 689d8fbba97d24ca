//! Thin binary: everything lives in the library (`epic_audit::cli`).

fn main() -> std::process::ExitCode {
    epic_audit::cli::main()
}
