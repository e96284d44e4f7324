//! The app's stylesheet and its one script, compiled into the binary (no files to deploy) and
//! served from `/static/{file}`.
use actix_web::{HttpResponse, http::header, web};

/// (name, content type, body).
const FILES: [(&str, &str, &str); 2] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
];

/// `GET /static/{file}`: one of [`FILES`], cached for an hour; anything else is a 404.
pub async fn serve(file: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(name, ..)| *name == file.as_str()) {
        Some((_, kind, body)) => HttpResponse::Ok()
            .content_type(*kind)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(*body),
        None => HttpResponse::NotFound().finish(),
    }
}
