//! The HTTP request latency histogram and the middleware that fills it. A request is labelled by
//! the pattern of the route that matched (`/app/stores/{store_id}/ledger`), never by its path, so
//! no store id or order number becomes a label value; one that matched none is `unmatched`.
use std::time::Instant;

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, StatusCode},
    middleware::Next,
    web,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::histogram::{Histogram, exponential_buckets},
};

use super::Metrics;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The labels of one request: its route's pattern, its method and its status class (`2xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

impl RequestLabels {
    /// `pattern` is the matched route's (`None`: no route matched). Methods beyond the standard
    /// ones read `other`, so that a client cannot mint label values.
    pub fn new(pattern: Option<String>, method: &Method, status: StatusCode) -> Self {
        let method = match *method {
            Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS => method.as_str(),
            _ => "other",
        };
        Self {
            route: pattern.unwrap_or_else(|| UNMATCHED.to_owned()),
            method: method.to_owned(),
            status: format!("{}xx", status.as_u16() / 100),
        }
    }
}

/// A fresh histogram: 5 ms to about 20 s, doubling.
pub fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// The middleware (`actix_web::middleware::from_fn`): times each request to its answer and
/// counts it under its [`RequestLabels`]. It needs `web::Data<Metrics>` among the app's data.
pub async fn observe(
    metrics: web::Data<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    // Before routing this reads the pattern from the path alone; the answer's own request knows
    // the route that actually served it, and is preferred.
    let pattern = req.match_pattern();
    let answer = next.call(req).await;
    let labels = match &answer {
        Ok(res) => RequestLabels::new(
            res.request().match_pattern().or(pattern),
            &method,
            res.status(),
        ),
        Err(e) => RequestLabels::new(pattern, &method, e.as_response_error().status_code()),
    };
    metrics
        .requests
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    answer
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, middleware::from_fn, test as web_test};
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn labels_name_the_pattern_the_method_and_the_status_class() {
        let l = RequestLabels::new(
            Some("/app/stores/{store_id}/ledger".into()),
            &Method::GET,
            StatusCode::NOT_FOUND,
        );
        assert_eq!(
            (l.route.as_str(), l.method.as_str(), l.status.as_str()),
            ("/app/stores/{store_id}/ledger", "GET", "4xx")
        );
        let odd = Method::from_bytes(b"BREW").unwrap();
        let l = RequestLabels::new(None, &odd, StatusCode::SEE_OTHER);
        assert_eq!(
            (l.route.as_str(), l.method.as_str(), l.status.as_str()),
            (UNMATCHED, "other", "3xx")
        );
    }

    #[actix_web::test]
    async fn a_request_is_counted_under_its_pattern_and_an_unknown_path_as_unmatched() {
        let metrics = web::Data::new(Metrics::default());
        let app = web_test::init_service(
            App::new()
                .wrap(from_fn(observe))
                .app_data(metrics.clone())
                .service(web::scope("/app").route(
                    "/stores/{store_id}",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )),
        )
        .await;
        for path in ["/app/stores/st_secret", "/nowhere/st_other"] {
            let req = web_test::TestRequest::get().uri(path).to_request();
            web_test::call_service(&app, req).await;
        }
        let mut text = String::new();
        encode(&mut text, &metrics.registry).unwrap();
        for series in [
            r#"_count{route="/app/stores/{store_id}",method="GET",status="2xx"} 1"#,
            r#"_count{route="unmatched",method="GET",status="4xx"} 1"#,
        ] {
            let line = format!("attribution_bridge_http_request_duration_seconds{series}");
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(
            !text.contains("st_secret") && !text.contains("st_other"),
            "{text}"
        );
    }
}
