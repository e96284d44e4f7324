use serde_json::{Value, json};

use super::{Harness, keys_of};

/// Installs a demo store through the control room; returns (store id, program token, api url).
pub async fn install(h: &Harness) -> (String, String, String) {
    let resp = h.post("/sandbox/demo-stores").await;
    assert_eq!(resp.status(), 303);
    let delivery = h.rx.deliveries.lock().unwrap().last().cloned().unwrap();
    let event: Value = serde_json::from_str(&delivery.body).unwrap();
    let s = |p: &str| event.pointer(p).unwrap().as_str().unwrap().to_owned();
    (
        s("/data/store/id"),
        s("/data/program/access_token"),
        s("/data/program/api_url"),
    )
}

fn order(number: &str, affiliate_id: i64) -> Value {
    json!({"number": number, "affiliate_id": affiliate_id, "total": 191.96, "subtotal": 191.96,
           "commission": 19.2, "currency": "USD", "date": "2026-11-18", "status": "approved",
           "source": "amazon_attribution", "meta": {"clicks": 30, "purchases": 3, "units": 4}})
}

#[actix_web::test]
async fn the_program_api_answers_only_to_a_store_token_and_pages_affiliates() {
    let h = Harness::start().await;
    let (_, token, api) = install(&h).await;
    let (_, other_token, _) = install(&h).await;
    let affiliates = format!("{api}/admin/affiliates?fields=id,name,ref_code,status");
    assert_eq!(
        h.program_get(&affiliates, "gpat_wrong").await,
        (401, json!({"error": "unauthorized"}))
    );
    let (status, body) = h
        .program_get(&format!("{api}/admin/affiliates?fields=id"), "")
        .await;
    assert_eq!((status, body), (401, json!({"error": "unauthorized"})));

    let (status, all) = h.program_get(&affiliates, &token).await;
    assert_eq!(status, 200);
    let all = all["affiliates"].as_array().unwrap().clone();
    assert_eq!(all.len(), 12);
    assert_eq!(keys_of(&all[0]), vec!["id", "name", "ref_code", "status"]);
    assert!(
        all.iter()
            .all(|a| a["status"] == "approved" && a["id"].is_i64())
    );

    let (_, page) = h
        .program_get(&format!("{affiliates}&limit=5&offset=10"), &token)
        .await;
    assert_eq!(
        page["affiliates"].as_array().unwrap(),
        &all[10..12].to_vec()
    );
    let (_, bare) = h
        .program_get(&format!("{api}/admin/affiliates"), &token)
        .await;
    assert_eq!(
        bare["affiliates"].as_array().unwrap(),
        &vec![json!({}); 12],
        "no fields, empty objects"
    );

    let (_, other) = h.program_get(&affiliates, &other_token).await;
    assert_ne!(
        other["affiliates"][0]["id"], all[0]["id"],
        "each store has its own roster"
    );
}

#[actix_web::test]
async fn orders_are_created_once_found_by_number_and_updated_with_history() {
    let h = Harness::start().await;
    let (store, token, api) = install(&h).await;
    let (_, other_token, _) = install(&h).await;
    let (_, roster) = h
        .program_get(&format!("{api}/admin/affiliates?fields=id"), &token)
        .await;
    let affiliate = roster["affiliates"][0]["id"].as_i64().unwrap();
    let orders = format!("{api}/admin/orders");
    let number = format!("AMZ-c1-a{affiliate}-20261118");

    let (status, created) = h
        .program_post(&orders, &token, order(&number, affiliate))
        .await;
    assert_eq!(status, 200, "{created}");
    let o = &created["order"];
    assert!(o["id"].is_i64());
    assert_eq!(
        (
            o["number"].as_str(),
            o["total"].as_f64(),
            o["commission"].as_f64(),
            o["status"].as_str()
        ),
        (
            Some(number.as_str()),
            Some(191.96),
            Some(19.2),
            Some("approved")
        )
    );
    let id = o["id"].as_i64().unwrap();

    let duplicate = h
        .program_post(&orders, &token, order(&number, affiliate))
        .await;
    assert_eq!(
        duplicate,
        (409, json!({"error": "order number already exists"}))
    );
    let mut three_decimals = order("AMZ-other", affiliate);
    three_decimals["total"] = json!(191.965);
    assert_eq!(h.program_post(&orders, &token, three_decimals).await.0, 400);
    let mut text_amount = order("AMZ-other", affiliate);
    text_amount["commission"] = json!("19.20");
    assert_eq!(h.program_post(&orders, &token, text_amount).await.0, 400);

    let find = format!("{orders}?number={number}&fields=id,number,total,commission,status");
    let (_, found) = h.program_get(&find, &token).await;
    assert_eq!(
        found,
        json!({"orders": [{"id": id, "number": number, "total": 191.96, "commission": 19.2, "status": "approved"}]})
    );
    let (_, none) = h.program_get(&find, &other_token).await;
    assert_eq!(
        none,
        json!({"orders": []}),
        "orders are scoped to the store"
    );

    let patch = format!("{orders}/{id}");
    let (status, updated) = h
        .program_patch(&patch, &token, json!({"total": 180, "commission": 18.0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            updated["order"]["total"].as_f64(),
            updated["order"]["commission"].as_f64()
        ),
        (Some(180.0), Some(18.0))
    );
    h.program_patch(
        &patch,
        &token,
        json!({"status": "rejected", "commission": 0}),
    )
    .await;
    h.program_patch(&patch, &token, json!({"status": "rejected"}))
        .await;
    assert_eq!(
        h.program_patch(&patch, &other_token, json!({"status": "approved"}))
            .await
            .0,
        404
    );
    assert_eq!(
        h.program_patch(&format!("{orders}/999999"), &token, json!({"total": 1}))
            .await
            .0,
        404
    );

    let history = h.sandbox.read(|s| {
        s.orders
            .iter()
            .find(|o| o.id == id)
            .unwrap()
            .history
            .clone()
    });
    let changes: Vec<Vec<(String, String, String)>> = history
        .iter()
        .map(|u| {
            u.changes
                .iter()
                .map(|c| (c.field.clone(), c.from.clone(), c.to.clone()))
                .collect()
        })
        .collect();
    let t = |f: &str, a: &str, b: &str| (f.to_owned(), a.to_owned(), b.to_owned());
    assert_eq!(
        changes,
        vec![
            vec![
                t("total", "191.96", "180.00"),
                t("commission", "19.20", "18.00")
            ],
            vec![
                t("commission", "18.00", "0.00"),
                t("status", "approved", "rejected")
            ],
            vec![],
        ]
    );

    let page = h
        .get(&format!("/sandbox/program/orders?store={store}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("sandbox-banner") && page.contains(&number));
    assert!(page.contains("commission 19.20 → 18.00") && page.contains("no change"));
}
