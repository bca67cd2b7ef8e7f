//! Headless Chromium driven through chromedriver (WebDriver), for tests that click through
//! the real web page. CI installs Debian's `chromium` and `chromium-driver`.

use super::{free_port, wait_for, TIMEOUT};
use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A browser session. Closes the browser and chromedriver when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A laptop-sized window (1200×1000).
    pub async fn start() -> Browser {
        Browser::start_sized(1200, 1000).await
    }

    /// A window of `width`×`height` CSS pixels. Headless Chromium's windows are at least
    /// 500 px wide, so narrower sizes emulate a phone's screen instead.
    pub async fn start_sized(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, &[]).await
    }

    /// A laptop-sized window with more Chromium switches (e.g. the box's CA key in
    /// `--ignore-certificate-errors-spki-list`).
    pub async fn start_with_args(args: &[String]) -> Browser {
        Browser::start_with(1200, 1000, args).await
    }

    async fn start_with(width: u32, height: u32, extra_args: &[String]) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "browser tests need Chromium and chromedriver: apt-get install -y chromium chromium-driver"
        );
        let port = free_port();
        // Its own process group: a test that fails takes chromedriver *and* the Chromium
        // it started down with it (see `kill_driver`).
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        wait_for("chromedriver to listen", TIMEOUT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        let mut options = serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--window-size={},{height}", width.max(500)),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        options["args"]
            .as_array_mut()
            .unwrap()
            .extend(extra_args.iter().map(|arg| serde_json::json!(arg)));
        if width < 500 {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1 },
            });
        }
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Waits until an element matching `css` exists and is displayed.
    pub async fn visible(&self, css: &str) -> Element {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if element.is_displayed().await.unwrap_or(false) {
                    return element;
                }
            }
            if Instant::now() > deadline {
                panic!("{css} never became visible");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` satisfies `check`; returns it.
    pub async fn text_where(&self, css: &str, check: impl Fn(&str) -> bool) -> String {
        self.text_where_for(css, TIMEOUT, check).await
    }

    /// [`Browser::text_where`] with its own timeout, for slow things (a payment, a node
    /// starting).
    pub async fn text_where_for(
        &self,
        css: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if check(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                panic!("{css} never showed the expected text; last: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into the field `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.act_on(css, |field| async move {
            field.clear().await?;
            field.send_keys(text).await
        })
        .await;
    }

    pub async fn click(&self, css: &str) {
        self.act_on(css, |element| async move { element.click().await })
            .await;
    }

    /// Chooses the option with `value` in the `<select>` `css`, as a user picks it.
    pub async fn select(&self, css: &str, value: &str) {
        self.act_on(css, |element| async move {
            element.select_by_value(value).await
        })
        .await;
    }

    /// Does `act` on the visible element `css`. When the page redrew that element between
    /// finding and acting (a stale element), finds it again and retries, as a user whose
    /// click missed would; any other error fails the test.
    async fn act_on<F, Fut>(&self, css: &str, act: F)
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match act(self.visible(css).await).await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(error))
                    if error.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("{css}: {error}"),
            }
        }
    }

    /// Types `password` into the page's "Your password, please" dialog, which a dangerous
    /// action opens (the box wants the password again), and continues.
    pub async fn answer_password_dialog(&self, password: &str) {
        self.visible("#reauth-dialog").await;
        self.type_into("#reauth-password", password).await;
        self.click("#reauth-ok").await;
    }

    /// Waits until the text of `css` satisfies `check`, typing `password` into the password
    /// dialog if the page asks for it on the way (it does when the last time the password
    /// was typed is more than 5 minutes ago).
    pub async fn text_where_with_password(
        &self,
        css: &str,
        timeout: Duration,
        password: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let asking = self
                .eval("return document.getElementById('reauth-dialog').open;")
                .await;
            if asking == serde_json::Value::Bool(true) {
                self.type_into("#reauth-password", password).await;
                self.click("#reauth-ok").await;
            }
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if check(&text) {
                        return text;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("{css} never showed the expected text");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Evaluates JavaScript in the page and returns its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves a screenshot as `<name>.png` in `$PLUGNODE_SCREENSHOTS`, when that is set (to
    /// look at the page as the tests leave it).
    pub async fn snapshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("PLUGNODE_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        kill_driver(&mut self.driver);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_driver(&mut self.driver);
    }
}

/// Claims a fresh box at `address` on its page: the setup code from its data directory
/// (`secrets`), and the tests' password.
pub async fn claim(browser: &Browser, address: std::net::SocketAddr, secrets: &std::path::Path) {
    tokio::task::block_in_place(|| {
        wait_for("the web page", TIMEOUT, || {
            super::http(address, "GET", "/", None)
        })
    });
    browser
        .client
        .goto(&format!("http://{address}/"))
        .await
        .unwrap();
    browser.visible("#setup-form").await;
    let code = tokio::task::block_in_place(|| {
        wait_for("the setup code", TIMEOUT, || {
            std::fs::read_to_string(secrets.join("setup-code")).ok()
        })
    });
    browser.type_into("#setup-code", code.trim()).await;
    browser.type_into("#setup-password", super::PASSWORD).await;
    browser.type_into("#setup-repeat", super::PASSWORD).await;
    browser.click("#setup-form button[type=submit]").await;
    browser.visible("#dashboard").await;
}

/// Opens the page of the box at `address` once it answers, logging in when it asks.
pub async fn open_page(browser: &Browser, address: std::net::SocketAddr) {
    tokio::task::block_in_place(|| {
        super::wait_for("the web page", super::TIMEOUT, || {
            super::http(address, "GET", "/", None)
        })
    });
    open_url(browser, &format!("http://{address}/")).await;
}

/// Opens `url` (a box's page), logging in with the tests' password when it asks.
pub async fn open_url(browser: &Browser, url: &str) {
    browser.client.goto(url).await.unwrap();
    let deadline = std::time::Instant::now() + super::TIMEOUT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never showed a page"
        );
        let shown = browser
            .eval(
                "const gate = !document.getElementById('login-form').hidden; \
                 const dash = !document.getElementById('dashboard').hidden; \
                 return gate ? 'login' : dash ? 'dashboard' : '';",
            )
            .await;
        match shown.as_str() {
            Some("login") => break,
            Some("dashboard") => return,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    browser.type_into("#login-password", super::PASSWORD).await;
    browser.click("#login-form button[type=submit]").await;
    browser.visible("#dashboard").await;
}

/// Kills chromedriver's whole process group, the browser it started included.
fn kill_driver(driver: &mut Child) {
    let group = nix::unistd::Pid::from_raw(driver.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = driver.wait();
}
