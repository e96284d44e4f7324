//! Section 4: the footprint of the service itself: how long `serve` takes from its start until
//! `/readyz` answers, and its resident set once idle. The service runs as a child process (this
//! very executable as the app's CLI) on a fresh SQLite database, with the sandbox off.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// What one start measured.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Seconds from spawning the process to the first 200 from `/readyz`.
    pub ready_secs: f64,
    /// Resident set in MB, two seconds after ready with nothing to do.
    pub idle_mb: f64,
}

fn rss_kb(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
}

/// The median of `runs` starts, each on a database of its own under `dir`.
pub async fn measure(dir: &std::path::Path, env: &[(String, String)], runs: usize) -> Footprint {
    let mut all = vec![];
    for run in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let db = format!("sqlite://{}/footprint{run}.db?mode=rwc", dir.display());
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
            .arg("serve")
            .env("BENCH_CHILD", "1")
            .envs(env.iter().cloned())
            .env("APP__DATABASE__URL", &db)
            .env("APP__SERVER__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve started");
        let health = format!("http://127.0.0.1:{port}/readyz");
        let client = reqwest::Client::new();
        let ready_secs = loop {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break started.elapsed().as_secs_f64();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve never became ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        // Idle: nothing is sent for two seconds (a bench may wait; a test may not).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_mb = rss_kb(child.id()).map_or(f64::NAN, |kb| kb / 1024.0);
        child.kill().ok();
        child.wait().ok();
        all.push(Footprint {
            ready_secs,
            idle_mb,
        });
    }
    all.sort_by(|a, b| a.ready_secs.total_cmp(&b.ready_secs));
    all[all.len() / 2]
}
