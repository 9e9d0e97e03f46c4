//! The `tessera` binary, run as users and scripts run it.

use std::process::Command;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

#[test]
fn help_lists_the_commands() {
    let out = tessera().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["serve", "user", "service", "config"] {
        assert!(text.contains(command), "{text}");
    }
}
