//! The Amazon client against doubles of each quirk and failure of the reference (§3–4).
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use attribution_bridge::{
    clients::amazon::AmazonApp, clients::amazon::Region, clients::amazon::ads::AmazonError,
    config::Settings,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

/// Answers from a script, in order; the last one repeats.
#[derive(Clone)]
struct Script(Arc<Mutex<VecDeque<ResponseTemplate>>>);

impl Script {
    fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self(Arc::new(Mutex::new(answers.into())))
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut q = self.0.lock().unwrap();
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front().unwrap().clone()
        }
    }
}

async fn client(answers: Vec<ResponseTemplate>, extra: &[(&str, &str)]) -> (AmazonApp, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Script::new(answers))
        .mount(&server)
        .await;
    let mut env = vec![
        (
            "APP__AMAZON__CLIENT_ID".to_owned(),
            "amzn1.application-oa2-client.test".to_owned(),
        ),
        ("APP__AMAZON__CLIENT_SECRET".to_owned(), "s".to_owned()),
        ("APP__SANDBOX__ENABLED".to_owned(), "false".to_owned()),
        (
            "APP__PLATFORM__WEBHOOK_SECRETS".to_owned(),
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(),
        ),
        ("APP__AMAZON__API_URL".to_owned(), server.uri()),
        ("APP__AMAZON__RETRY_BASE_MS".to_owned(), "1".to_owned()),
        ("APP__AMAZON__RETRY_CAP_MS".to_owned(), "30".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let settings = Settings::from_sources(None, env).unwrap();
    (
        AmazonApp::from_settings(&settings.amazon, callback(), None).unwrap(),
        server,
    )
}

/// Where Amazon would send the merchant back; unused by these calls.
fn callback() -> url::Url {
    url::Url::parse("http://127.0.0.1:8080/oauth/amazon/callback").unwrap()
}

fn ok_profiles() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!([{"profileId": 1, "countryCode": "US"}]))
}

fn token() -> SecretString {
    SecretString::from("Atza|t")
}

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn throttling_with_or_without_retry_after_is_retried() {
    let (app, server) = client(
        vec![
            ResponseTemplate::new(429).insert_header("Retry-After", "1"),
            ResponseTemplate::new(429),
            ok_profiles(),
        ],
        // A cap above the 1 s asked: the retry waits it out (beyond the cap it would give up).
        &[("APP__AMAZON__RETRY_CAP_MS", "2000")],
    )
    .await;
    assert_eq!(
        app.ads(Region::Na).profiles(&token()).await.unwrap().len(),
        1
    );
    assert_eq!(calls(&server).await, 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed_or_give_up_within_the_bound() {
    let (app, server) = client(
        vec![
            ResponseTemplate::new(500),
            ResponseTemplate::new(502),
            ok_profiles(),
        ],
        &[],
    )
    .await;
    assert!(app.ads(Region::Na).profiles(&token()).await.is_ok());
    assert_eq!(calls(&server).await, 3);

    let (app, server) = client(vec![ResponseTemplate::new(503)], &[]).await;
    let err = app.ads(Region::Na).profiles(&token()).await.unwrap_err();
    assert!(matches!(err, AmazonError::Server { status: 503 }), "{err}");
    assert_eq!(calls(&server).await, 4, "retry_attempts = 4 in all");
}

#[tokio::test]
async fn other_client_errors_are_typed_and_not_retried() {
    for (answer, check) in [
        (
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": "401", "details": "Authentication failed"})),
            "401",
        ),
        (
            ResponseTemplate::new(403)
                .set_body_json(json!({"code": "403", "details": "Forbidden"})),
            "403",
        ),
        (
            ResponseTemplate::new(400).set_body_json(
                json!({"message": "This profileID is not authorized to use Amazon Attribution"}),
            ),
            "not-enabled",
        ),
        (
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "400", "details": "Invalid advertiser identifier"})),
            "400",
        ),
    ] {
        let (app, server) = client(vec![answer], &[]).await;
        let err = app
            .ads(Region::Na)
            .advertisers(&token(), "1")
            .await
            .unwrap_err();
        match check {
            "401" => assert!(matches!(err, AmazonError::Unauthorized)),
            "403" | "not-enabled" => assert!(matches!(err, AmazonError::NotEnabled(_)), "{err}"),
            _ => assert!(
                matches!(&err, AmazonError::Rejected { status: 400, detail } if detail == "Invalid advertiser identifier"),
                "{err}"
            ),
        }
        assert_eq!(calls(&server).await, 1);
    }
}

#[tokio::test]
async fn a_slow_amazon_times_out() {
    let slow = ok_profiles().set_delay(std::time::Duration::from_millis(1500));
    let (app, _server) = client(
        vec![slow],
        &[
            ("APP__AMAZON__REQUEST_TIMEOUT_SECS", "1"),
            ("APP__AMAZON__RETRY_ATTEMPTS", "1"),
        ],
    )
    .await;
    let err = app.ads(Region::Na).profiles(&token()).await.unwrap_err();
    assert!(
        matches!(err, AmazonError::Transport(ref e) if e.is_timeout()),
        "{err}"
    );
}

#[tokio::test]
async fn every_documented_shape_is_read() {
    for body in [
        json!({"publishers": [{"id": "12", "name": "Email - Other", "macroEnabled": false}]}),
        json!({"publisher": [{"id": 12, "name": "Email - Other"}]}),
        json!([{"id": "12"}]),
    ] {
        let (app, _server) =
            client(vec![ResponseTemplate::new(200).set_body_json(body)], &[]).await;
        assert_eq!(
            app.ads(Region::Na).publishers(&token(), "1").await.unwrap()[0].id,
            "12"
        );
    }
    for body in [
        json!({"A1": {"12": "?maas=m&aa_campaignid={insertCampaign}"}}),
        json!({"advertiserAttributionTagMap": {"A1": {"12": "?maas=m&aa_campaignid={insertCampaign}"}}}),
    ] {
        let (app, _server) =
            client(vec![ResponseTemplate::new(200).set_body_json(body)], &[]).await;
        let tag = app
            .ads(Region::Na)
            .template_tag(&token(), "1", "A1", "12")
            .await
            .unwrap();
        assert!(tag.starts_with("?maas=m"));
    }
    let (app, _server) =
        client(
            vec![ResponseTemplate::new(200).set_body_json(
                json!({"advertisers": [{"advertiserId": null}, {"advertiserId": 77}]}),
            )],
            &[],
        )
        .await;
    let ads = app
        .ads(Region::Na)
        .advertisers(&token(), "1")
        .await
        .unwrap();
    assert_eq!(
        (
            ads[0].advertiser_id.as_deref(),
            ads[1].advertiser_id.as_deref()
        ),
        (None, Some("77"))
    );
}

#[tokio::test]
async fn regions_use_their_hosts_unless_overridden() {
    let settings = Settings::from_sources(
        None,
        [
            ("APP__SANDBOX__ENABLED".to_owned(), "false".to_owned()),
            (
                "APP__PLATFORM__WEBHOOK_SECRETS".to_owned(),
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(),
            ),
        ],
    )
    .unwrap();
    let app = AmazonApp::from_settings(&settings.amazon, callback(), None).unwrap();
    let eu = app.endpoints(Region::Eu);
    assert_eq!(eu.authorize.as_str(), "https://eu.account.amazon.com/ap/oa");
    assert_eq!(eu.token.as_str(), "https://api.amazon.co.uk/auth/o2/token");
    assert_eq!(eu.api.as_str(), "https://advertising-api-eu.amazon.com/");
    assert_eq!(
        app.endpoints(Region::Fe).api.as_str(),
        "https://advertising-api-fe.amazon.com/"
    );
}
