//! Query strings and form bodies, read as a lenient server reads them.
use std::collections::HashMap;

/// First value of each query or form parameter.
pub(super) fn first_params(raw: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}
