//! Text from outside (a store's name from the platform, an affiliate's name and ref code, a
//! program's error body) reaches the operator's terminal through the CLI with its control
//! characters escaped: a `\n` cannot start a forged line, an ESC cannot colour the terminal
//! (DESIGN §7).
use serde_json::Value;
use wiremock::ResponseTemplate;

use crate::{helpers::*, world::store_with};

/// A name that, printed raw, would start a fake log line and turn the terminal red.
pub const FORGED: &str = "Eve\n2026-11-30T00:00:00Z  INFO forged\x1b[31m";

/// Whether `output` holds a raw control character (other than the line ends it is made of) or a
/// line that starts where the forged name's newline would start one.
fn forged_anywhere(output: &str) -> bool {
    output.chars().any(|c| c.is_control() && c != '\n')
        || output
            .lines()
            .any(|l| l.starts_with("2026-11-30T00:00:00Z  INFO forged"))
}

#[tokio::test]
async fn names_and_errors_from_outside_are_escaped_in_every_cli_output() {
    let w = store_with(1)
        .sales("20261101", &[(2, "10.00")])
        .connected()
        .await;
    // The platform renames the store and adds an affiliate, both with the forged text.
    let mut update = install_event_at("st_1", "gpat_prog", &w.program.api_url());
    update["data"]["store"]["name"] = Value::from(FORGED);
    w.app.send(&update).await;
    assert_eq!(
        w.app
            .add_affiliate("st_1", 2, &format!("{FORGED} \u{202e}"))
            .await,
        "processed"
    );
    // The program refuses the push with a body of its own: a dead letter quoting it.
    w.orders.faults.lock().unwrap().push_back((
        ResponseTemplate::new(422).set_body_string(format!("refused: {FORGED}")),
        false,
    ));
    w.sync_now().await;

    let env = w.amazon.env();
    for args in [
        &["stores", "list"][..],
        &["ledger", "--store", "st_1"],
        &["dead-letters"],
        &["export", "--store", "st_1", "--links"],
    ] {
        let run = w.app.cli_with(args, env.clone());
        assert!(run.ok, "{args:?}: {}", run.stderr);
        assert!(
            !forged_anywhere(&run.stdout) && !forged_anywhere(&run.stderr),
            "{args:?} printed raw control characters:\n{:?}",
            run.stdout
        );
        // What was escaped is still there to read.
        let shown = run
            .stdout
            .contains("Eve\\n2026-11-30T00:00:00Z  INFO forged\\u{1b}[31m");
        let expected = args[0] != "ledger";
        assert_eq!(shown, expected, "{args:?}: {}", run.stdout);
    }
    let export = w
        .app
        .cli_with(&["export", "--store", "st_1", "--links"], env);
    assert!(export.stdout.contains("\\u{202e}"), "{}", export.stdout);
    assert_eq!(export.stdout.lines().count(), 3, "a header and two links");
}
