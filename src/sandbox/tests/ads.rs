use serde_json::{Value, json};

use super::{Harness, ad_groups};

#[actix_web::test]
async fn profiles_need_a_token_and_the_client_id_and_include_a_legacy_profile() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let no_client = h
        .http
        .get(h.url("/sandbox/amazon/api/v2/profiles"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(no_client.status(), 401);
    let body: Value = no_client.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["details"].as_str()),
        (Some("401"), Some("Authentication failed"))
    );
    assert!(body["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(
        h.api("/v2/profiles", "Atza|forged", None).await.status(),
        401
    );

    let profiles: Vec<Value> = h.api_json("/v2/profiles", &access, None).await;
    assert_eq!(profiles.len(), 2);
    let seller = profiles
        .iter()
        .find(|p| p["accountInfo"]["type"] == "seller")
        .unwrap();
    assert_eq!(
        seller["profileId"].as_i64().unwrap().to_string(),
        h.profile()
    );
    assert_eq!(h.profile().len(), 16);
    assert_eq!(seller["timezone"], "America/Los_Angeles");
    assert_eq!(
        seller["accountInfo"]["marketplaceStringId"],
        "ATVPDKIKX0DER"
    );
    assert_eq!(seller["accountInfo"]["validPaymentMethod"], true);
    assert!(seller["accountInfo"].get("subType").is_none());
    let legacy = profiles
        .iter()
        .find(|p| p["accountInfo"]["subType"] == "AMAZON_ATTRIBUTION");
    assert!(
        legacy.is_some(),
        "the legacy profile the app must drop is there"
    );
}

#[actix_web::test]
async fn attribution_calls_need_a_known_scope() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let missing = h.api("/attribution/advertisers", &access, None).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"code": "400", "details": "Scope header is missing"})
    );
    assert_eq!(
        h.api(
            "/attribution/advertisers",
            &access,
            Some("1234567890123456")
        )
        .await
        .status(),
        401
    );

    let legacy = h.sandbox.ids().legacy_profile_id.to_string();
    let refused = h
        .api("/attribution/advertisers", &access, Some(&legacy))
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "This profileID is not authorized to use Amazon Attribution"})
    );

    let ok: Value = h
        .api_json("/attribution/advertisers", &access, Some(&h.profile()))
        .await;
    assert_eq!(
        ok,
        json!({"advertisers": [{"advertiserId": h.advertiser(), "advertiserName": "Sandbox Brand"}]})
    );
    assert_eq!(h.advertiser().len(), 13);
}

#[actix_web::test]
async fn publishers_list_email_other_as_a_template_publisher() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let body: Value = h
        .api_json("/attribution/publishers", &access, Some(&h.profile()))
        .await;
    let list = body["publishers"].as_array().unwrap();
    assert_eq!(
        list[0],
        json!({"id": "1", "name": "Google Ads", "macroEnabled": true})
    );
    assert_eq!(
        list[11],
        json!({"id": "12", "name": "Email - Other", "macroEnabled": false})
    );
    assert!(list.len() >= 13);
}

#[actix_web::test]
async fn the_template_tag_map_is_bare_and_refuses_macro_publishers() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let scope = h.profile();
    let adv = h.advertiser();
    let get = |q: String| {
        let (h, access, scope) = (&h, access.clone(), scope.clone());
        async move {
            h.api(
                &format!("/attribution/tags/nonMacroTemplateTag?{q}"),
                &access,
                Some(&scope),
            )
            .await
        }
    };
    let body: Value = get(format!("publisherIds=12&advertiserIds={adv}"))
        .await
        .json()
        .await
        .unwrap();
    let expected = format!(
        "?maas=maas_adg_api_{adv}_static_12_73&ref_=aa_maas&tag=maas&aa_campaignid={{insertCampaign}}&aa_adgroupid={{insertAdGroupId}}&aa_creativeid={{insertCreativeId}}"
    );
    assert_eq!(body, json!({ adv.clone(): { "12": expected } }));

    let both: Value = get(format!(
        "publisherIds=11&publisherIds=12&advertiserIds={adv}"
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        both[&adv].as_object().unwrap().len(),
        2,
        "repeated parameters"
    );
    let csv: Value = get("publisherIds=11,12".into()).await.json().await.unwrap();
    assert_eq!(
        csv, both,
        "comma-separated, and all advertisers when none is named"
    );

    for bad in [
        "publisherIds=1",
        "publisherIds=99",
        "publisherIds=12&advertiserIds=42",
    ] {
        let resp = get(bad.into()).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "400");
    }
    let macro_tag: Value = h
        .api_json(
            "/attribution/tags/macroTag?publisherIds=2",
            &access,
            Some(&scope),
        )
        .await;
    let tag = macro_tag[&adv]["2"].as_str().unwrap();
    assert!(tag.starts_with(&format!("?maas=maas_adg_api_{adv}_macro_2_73&ref_=aa_maas&tag=maas&aa_campaignid={{{{campaign.id}}}}")), "{tag}");
    assert_eq!(
        h.api(
            "/attribution/tags/macroTag?publisherIds=12",
            &access,
            Some(&scope)
        )
        .await
        .status(),
        400
    );
}

#[actix_web::test]
async fn clicks_register_links_only_once_measurement_is_on_and_values_are_clean() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let adv = h.advertiser();
    let link = |adgroup: &str| {
        format!(
            "maas=maas_adg_api_{adv}_static_12_73&ref_=aa_maas&tag=maas&aa_campaignid=c77&aa_adgroupid={adgroup}&aa_creativeid=home"
        )
    };
    let before = h.click(&link("a1")).await;
    assert_eq!(
        before.status(),
        400,
        "no tag was fetched: Amazon does not measure yet"
    );

    h.click_links(&access, "c1", &ad_groups(2)).await;
    let landing = h.click(&link("a1")).await;
    assert_eq!(landing.status(), 200);
    let page = landing.text().await.unwrap();
    assert!(page.contains("sandbox-banner") && page.contains("where the shopper lands"));
    let again = h.click(&link("a1")).await;
    assert_eq!(again.status(), 200);
    let seen = h.sandbox.read(|s| {
        s.clicks
            .iter()
            .filter(|c| c.campaign_id == "c77")
            .map(|c| c.seen)
            .collect::<Vec<_>>()
    });
    assert_eq!(seen, vec![2], "one link, seen twice");

    let bad = h.click(&link("a%2F1")).await;
    assert_eq!(bad.status(), 400, "a / in an ad group id is not recorded");
    let unfilled = h.click(&link("{insertAdGroupId}")).await;
    assert_eq!(unfilled.status(), 400);

    let links = json!({"links": [format!("https://www.amazon.com/?{}", link("a1")), format!("https://www.amazon.com/dp/B0X?{}", link("a2"))]});
    let resp = h.post_json("/sandbox/amazon/clicks", &links).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"registered": 2, "new": 1})
    );
    assert_eq!(h.sandbox.read(|s| s.clicks.len()), 4);
}
