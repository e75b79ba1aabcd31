fn main() -> std::process::ExitCode {
    openclaw_admission::cli::main()
}
