//! Hostile inputs: arbitrary JSON, valid documents mangled field by field (absent, null, numbers
//! as strings and strings as numbers, huge and negative numbers, unicode, deep nesting), and text
//! truncated or spliced.
use proptest::{prelude::*, sample::Index};
use serde_json::{Map, Number, Value, json};

/// Text that looks like a number, or nearly: what a lenient reader must not take for one.
pub fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][-+]?[0-9]{1,12})?",
        Just("NaN".to_owned()),
        Just("Infinity".to_owned()),
        Just("-0".to_owned()),
        Just("1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("79228162514264337593543950336".to_owned()),
        Just("99999999999999999999999999999999999999".to_owned()),
        Just("0x1F".to_owned()),
        Just("1_000".to_owned()),
        Just("1,5".to_owned()),
        Just(" 12 ".to_owned()),
        Just("１２".to_owned()),
        Just("٣".to_owned()),
        Just("12abc".to_owned()),
    ]
}

/// Strings of every kind: any characters (controls and NUL included), numbers as text, blanks,
/// the markup and separators parsers trip on, and a long one.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        3 => numberish(),
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("st_1\u{0}".to_owned()),
        1 => Just("\u{202e}evil\u{200b}\u{feff}".to_owned()),
        1 => Just("😀🏳️‍🌈ü".to_owned()),
        1 => Just("<script>alert(1)</script>".to_owned()),
        1 => Just("=cmd|' /C calc'!A0".to_owned()),
        1 => Just("javascript:alert(1)".to_owned()),
        1 => Just("http://127.0.0.1:1/".to_owned()),
        1 => Just("https://[::1]/".to_owned()),
        1 => Just("%00%ZZ%FF".to_owned()),
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Numbers of every kind a JSON document can carry: zero, negative, huge, fractional, tiny.
pub fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(1.7976931348623157e308)),
        Just(json!(5e-324)),
        Just(json!(-0.0)),
    ]
}

/// A JSON scalar.
pub fn hostile_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ]
}

/// Any JSON value, nested a few levels.
pub fn any_json() -> impl Strategy<Value = Value> {
    hostile_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object key: sometimes one a parser looks for.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => proptest::sample::select(vec![
            "type", "data", "store", "id", "store_id", "affiliate", "program", "access_token",
            "api_url", "default_commission", "value", "name", "url", "currency", "reports",
            "cursorId", "size", "date", "attributedSales14d", "affiliates", "orders", "order",
            "number", "total", "commission", "status",
        ])
        .prop_map(str::to_owned),
    ]
}

/// `n` arrays (or objects) inside each other: deeper than the parser's recursion limit too.
pub fn deep_nesting() -> impl Strategy<Value = Vec<u8>> {
    (1usize..2_000, any::<bool>()).prop_map(|(depth, arrays)| {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        let mut text = open.repeat(depth);
        text.push('1');
        text.push_str(&close.repeat(depth));
        text.into_bytes()
    })
}

/// One change to one place of a document.
#[derive(Debug, Clone)]
pub enum Mutation {
    Remove,
    Replace(Value),
    /// A number as its text, a numeric string as a number, anything else as a string.
    FlipKind,
    WrapInArray,
    Nest(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Remove),
        4 => hostile_scalar().prop_map(Mutation::Replace),
        1 => any_json().prop_map(Mutation::Replace),
        3 => Just(Mutation::FlipKind),
        1 => Just(Mutation::WrapInArray),
        1 => (1usize..200).prop_map(Mutation::Nest),
    ]
}

/// Up to `max` mutations, each at a place chosen among the document's places at that time.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<(Index, Mutation)>> {
    proptest::collection::vec((any::<Index>(), mutation()), 0..=max)
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// Every place in `v`, the root first.
fn places(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                here.push(Step::Key(k.clone()));
                places(child, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                here.push(Step::At(i));
                places(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn flip(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => serde_json::from_str::<Number>(s.trim())
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(format!("{s}!"))),
        other => Value::String(other.to_string()),
    }
}

/// `doc` with the mutations applied in order.
pub fn apply(mut doc: Value, changes: &[(Index, Mutation)]) -> Value {
    for (index, change) in changes {
        let mut all = Vec::new();
        places(&doc, &mut Vec::new(), &mut all);
        let path = index.get(&all).clone();
        let Some((last, parent_path)) = path.split_last() else {
            doc = match change {
                Mutation::Remove => Value::Null,
                other => changed(&doc, other),
            };
            continue;
        };
        let mut parent = &mut doc;
        for step in parent_path {
            parent = match step {
                Step::Key(k) => &mut parent[k.as_str()],
                Step::At(i) => &mut parent[*i],
            };
        }
        match (parent, last, change) {
            (Value::Object(map), Step::Key(k), Mutation::Remove) => {
                map.remove(k);
            }
            (Value::Array(items), Step::At(i), Mutation::Remove) => {
                items.remove(*i);
            }
            (Value::Object(map), Step::Key(k), other) => {
                let new = changed(&map[k], other);
                map.insert(k.clone(), new);
            }
            (Value::Array(items), Step::At(i), other) => {
                items[*i] = changed(&items[*i], other);
            }
            _ => {}
        }
    }
    doc
}

fn changed(v: &Value, change: &Mutation) -> Value {
    match change {
        Mutation::Remove => Value::Null,
        Mutation::Replace(new) => new.clone(),
        Mutation::FlipKind => flip(v),
        Mutation::WrapInArray => Value::Array(vec![v.clone()]),
        Mutation::Nest(depth) => (0..*depth).fold(v.clone(), |acc, _| Value::Array(vec![acc])),
    }
}

/// What happens to the document's text on the wire.
#[derive(Debug, Clone)]
pub enum Wire {
    Intact,
    /// Cut at this share of its length.
    Truncated(Index),
    /// One byte replaced.
    Spliced(Index, u8),
    /// A key of the top level sent twice, the second time with another value.
    DuplicateKey(Value),
}

pub fn wire() -> impl Strategy<Value = Wire> {
    prop_oneof![
        6 => Just(Wire::Intact),
        2 => any::<Index>().prop_map(Wire::Truncated),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Wire::Spliced(i, b)),
        1 => hostile_scalar().prop_map(Wire::DuplicateKey),
    ]
}

/// The document's bytes after the wire did its part.
pub fn encode(doc: &Value, wire: &Wire) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(doc).expect("a Value serializes");
    match wire {
        Wire::Intact => {}
        Wire::Truncated(at) => {
            let len = at.index(bytes.len().max(1));
            bytes.truncate(len);
        }
        Wire::Spliced(at, b) => {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
        }
        Wire::DuplicateKey(value) => {
            if let Some(first) = doc.as_object().and_then(|m| m.keys().next())
                && bytes.last() == Some(&b'}')
            {
                bytes.pop();
                let extra = format!(",{}:{value}}}", Value::String(first.clone()));
                bytes.extend_from_slice(extra.as_bytes());
            }
        }
    }
    bytes
}

/// Every event the platform sends, valid, about `store_id`.
pub fn events(store_id: &str) -> Vec<Value> {
    let aff = |t: &str| {
        json!({"type": t, "timestamp": "2026-11-20T10:00:00Z", "data": {"store_id": store_id,
            "affiliate": {"id": 42, "name": "Alice", "ref_code": "alice", "status": "approved"}}})
    };
    vec![
        json!({"type": "app.installed", "timestamp": "2026-11-20T10:00:00Z", "data": {
            "store": {"id": store_id, "name": "Acme", "url": "https://acme.example", "currency": "USD"},
            "program": {"access_token": "gpat_x", "api_url": "https://api.goaffpro.com/v1",
                "default_commission": {"type": "percentage", "value": "10"}}}}),
        json!({"type": "app.uninstalled", "data": {"store": {"id": store_id}}}),
        json!({"type": "store.redact", "data": {"store": {"id": store_id}}}),
        aff("affiliate.created"),
        aff("affiliate.updated"),
        json!({"type": "affiliate.deleted", "data": {"store_id": store_id, "affiliate": {"id": 42}}}),
        json!({"type": "program.commission_updated", "data": {"store_id": store_id,
            "default_commission": {"type": "flat", "value": 2.5}}}),
        json!({"type": "order.created", "data": {"id": 1}}),
    ]
}

/// A webhook body: a platform event mangled, any JSON, deep nesting, or bytes.
pub fn webhook_body(store_id: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (proptest::sample::select(events(store_id)), mutations(4), wire())
            .prop_map(|(event, changes, w)| encode(&apply(event, &changes), &w)),
        1 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => deep_nesting(),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}
