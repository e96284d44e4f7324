//! The pure parsers under hostile input, in process: the Standard Webhooks signature check, the
//! platform's event payloads, Amazon's report pages and wire types, and money text.
use attribution_bridge::{
    clients::amazon::{
        report::{self, Reading, Rows},
        wire,
    },
    domain::{
        hosts::HostPolicy,
        money::{to_count, to_minor},
    },
    webhooks::{
        events::{self, Event},
        verify::{SignedHeaders, Verifier},
    },
};
use proptest::{prelude::*, sample::Index};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Kind, hostile::*, no_panic, run};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const NOW: i64 = 1_795_000_000;

fn verifier(secret: &str) -> Verifier {
    Verifier::new(&[SecretString::from(secret.to_owned())], 300).unwrap()
}

/// A header value as a platform, a proxy or an attacker may send it.
fn header_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        4 => hostile_string().prop_map(Some),
        2 => "[ -~]{0,80}".prop_map(Some),
    ]
}

/// A `webhook-id`: plausible, or not.
fn webhook_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "msg_[A-Za-z0-9]{1,40}",
        1 => hostile_string(),
        1 => Just("x".repeat(256)),
        1 => Just("msg 1".to_owned()),
    ]
}

/// A timestamp near `NOW`, around the tolerance's edges, or hostile.
fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-400i64..=400).prop_map(|d| (NOW + d).to_string()),
        1 => numberish(),
        1 => hostile_string(),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just(format!("+{NOW}")),
        1 => Just(format!("{NOW}.0")),
        1 => Just(format!("0{NOW}")),
    ]
}

/// What the signature covers compared with what is sent.
#[derive(Debug, Clone)]
enum Signed {
    /// The exact parts sent, with the app's secret.
    Exactly,
    /// The parts sent, one byte of one part changed.
    OtherPart(Index, Index, u8),
    /// The exact parts, with a secret the app does not know.
    OtherSecret,
    /// The exact parts, and then one character of the base64 changed.
    Corrupted(Index, char),
    /// Nothing: a random header.
    Random(Option<String>),
}

fn signed() -> impl Strategy<Value = Signed> {
    prop_oneof![
        2 => Just(Signed::Exactly),
        2 => (any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(p, i, b)| Signed::OtherPart(p, i, b)),
        1 => Just(Signed::OtherSecret),
        2 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Signed::Corrupted(i, c)),
        3 => header_text().prop_map(Signed::Random),
    ]
}

/// Entries a signature list may carry beside the real one.
fn decoys() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            "v1,[A-Za-z0-9+/=]{0,64}",
            "v[0-9a-z]{0,3},[ -~]{0,20}",
            hostile_string(),
        ],
        0..4,
    )
}

/// The signature header for `parts`, as `how` says; and whether it is a valid signature of
/// exactly `parts` by the app's secret.
fn signature(how: &Signed, parts: &[&[u8]], decoys: &[String]) -> (Option<String>, bool) {
    let app = verifier(SECRET);
    let (sig, valid) = match how {
        Signed::Exactly => (app.sign(parts), true),
        Signed::OtherPart(p, i, b) => {
            let mut owned: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
            let part = p.get_mut(&mut owned);
            let changed = if part.is_empty() {
                part.push(*b);
                true
            } else {
                let at = i.index(part.len());
                let was = part[at];
                part[at] = *b;
                was != *b
            };
            let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            (app.sign(&refs), !changed)
        }
        Signed::OtherSecret => (verifier(&random_secret_like()).sign(parts), false),
        Signed::Corrupted(i, c) => {
            let good = app.sign(parts);
            let mut chars: Vec<char> = good.chars().collect();
            let at = 3 + i.index(chars.len() - 3);
            let was = chars[at];
            chars[at] = *c;
            // Base64's last character may carry padding bits that decoders ignore or refuse;
            // any other change is a different signature.
            (chars.into_iter().collect(), was == *c)
        }
        Signed::Random(h) => return (h.clone(), false),
    };
    let mut list = decoys.to_vec();
    list.push(sig);
    (Some(list.join(" ")), valid)
}

fn random_secret_like() -> String {
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()
}

fn id_is_valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether `ts` is a timestamp within the 5 minutes' tolerance of `now` (unix seconds).
fn in_tolerance(ts: &str, now: i64) -> bool {
    ts.len() <= 20
        && !ts.is_empty()
        && ts.bytes().all(|b| b.is_ascii_digit())
        && ts
            .parse::<u64>()
            .is_ok_and(|t| i128::from(t).abs_diff(i128::from(now)) <= 300)
}

#[test]
fn fuzz_signature_headers() {
    let strategy = (
        proptest::option::weighted(0.9, webhook_id()),
        proptest::option::weighted(0.9, timestamp()),
        webhook_body("st_1"),
        signed(),
        decoys(),
        prop_oneof![4 => Just(NOW), 1 => any::<i64>()],
    );
    run(
        "signature headers",
        Kind::Parser,
        2048,
        strategy,
        |(id, ts, body, how, decoys, now), tally| {
            let (sig, valid) = signature(
                &how,
                &[
                    id.as_deref().unwrap_or("").as_bytes(),
                    ts.as_deref().unwrap_or("").as_bytes(),
                    &body,
                ],
                &decoys,
            );
            let headers = SignedHeaders {
                id: id.as_deref(),
                timestamp: ts.as_deref(),
                signature: sig.as_deref(),
            };
            let got = no_panic(tally, || {
                verifier(SECRET).verify_webhook(headers, &body, now)
            })?;
            tally.saw(if got.is_ok() { "verified" } else { "refused" });
            let want = valid
                && id.as_deref().is_some_and(id_is_valid)
                // Another clock (`now`) may happen to be within tolerance of the timestamp too.
                && ts.as_deref().is_some_and(|ts| in_tolerance(ts, now));
            prop_assert_eq!(got.is_ok(), want, "{:?}", got);
            Ok(())
        },
    );
}

#[test]
fn fuzz_load_link_signatures() {
    let strategy = (
        prop_oneof![3 => Just("st_1".to_owned()), 1 => "[A-Za-z0-9_-]{1,64}", 1 => hostile_string()],
        timestamp(),
        signed(),
        decoys(),
    );
    run(
        "load link signatures",
        Kind::Parser,
        2048,
        strategy,
        |(store, ts, how, decoys), tally| {
            let (sig, valid) = signature(&how, &[store.as_bytes(), ts.as_bytes()], &decoys);
            let sig = sig.unwrap_or_default();
            let got = no_panic(tally, || {
                verifier(SECRET).verify_load_link(&store, &ts, &sig, NOW)
            })?;
            tally.saw(if got.is_ok() { "verified" } else { "refused" });
            prop_assert_eq!(got.is_ok(), valid && in_tolerance(&ts, NOW), "{:?}", got);
            Ok(())
        },
    );
}

/// A body, and whether it is certainly not JSON (a proper prefix of a document).
fn payload() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        6 => (proptest::sample::select(events("st_1")), mutations(4), wire()).prop_map(
            |(event, changes, w)| {
                let doc = apply(event, &changes);
                let full = serde_json::to_vec(&doc).unwrap();
                let bytes = encode(&doc, &w);
                let cut = matches!(w, Wire::Truncated(_)) && bytes.len() < full.len();
                (bytes, cut)
            }
        ),
        1 => any_json().prop_map(|v| (serde_json::to_vec(&v).unwrap(), false)),
        1 => deep_nesting().prop_map(|b| (b, false)),
        1 => proptest::collection::vec(any::<u8>(), 0..512).prop_map(|b| (b, false)),
    ]
}

#[test]
fn fuzz_webhook_payloads() {
    let hosts = HostPolicy::default();
    run(
        "webhook payloads",
        Kind::Parser,
        2048,
        payload(),
        |(body, cut), tally| {
            let parsed = no_panic(tally, || events::parse(&body, &hosts))?;
            tally.saw(match &parsed {
                Ok((_, Event::Unknown { .. })) => "unknown type",
                Ok(_) => "read",
                Err(_) => "malformed",
            });
            if cut {
                prop_assert!(parsed.is_err(), "a truncated body was read: {:?}", parsed);
            }
            if let Ok((_, Event::Installed(i))) = &parsed {
                // What an install stores is checked, whatever came in.
                prop_assert!(!i.store.name.is_empty() && i.store.name.trim() == i.store.name);
                prop_assert!(
                    i.store.url.starts_with("http://") || i.store.url.starts_with("https://")
                );
                prop_assert!(!i.access_token.expose_secret().trim().is_empty());
                prop_assert!(i.api_url.as_ref().is_none_or(|u| u.scheme() == "https"));
                prop_assert!(!i.commission.value.is_sign_negative());
            }
            Ok(())
        },
    );
}

/// A row Amazon could send, every metric readable.
fn complete_row() -> Value {
    json!({"date": "20261101", "campaignId": "ab_st_1", "adGroupId": "a1", "Click-throughs": "30",
           "attributedDetailPageViewsClicks14d": 12, "attributedAddToCartClicks14d": "3",
           "attributedPurchases14d": "2", "attributedSales14d": "50.00",
           "attributedTotalPurchases14d": 2, "totalAttributedSales14d": 61.5,
           "unitsSold14d": "2", "totalUnitsSold14d": "2", "brb_bonus_amount": "1.25"})
}

const MONEY: [&str; 2] = ["attributedSales14d", "totalAttributedSales14d"];
const REQUIRED: [&str; 4] = [
    "attributedSales14d",
    "totalAttributedSales14d",
    "attributedPurchases14d",
    "attributedTotalPurchases14d",
];

/// A metric that is no amount: absent (None), null, blank, words, another kind, negative, too
/// big, nested.
fn not_an_amount() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        "[ \t]{0,4}".prop_map(|s| Some(Value::String(s))),
        "[a-zA-Z_ ]{0,8}[a-zA-Z_][a-zA-Z_ ]{0,8}".prop_map(|s| Some(Value::String(s))),
        any::<bool>().prop_map(|b| Some(Value::Bool(b))),
        Just(Some(json!({}))),
        Just(Some(json!([]))),
        Just(Some(json!(["50.00"]))),
        Just(Some(json!({"amount": "50.00"}))),
        "-[1-9][0-9]{0,8}(\\.[0-9]{1,2})?".prop_map(|s| Some(Value::String(s))),
        (1i64..i64::MAX).prop_map(|n| Some(json!(-n))),
        Just(Some(json!(-0.5))),
        "[1-9][0-9]{29,40}".prop_map(|s| Some(Value::String(s))),
        Just(Some(json!(1e300))),
        Just(Some(json!("1e400"))),
        Just(Some(json!("NaN"))),
        Just(Some(json!("Infinity"))),
        Just(Some(json!("50,00"))),
        Just(Some(json!("$50.00"))),
        Just(Some(json!("５０"))),
    ]
}

/// A metric's text when it is one Amazon could mean: a non-blank string or a number.
fn metric_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn read_one(row: &Value) -> Option<Reading> {
    let mut rows = Rows::new();
    report::read_page(&json!({"reports": [row]}), 2, &mut rows).ok()?;
    rows.into_values().next()
}

#[test]
fn fuzz_report_money_is_never_read_as_zero() {
    let strategy = (
        mutations(3),
        proptest::option::weighted(
            0.7,
            (proptest::sample::select(REQUIRED.to_vec()), not_an_amount()),
        ),
    );
    run(
        "report rows, money never zero",
        Kind::Parser,
        2048,
        strategy,
        |(changes, forced), tally| {
            let mut row = apply(complete_row(), &changes);
            if let (Some((key, value)), Some(map)) = (&forced, row.as_object_mut()) {
                match value {
                    None => map.remove(*key),
                    Some(v) => map.insert((*key).to_owned(), v.clone()),
                };
            }
            let reading = no_panic(tally, || read_one(&row))?;
            tally.saw(match &reading {
                Some(Reading::Complete(_)) => "complete",
                Some(Reading::Incomplete) => "incomplete",
                None => "bad row",
            });
            if forced.is_some() && row.is_object() {
                prop_assert!(
                    !matches!(reading, Some(Reading::Complete(_))),
                    "a row with {:?} was read as {:?}",
                    forced,
                    reading
                );
            }
            if let Some(Reading::Complete(f)) = &reading {
                // Complete means every money and purchase metric was there and read as itself.
                for key in REQUIRED {
                    let text = metric_text(row.get(key));
                    prop_assert!(text.is_some(), "{} missing yet complete: {}", key, row);
                }
                let money = |k: &str| to_minor(&metric_text(row.get(k)).unwrap(), 2).ok();
                prop_assert_eq!(Some(f.sales_minor), money(MONEY[0]));
                prop_assert_eq!(Some(f.total_sales_minor), money(MONEY[1]));
                prop_assert!(f.sales_minor >= 0 && f.total_sales_minor >= 0);
            }
            Ok(())
        },
    );
}

/// A page of rows: the report's shape mangled, or any JSON.
fn report_page() -> impl Strategy<Value = Value> {
    let rows =
        proptest::collection::vec(mutations(3).prop_map(|c| apply(complete_row(), &c)), 0..8);
    prop_oneof![
        4 => (rows, hostile_scalar(), mutations(2)).prop_map(|(rows, cursor, changes)| {
            apply(json!({"reports": rows, "cursorId": cursor, "size": 5000}), &changes)
        }),
        1 => any_json(),
    ]
}

#[test]
fn fuzz_report_pages() {
    run(
        "report pages",
        Kind::Parser,
        1024,
        (report_page(), report_page()),
        |(first, second), tally| {
            let mut rows = Rows::new();
            let read = no_panic(tally, || {
                let a = report::read_page(&first, 2, &mut rows).map(|_| ());
                let b = report::read_page(&second, 0, &mut rows).map(|_| ());
                (a, b, report::next_cursor(&first))
            })?;
            tally.saw(match (&read.0, &read.1) {
                (Ok(()), Ok(())) => "both read",
                (Ok(()), Err(_)) | (Err(_), Ok(())) => "one read",
                (Err(_), Err(_)) => "none read",
            });
            if let Some(cursor) = read.2 {
                prop_assert!(!cursor.trim().is_empty());
            }
            Ok(())
        },
    );
}

/// A page read from its text (the sync's reader, `read_page_rows`, its rows merged as the ingest
/// merges pages) reads exactly as the same text parsed into a `Value` and read: the same rows, the
/// same refusal or not, the same cursor.
/// A key given twice counts once, the last one, as in a `Value`.
#[test]
fn fuzz_report_page_text_reads_as_the_value_reader() {
    run(
        "report page text",
        Kind::Parser,
        1024,
        (report_page(), any::<bool>(), 0usize..REQUIRED.len()),
        |(page, twice, which), tally| {
            let mut text = page.to_string();
            if twice {
                // An earlier value of the same key, which the later one replaces.
                let key = format!("\"{}\":", REQUIRED[which]);
                text = text.replacen(&key, &format!("{key}\"1.00\",{key}"), 1);
            }
            let (mut by_value, mut by_text) = (Rows::new(), Rows::new());
            let read = no_panic(tally, || {
                // The text as the Amazon client read it before: into a `Value`, then its rows.
                let a = serde_json::from_str::<Value>(&text)
                    .map_err(|_| ())
                    .and_then(|page| {
                        report::read_page(&page, 2, &mut by_value)
                            .map(|n| (n, report::next_cursor(&page)))
                            .map_err(|_| ())
                    });
                let b = report::read_page_rows(&text, 2)
                    .map(|page| {
                        report::merge(page.rows, &mut by_text);
                        (page.count, page.cursor)
                    })
                    .map_err(|_| ());
                (a, b)
            })?;
            // The one difference: a field the reader does not use may nest deeper than a
            // `Value` may (128 levels); a metric may not.
            let too_deep = serde_json::from_str::<Value>(&text)
                .is_err_and(|e| e.to_string().contains("recursion limit"));
            if too_deep && read.1.is_ok() {
                tally.saw("too deep for a Value, read");
                return Ok(());
            }
            tally.saw(if read.0.is_ok() { "read" } else { "refused" });
            if attribution_bridge::clients::amazon::page::parse(&text).is_some() {
                tally.saw("read without a Value");
            }
            prop_assert_eq!(&read.0, &read.1, "{}", text);
            prop_assert_eq!(&by_value, &by_text, "{}", text);
            // The cursor the sync guesses from the text, to fetch the next page while this one
            // is read, is the reader's wherever the text names one `cursorId`.
            if let Ok((_, cursor)) = &read.1
                && text.matches("\"cursorId\"").count() == 1
            {
                tally.saw("cursor guessed");
                let hint = attribution_bridge::clients::amazon::page::cursor_hint(&text);
                prop_assert_eq!(&hint, cursor, "{}", text);
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_amazon_wire_types_and_money_text() {
    let shapes = prop_oneof![
        Just(
            json!([{"profileId": 1, "countryCode": "US", "currencyCode": "USD", "timezone": "America/Los_Angeles",
            "accountInfo": {"marketplaceStringId": "ATVPDKIKX0DER", "id": "A1", "type": "seller"}}])
        ),
        Just(json!({"advertisers": [{"advertiserId": 1964981050701i64, "advertiserName": "L"}]})),
        Just(json!({"publishers": [{"id": "12", "name": "Email - Other", "macroEnabled": true}]})),
        Just(json!({"advertiserAttributionTagMap": {"A1": {"12": "?maas=x"}}})),
        Just(json!({"code": "400", "details": "bad"})),
    ];
    let doc = prop_oneof![
        3 => (shapes, mutations(4)).prop_map(|(v, c)| apply(v, &c)),
        1 => any_json(),
    ];
    run(
        "amazon wire types and money text",
        Kind::Parser,
        1024,
        (doc, hostile_string(), 0u32..=3),
        |(doc, text, exponent), tally| {
            no_panic(tally, || {
                let _ = serde_json::from_value::<Vec<wire::Profile>>(doc.clone());
                let _ = wire::advertisers(doc.clone());
                let _ = wire::publishers(doc.clone());
                let _ = wire::tag_for(&doc, "A1", "12");
                let _ = wire::error_detail(&doc.to_string());
                let _ = wire::error_detail(&text);
                let _ = to_minor(&text, exponent);
                let _ = to_count(&text);
            })?;
            Ok(())
        },
    );
}
