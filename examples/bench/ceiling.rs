//! The intake's ceiling: a bare actix-web handler that does what the app's intake must (verify the
//! Standard Webhooks signature, parse the JSON, insert the inbox row and upsert the affiliate,
//! durably, on a database opened exactly as the app opens it) and nothing else: no dedupe answer,
//! no store check, no metrics, no logs. One transaction per delivery, or committed in groups by
//! one writer, a group's rows in two multi-row statements (as the app writes a group's affiliates
//! of stores not connected to Amazon).
use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use attribution_bridge::{
    config::DatabaseSettings,
    db,
    webhooks::verify::{SignedHeaders, Verifier},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

type Row = (String, String, i64, String);
type Writer = mpsc::Sender<(Row, oneshot::Sender<Result<(), DbErr>>)>;

struct Ceiling {
    db: DatabaseConnection,
    verifier: Verifier,
    writer: Option<Writer>,
}

async fn insert(
    conn: &impl ConnectionTrait,
    (id, store, affiliate, name): &Row,
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let p = |i| {
        if backend == sea_orm::DbBackend::Postgres {
            format!("${i}")
        } else {
            "?".into()
        }
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!("INSERT INTO ceiling_inbox (webhook_id, store_id) VALUES ({}, {}) ON CONFLICT DO NOTHING", p(1), p(2)),
        [id.clone().into(), store.clone().into()],
    ))
    .await?;
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO ceiling_affiliates (store_id, affiliate_id, name) VALUES ({}, {}, {}) \
             ON CONFLICT (store_id, affiliate_id) DO UPDATE SET name = excluded.name",
            p(1),
            p(2),
            p(3)
        ),
        [
            store.clone().into(),
            (*affiliate).into(),
            name.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A group's rows: the inbox rows in one statement, the affiliates (the later of one key) in
/// another.
async fn insert_group(conn: &impl ConnectionTrait, rows: &[&Row]) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let values: Vec<sea_orm::Value> = rows
        .iter()
        .flat_map(|(id, store, ..)| [id.clone().into(), store.clone().into()])
        .collect();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO ceiling_inbox (webhook_id, store_id) VALUES {} ON CONFLICT DO NOTHING",
            tuples(backend, rows.len(), 2)
        ),
        values,
    ))
    .await?;
    let last: std::collections::BTreeMap<_, _> = rows
        .iter()
        .map(|(_, store, affiliate, name)| ((store, *affiliate), name))
        .collect();
    let count = last.len();
    let values: Vec<sea_orm::Value> = last
        .into_iter()
        .flat_map(|((store, affiliate), name)| {
            [store.clone().into(), affiliate.into(), name.clone().into()]
        })
        .collect();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO ceiling_affiliates (store_id, affiliate_id, name) VALUES {} \
             ON CONFLICT (store_id, affiliate_id) DO UPDATE SET name = excluded.name",
            tuples(backend, count, 3)
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// `(?, ?), (?, ?), …` (`$1, $2, …` on PostgreSQL): `rows` tuples of `width` placeholders.
fn tuples(backend: sea_orm::DbBackend, rows: usize, width: usize) -> String {
    let mut n = 0;
    let mut p = || {
        n += 1;
        if backend == sea_orm::DbBackend::Postgres {
            format!("${n}")
        } else {
            "?".into()
        }
    };
    (0..rows)
        .map(|_| {
            format!(
                "({})",
                (0..width).map(|_| p()).collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn hook(req: HttpRequest, body: web::Bytes, state: web::Data<Ceiling>) -> HttpResponse {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let headers = SignedHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    if state
        .verifier
        .verify_webhook(headers, &body, chrono::Utc::now().timestamp())
        .is_err()
    {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let data = &event["data"];
    let row = (
        headers.id.unwrap_or_default().to_owned(),
        data["store_id"].as_str().unwrap_or_default().to_owned(),
        data["affiliate"]["id"].as_i64().unwrap_or_default(),
        data["affiliate"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let done = match &state.writer {
        Some(writer) => {
            let (answer, answered) = oneshot::channel();
            match writer.send((row, answer)).await {
                Ok(()) => answered
                    .await
                    .unwrap_or(Err(DbErr::Custom("writer gone".into()))),
                Err(_) => Err(DbErr::Custom("writer gone".into())),
            }
        }
        None => {
            async {
                let txn = state.db.begin().await?;
                insert(&txn, &row).await?;
                txn.commit().await
            }
            .await
        }
    };
    match done {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "processed"})),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Commits what waits, up to 256 at a time, in one transaction each.
async fn write(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<(Row, oneshot::Sender<Result<(), DbErr>>)>,
) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let done: Result<(), DbErr> = async {
            let txn = db.begin().await?;
            let rows: Vec<&Row> = batch.iter().map(|(row, _)| row).collect();
            insert_group(&txn, &rows).await?;
            txn.commit().await
        }
        .await;
        for (_, answer) in batch.drain(..) {
            let _ = answer.send(
                done.as_ref()
                    .map(|_| ())
                    .map_err(|e| DbErr::Custom(e.to_string())),
            );
        }
    }
}

/// Starts the ceiling server on its own database `database`; returns its webhook URL.
pub async fn start(database: &DatabaseSettings, secret: &str, grouped: bool) -> String {
    let db = db::connect(database).await.expect("the ceiling's database");
    for sql in [
        "CREATE TABLE IF NOT EXISTS ceiling_inbox (webhook_id TEXT PRIMARY KEY, store_id TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ceiling_affiliates (store_id TEXT NOT NULL, affiliate_id BIGINT NOT NULL, \
         name TEXT NOT NULL, PRIMARY KEY (store_id, affiliate_id))",
    ] {
        db.execute_unprepared(sql)
            .await
            .expect("the ceiling's tables");
    }
    let writer = grouped.then(|| {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(write(db.clone(), rx));
        tx
    });
    let state = web::Data::new(Ceiling {
        db,
        verifier: Verifier::new(&[secret.to_owned().into()], 300).expect("a verifier"),
        writer,
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/hook", web::post().to(hook))
    })
    .listen(listener)
    .expect("listening")
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/hook")
}
