//! The merchant pages in a real headless Chromium, driven over WebDriver (chromedriver).
//! Needs `chromium` and `chromium-driver` (Debian); `.ci/run` installs them and sets
//! REQUIRE_BROWSER=1 so that a missing browser fails there instead of skipping.
use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::json;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        let out = Command::new("which").arg(name).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    })
}

impl Browser {
    /// A fresh headless Chromium, or None (skip) when none is installed and none is required.
    pub async fn start() -> Option<Self> {
        let (Some(driver_bin), Some(chrome_bin)) = (
            find(&["chromedriver"]),
            find(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            assert!(
                std::env::var_os("REQUIRE_BROWSER").is_none(),
                "REQUIRE_BROWSER is set but chromium/chromedriver are not installed"
            );
            eprintln!("SKIPPED browser test: install chromium and chromium-driver to run it");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chrome_bin,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let caps: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(caps).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen; the process start is the only thing waited for.
        let mut last_err = None;
        for _ in 0..100 {
            let builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match builder {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver did not start: {last_err:?}");
    }

    /// Waits (bounded) until the element's text contains `needle`: a page after a form post.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..200 {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }

            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let page = self.client.source().await.unwrap_or_default();
        panic!("{css} never said {needle:?}; last: {last:?}; page: {page}");
    }

    /// The element the selector finds on the page; panics naming the selector if there is none.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
    }

    /// Clicks the element the selector finds.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// The text of the element the selector finds.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Looks at the page as a person would, on a laptop and on a 390 px wide phone: on the phone
    /// nothing may scroll sideways. With `SCREENSHOT_DIR` set, saves `{name}.png` and
    /// `{name}-phone.png` there (the README shows them).
    pub async fn looks_right(&self, name: &str) {
        let c = &self.client;
        let dir = std::env::var_os("SCREENSHOT_DIR").map(std::path::PathBuf::from);
        for (width, height, suffix) in [(1280, 900, ""), (390, 844, "-phone")] {
            c.set_window_size(width, height).await.unwrap();
            let fits = c
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth]",
                    vec![],
                )
                .await
                .unwrap();
            let (scroll, inner) = (fits[0].as_i64().unwrap(), fits[1].as_i64().unwrap());
            assert!(
                scroll <= inner,
                "{name} at {width} px scrolls sideways: {scroll} px of content in {inner} px"
            );
            if let Some(dir) = &dir {
                let png = c.screenshot().await.unwrap();
                std::fs::write(dir.join(format!("{name}{suffix}.png")), png).unwrap();
            }
        }
        c.set_window_size(1280, 900).await.unwrap();
    }

    /// Follows the link the selector finds, and waits for the next page to show `css`.
    pub async fn follow(&self, link: &str, css: &str) {
        self.click(link).await;
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} after following {link}: {e}"));
    }

    /// The path of the page the browser shows.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }
}

use crate::helpers::*;

#[tokio::test]
async fn a_merchant_opens_the_setup_page_from_the_load_link() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = app_with_store("st_1001", "gpat_browser", &[(1, "Alice"), (2, "Bob")]).await;
    app.install("st_other", "gpat_other").await;

    let c = &browser.client;
    c.goto(&app.load_link("st_1001", app.now())).await.unwrap();
    assert_eq!(browser.path().await, "/app/stores/st_1001");
    assert_eq!(browser.text("h1").await, "Store st_1001");
    assert_eq!(browser.text("#install-state").await, "Installed");
    assert_eq!(browser.text("#program-state").await, "Connected");
    assert_eq!(browser.text("#affiliate-count").await, "2");
    c.find(Locator::Css("#nav-affiliates"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(browser.path().await, "/app/stores/st_1001/affiliates");
    let rows = c
        .find_all(Locator::Css("#affiliates tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // The session cookie is HttpOnly: page scripts cannot read it.
    let cookies = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(cookies, json!(""));

    // Another store's page, typed into the address bar, is not found.
    c.goto(&app.url("/app/stores/st_other")).await.unwrap();
    assert_eq!(browser.text("h1").await, "Not found");
    browser.client.clone().close().await.unwrap();
}
