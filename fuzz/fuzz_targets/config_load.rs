//! The config loader (`Settings::load`) on arbitrary TOML. The input up to the first NUL byte is the
//! file, written to a file in /dev/shm (the loader reads only paths); after the NUL, each line
//! `SECTION__KEY=value` is a `TESSERA_SECTION__KEY` environment override.
//!
//! Inputs that set `[proxy] ca_file` are skipped: the loader reads that file, and a fuzzer-chosen
//! path such as /dev/zero would only measure the machine. (The config file is trusted input; this
//! target is about the loader not panicking and its checks holding.)
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tessera::config::Settings;

static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("tessera-fuzz-config-{}.toml", std::process::id()))
});

fn sets_ca_file(text: &str) -> bool {
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    table.get("proxy").and_then(|p| p.get("ca_file")).is_some()
}

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("TESSERA_{k}"), v.to_owned()))
        .take(8)
        .collect();
    if sets_ca_file(&String::from_utf8_lossy(file))
        || env
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().contains("ca_file"))
    {
        return;
    }
    if std::fs::write(&*FILE, file).is_err() {
        return;
    }
    let Ok(loaded) = Settings::load(Some(FILE.as_path()), env) else {
        return;
    };
    // What the checks promise about an accepted config.
    let s = &loaded.settings;
    let base = s.base_path();
    assert!(
        base.is_empty() || (base.starts_with('/') && !base.ends_with('/') && !base.contains("//"))
    );
    assert!(!s.session.cookie_name.is_empty());
    assert_eq!(loaded.file_services.len(), s.services.len());
    assert_eq!(loaded.file_clients.len(), s.clients.len());
    for (i, svc) in loaded.file_services.iter().enumerate() {
        assert!(
            !loaded.file_services[..i].iter().any(|o| o.name == svc.name),
            "duplicate service {}",
            svc.name
        );
    }
    for (i, client) in loaded.file_clients.iter().enumerate() {
        assert!(
            !loaded.file_clients[..i].iter().any(|o| o.id == client.id),
            "duplicate client {}",
            client.id
        );
        assert!(
            client.validate().is_ok(),
            "an accepted client fails validation: {client:?}"
        );
    }
    assert!(s.tickets.service_ticket_ttl <= std::time::Duration::from_secs(300));
});
